"""``supmam-validate-manifest``: open every file of a manifest and report what is wrong.

    supmam-validate-manifest DATA_DIR SPLIT [--labels label]

Reports unreadable or missing files, lengths that differ from the manifest, clips shorter than
one fbank frame (25 ms), NaN/inf samples, and labels not in ``dict.{labels}.txt``, each with its
file and line. Exit status 1 if anything is wrong.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from .audio import AudioFileError, audio_info, read_mono
from .manifest import ManifestError, read_class_list, read_manifest

FRAME_SECONDS = 0.025


def check_labels(label_path: str, classes: list[str], num_clips: int) -> list[str]:
    """Problems of a label file: line count and unknown class names, one string each."""
    if not os.path.isfile(label_path):
        return [f"{label_path}: label file not found"]
    known = set(classes)
    with open(label_path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    problems = []
    if len(lines) != num_clips:
        problems.append(f"{label_path}: {len(lines)} label lines for {num_clips} manifest entries")
    for line_number, line in enumerate(lines, start=1):
        names = line.split()
        if not names:
            problems.append(f"{label_path}:{line_number}: no label")
        for name in names:
            if name not in known:
                problems.append(f"{label_path}:{line_number}: label {name!r} not in the class list")
    return problems


def check_audio(manifest, index: int) -> list[str]:
    """Problems of one manifest entry's audio file."""
    path, where = manifest.audio_path(index), manifest.where(index)
    try:
        info = audio_info(path, where)
        listed = manifest.entries[index].num_samples
        problems = []
        if info.frames != listed:
            problems.append(f"{where}: {path} has {info.frames} samples, the manifest says {listed}")
        if info.frames < FRAME_SECONDS * info.samplerate:
            problems.append(f"{where}: {path} is shorter than one 25 ms fbank frame")
            return problems
        read_mono(path, where=where)  # decodes all of it; raises on NaN/inf
        return problems
    except AudioFileError as e:
        return [str(e)]


def validate(data_dir: str, split: str, labels: str | None = "label", progress_every: int = 1000) -> list[str]:
    """Every problem found in ``{data_dir}/{split}.tsv`` (and its labels), as messages."""
    try:
        manifest = read_manifest(os.path.join(data_dir, f"{split}.tsv"))
    except ManifestError as e:
        return [str(e)]
    problems: list[str] = []
    if labels:
        try:
            classes = read_class_list(os.path.join(data_dir, f"dict.{labels}.txt"))
            problems += check_labels(os.path.join(data_dir, f"{split}.{labels}"), classes, len(manifest))
        except ManifestError as e:
            problems.append(str(e))
    start = time.time()
    for index in range(len(manifest)):
        problems += check_audio(manifest, index)
        if progress_every and (index + 1) % progress_every == 0:
            rate = (index + 1) / max(time.time() - start, 1e-9)
            print(f"checked {index + 1}/{len(manifest)} files ({rate:.0f}/s), "
                  f"{len(problems)} problems so far", file=sys.stderr)
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="folder with {split}.tsv")
    parser.add_argument("split", help="split name, e.g. train")
    parser.add_argument("--labels", default="label", help="label extension; 'none' to skip labels")
    args = parser.parse_args(argv)
    labels = None if args.labels.lower() == "none" else args.labels
    problems = validate(args.data, args.split, labels)
    for p in problems:
        print(p)
    print(f"{args.split}: {len(problems)} problem(s) found")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
