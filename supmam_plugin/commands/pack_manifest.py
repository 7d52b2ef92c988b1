"""``supmam-pack-manifest``: pack a split's audio files into uncompressed zip shards, fairseq's
``archive.zip:OFFSET:LENGTH`` convention, for shared network storage.

    supmam-pack-manifest DATA SPLIT --out DIR [--shard-size 10000] [--workers 8]

Files are stored as they are (flac stays flac), in manifest order: shard K holds lines
K * shard-size ... of ``DATA/SPLIT.tsv``. Writes ``DIR/SPLIT-NNNNN.zip``, ``DIR/SPLIT.tsv`` (root ``.``:
the folder moves or copies as a whole), copies of ``DATA/SPLIT.<ext>`` (labels, captions),
``DATA/dict.*.txt`` and the caption tokenizer unchanged, and ``DIR/SPLIT.packed.json`` naming the manifest it was packed from,
so a teacher cache made for the loose manifest serves the packed one. Every command and task reads
packed and loose manifests alike. A killed run continues: finished shards are kept. Each file's
header is checked first: a file that is not audio stops the run, naming its manifest line (run
``supmam-validate-manifest`` first to list every problem).
"""
from __future__ import annotations

import argparse
import glob
import json
import multiprocessing
import os
import shutil
import sys
import time

from ..core.audio import audio_info
from ..core.captions import TOKENIZER_FILE
from ..core.file_hash import file_sha256
from ..core.manifest import Manifest, ManifestError, read_manifest, write_manifest
from ..core.packed_audio import packing_record_path, parse_packed, shard_entries, write_shard


def shard_name(split: str, index: int) -> str:
    return f"{split}-{index:05d}.zip"


_MANIFEST: Manifest | None = None  # the manifest being packed, set once per process (not sent with each job)


def _set_manifest(manifest: Manifest) -> None:
    global _MANIFEST
    _MANIFEST = manifest


def _pack_shard(job: tuple[str, str, int, range]) -> tuple[int, list[str]]:
    """Write one shard (unless a finished one is there) and return its lines' entries."""
    out_dir, split, index, lines = job
    manifest = _MANIFEST
    shard_path = os.path.join(out_dir, shard_name(split, index))
    names = [manifest.entries[i].relative_path for i in lines]
    if not os.path.isfile(shard_path):
        for i in lines:  # a file soundfile cannot open stops here, named by its manifest line
            audio_info(manifest.audio_path(i), manifest.where(i))
        write_shard(shard_path, [(name, manifest.audio_path(i)) for name, i in zip(names, lines)])
    return index, shard_entries(shard_path, names)


def pack(data: str, split: str, out_dir: str, shard_size: int = 10000, workers: int = 1) -> str:
    """Pack ``{data}/{split}.tsv`` into ``out_dir``; returns the packed manifest's path."""
    if os.path.abspath(data) == os.path.abspath(out_dir):
        raise ValueError(f"--out {out_dir} is the data folder: the packed {split}.tsv would replace the loose one; "
                         "give another folder")
    if shard_size < 1 or workers < 1:
        raise ValueError("--shard-size and --workers must be at least 1")
    manifest = read_manifest(os.path.join(data, f"{split}.tsv"))
    packed = next((i for i in range(len(manifest)) if parse_packed(manifest.entries[i].relative_path)), None)
    if packed is not None:
        raise ManifestError(f"{manifest.where(packed)}: already a packed entry; pack the loose manifest")
    os.makedirs(out_dir, exist_ok=True)
    jobs = [(out_dir, split, k, range(start, min(start + shard_size, len(manifest))))
            for k, start in enumerate(range(0, len(manifest), shard_size))]
    entries: list[list[str]] = [[] for _ in jobs]
    start_time = time.time()
    _set_manifest(manifest)
    with multiprocessing.Pool(workers, _set_manifest, (manifest,)) if workers > 1 else _Serial() as pool:
        for done, (index, shard) in enumerate(pool.imap_unordered(_pack_shard, jobs), start=1):
            entries[index] = shard
            clips = sum(len(e) for e in entries)
            print(f"[pack] {split}: shard {done}/{len(jobs)} ({clips} of {len(manifest)} clips, "
                  f"{clips / max(time.time() - start_time, 1e-9):.0f} clips/s)", file=sys.stderr)
    lines = [entry for shard in entries for entry in shard]
    tsv = write_manifest(out_dir, split, ".", zip(lines, (e.num_samples for e in manifest.entries)),
                         absolute_root=False)
    copied = []
    beside = [f"{split}.*", "dict.*.txt", TOKENIZER_FILE]  # labels, captions, class lists, caption tokenizer
    for path in sorted(p for pattern in beside for p in glob.glob(os.path.join(data, pattern))):
        if not path.endswith(".tsv") and not path.endswith(".packed.json"):
            shutil.copyfile(path, os.path.join(out_dir, os.path.basename(path)))
            copied.append(os.path.basename(path))
    with open(packing_record_path(tsv), "w", encoding="utf-8") as f:
        json.dump({"source_manifest": os.path.abspath(manifest.path),
                   "source_manifest_sha256": file_sha256(manifest.path), "num_clips": len(manifest),
                   "shards": [shard_name(split, k) for k in range(len(jobs))], "shard_size": shard_size,
                   "copied": copied}, f, indent=1)
    print(f"[pack] {split}: {len(manifest)} clips in {len(jobs)} shards -> {tsv} (copied {', '.join(copied) or 'nothing'})",
          file=sys.stderr)
    return tsv


class _Serial:
    """``multiprocessing.Pool``'s ``imap_unordered`` in this process (--workers 1)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    @staticmethod
    def imap_unordered(function, jobs):
        return map(function, jobs)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="folder with the loose {split}.tsv")
    parser.add_argument("split", help="split name, e.g. train")
    parser.add_argument("--out", required=True, help="folder for the shards and the packed manifest")
    parser.add_argument("--shard-size", type=int, default=10000,
                        help="clips per shard (AudioSet's 10 s flac: 10000 clips is about 3 GB)")
    parser.add_argument("--workers", type=int, default=1, help="shards written at a time (processes)")
    args = parser.parse_args(argv)
    try:
        pack(args.data, args.split, args.out, args.shard_size, args.workers)
    except (ManifestError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
