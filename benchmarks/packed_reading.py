"""Cold reads, loose files against packed shards (issue 26): clips/s of the training dataset's read
(open, decode the crop, resample) of N clips from a manifest of loose files and from the same clips
packed by ``supmam-pack-manifest``, each pass after evicting every file from the page cache
(``posix_fadvise(DONTNEED)``), so the figures include the disk. Also the bytes alone (no decoding).

    python -m benchmarks.packed_reading [--data data/sound_events] [--split pool] [--clips 10000] [--rounds 2]

On this machine the files lie on a local disk; shared network storage (NFS, Lustre), where each
small-file open is a round trip, is where packing pays most: rerun it there.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import tempfile
import time


def evict(paths) -> None:
    """Drop the files' pages from the page cache (the next read goes to the disk)."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def files_of(manifest) -> list[str]:
    from supmam_plugin.core.packed_audio import parse_packed

    paths = [manifest.audio_path(i) for i in range(len(manifest))]
    return sorted({(parse_packed(p) or (p,))[0] for p in paths})


def time_reads(dataset, count: int, raw: bool) -> float:
    """Seconds to read ``count`` clips: the dataset's items, or only their bytes (``raw``)."""
    from supmam_plugin.core.packed_audio import parse_packed, read_packed

    start = time.perf_counter()
    for i in range(count):
        if raw:
            path = dataset.manifest.audio_path(i)
            if parse_packed(path):
                read_packed(path, "benchmark")
            else:
                with open(path, "rb") as f:
                    f.read()
        else:
            dataset[i]
    return time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/sound_events", help="folder of a loose manifest (make sound-events)")
    parser.add_argument("--split", default="pool")
    parser.add_argument("--clips", type=int, default=10000, help="the manifest's first N clips")
    parser.add_argument("--shard-size", type=int, default=2500)
    parser.add_argument("--rounds", type=int, default=2, help="cold passes of each layout, alternating")
    args = parser.parse_args(argv)

    from omegaconf import OmegaConf

    from supmam_plugin.core.packing import pack
    from supmam_plugin.core.manifest import read_manifest, write_manifest
    from supmam_plugin.data.audio_clip_dataset import AudioClipDataset

    loose = read_manifest(os.path.join(args.data, f"{args.split}.tsv"))
    count = min(args.clips, len(loose))
    with tempfile.TemporaryDirectory() as tmp:
        subset = os.path.join(tmp, "loose")
        write_manifest(subset, "train", loose.root, ((e.relative_path, e.num_samples) for e in loose.entries[:count]))
        start = time.perf_counter()
        with contextlib.redirect_stderr(io.StringIO()):
            pack(subset, "train", os.path.join(tmp, "packed"), shard_size=args.shard_size)
        pack_seconds = time.perf_counter() - start
        datasets = {name: AudioClipDataset(read_manifest(os.path.join(tmp, name, "train.tsv")), target_frames=1024)
                    for name in ("loose", "packed")}
        size = {name: sum(os.path.getsize(p) for p in files_of(d.manifest)) for name, d in datasets.items()}
        print(f"{count} clips of {args.data}/{args.split}.tsv; loose {len(files_of(datasets['loose'].manifest))} files "
              f"{size['loose'] / 1e6:.0f} MB, packed {len(files_of(datasets['packed'].manifest))} shards "
              f"{size['packed'] / 1e6:.0f} MB, packing took {pack_seconds:.0f} s (warm)")
        rates = {}
        for round_ in range(args.rounds):
            for raw in (True, False):
                for name, dataset in datasets.items():
                    evict(files_of(dataset.manifest))
                    seconds = time_reads(dataset, count, raw)
                    rates.setdefault((name, raw), []).append(count / seconds)
        for raw in (True, False):
            what = "bytes only" if raw else "dataset items (open, decode the crop, resample)"
            loose_rate, packed_rate = (max(rates[(name, raw)]) for name in ("loose", "packed"))
            print(f"cold {what}: loose {loose_rate:.0f} clips/s, packed {packed_rate:.0f} clips/s, "
                  f"packed / loose {packed_rate / loose_rate:.2f}x (best of {args.rounds})")
        print(OmegaConf.to_yaml({"rates_per_round": {f"{n} {'bytes' if r else 'items'}": [round(x) for x in v]
                                                     for (n, r), v in rates.items()}}).strip())


if __name__ == "__main__":
    main()
