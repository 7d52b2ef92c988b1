"""Reading audio at AudioSet scale: ``supmam-validate-manifest`` with 1 and N worker processes, and
what a training crop costs from a one-hour file against a 10 s clip (the dataset reads only the
crop: soundfile ``start``/``stop``), beside reading the whole file first (what it did before).

    python -m benchmarks.reading [--files 480] [--rate 48000] [--workers 2] [--reads 20]

The manifest check opens files at ``--rate`` (AudioSet's downloads are mostly 44.1 / 48 kHz), read
from the page cache (the first pass warms it): the figures are decoding, not disk.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import tempfile
import time

import soundfile as sf

from . import common
from .fbank import write_files


def time_validate(data: str, workers: int) -> float:
    from supmam_plugin.commands.validate_manifest import validate

    start = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):
        problems = validate(data, "train", labels=None, progress_every=0, workers=workers)
    assert not problems, problems[:3]
    return time.perf_counter() - start


def write_long(folder: str, seconds: int, rate: int = common.SAMPLE_RATE) -> str:
    """A FLAC of ``seconds``, written a minute at a time, and its one-line manifest."""
    from supmam_plugin.core.manifest import write_manifest

    os.makedirs(os.path.join(folder, "audio"), exist_ok=True)
    path = os.path.join(folder, "audio", "long.flac")
    with sf.SoundFile(path, "w", rate, 1, subtype="PCM_16", format="FLAC") as f:
        for minute in range(-(-seconds // 60)):
            f.write(common.synthetic_clip(min(60, seconds - 60 * minute), rate, seed=minute))
    write_manifest(folder, "train", os.path.join(folder, "audio"), [("long.flac", seconds * rate)], None, "label")
    return folder


def time_crops(data: str, reads: int) -> tuple[float, float]:
    """Seconds per random training crop (AudioClipDataset, 10.24 s) and per whole-file read + crop."""
    from supmam_plugin.core.audio import read_mono
    from supmam_plugin.data.audio_clip_dataset import AudioClipDataset
    from supmam_plugin.core.manifest import read_manifest

    dataset = AudioClipDataset(read_manifest(os.path.join(data, "train.tsv")), random_crop=True)
    start = time.perf_counter()
    for epoch in range(1, reads + 1):
        dataset.set_epoch(epoch)
        dataset[0]
    crop = (time.perf_counter() - start) / reads
    start = time.perf_counter()
    for _ in range(max(1, reads // 5)):
        read_mono(dataset.manifest.audio_path(0))
    whole = (time.perf_counter() - start) / max(1, reads // 5)
    return crop, whole


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=480, help="10 s FLAC files for the manifest check")
    parser.add_argument("--rate", type=int, default=48000, help="their sample rate")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reads", type=int, default=20, help="random crops timed per file")
    parser.add_argument("--long-seconds", type=int, default=3600)
    args = parser.parse_args()
    import torch

    print(common.machine_summary(torch.device("cpu")))
    print(f"command: {common.command_line()}")
    import supmam_plugin  # noqa: F401

    with tempfile.TemporaryDirectory() as folder:
        data = write_files(os.path.join(folder, "many"), args.files, args.rate, "FLAC", labels=False)
        time_validate(data, 1)  # warm the page cache: both runs read from memory
        one, many = time_validate(data, 1), time_validate(data, args.workers)
        print(f"\nsupmam-validate-manifest, {args.files} FLAC files of 10 s at {args.rate} Hz:")
        print("| workers | seconds | files/s |\n|---|---|---|")
        print(f"| 1 | {one:.2f} | {args.files / one:.0f} |")
        print(f"| {args.workers} | {many:.2f} | {args.files / many:.0f} |")
        print(f"speed-up: {one / many:.2f}x")

        long_data = write_long(os.path.join(folder, "long"), args.long_seconds)
        short_data = write_files(os.path.join(folder, "short"), 1, common.SAMPLE_RATE, "FLAC", labels=False)
        long_crop, long_whole = time_crops(long_data, args.reads)
        short_crop, short_whole = time_crops(short_data, args.reads)
        print(f"\none training crop (10.24 s, random start), {args.reads} crops each, FLAC 16 kHz:")
        print("| file | crop read (ms) | whole file read (ms) |\n|---|---|---|")
        print(f"| 10 s | {1000 * short_crop:.1f} | {1000 * short_whole:.1f} |")
        print(f"| {args.long_seconds} s | {1000 * long_crop:.1f} | {1000 * long_whole:.1f} |")
        print(f"a crop of the long file costs {long_crop / short_crop:.2f}x a crop of the 10 s clip "
              f"(reading the whole long file first: {long_whole / short_crop:.0f}x)")


if __name__ == "__main__":
    main()
