"""ESC-50 manifests for 5-fold cross-validation.

Input: ``--esc50-dir`` as distributed (``meta/esc50.csv`` with the columns
``filename,fold,target,category,esc10,src_file,take`` and the clips in ``audio/``).
Writes ``--out-dir/fold1`` .. ``fold5``; in ``foldK/``: ``valid.tsv``/``valid.label`` = the clips
of fold K, ``train.tsv``/``train.label`` = the clips of the other folds, and ``dict.label.txt``
with the 50 categories ordered by ``target``. Labels are the category names.
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
from dataclasses import dataclass

from manifests.audio_files import AudioFileError, num_samples, setup_logging
from supmam_plugin.core.manifest import ManifestError, write_class_list, write_manifest

REQUIRED_COLUMNS = ("filename", "fold", "target", "category")


@dataclass(frozen=True)
class Clip:
    filename: str
    fold: int
    target: int
    category: str
    num_samples: int


def read_esc50(esc50_dir: str) -> list[Clip]:
    """Clips of ``meta/esc50.csv``, in csv order; every listed file must be readable audio."""
    meta = os.path.join(esc50_dir, "meta", "esc50.csv")
    audio_dir = os.path.join(esc50_dir, "audio")
    if not os.path.isfile(meta):
        raise ManifestError(f"{meta}: ESC-50 metadata not found; --esc50-dir is the unpacked ESC-50 folder")
    clips = []
    with open(meta, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        absent = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if absent:
            raise ManifestError(f"{meta}:1: header lacks the column(s) {', '.join(absent)}")
        for row in reader:
            where = f"{meta}:{reader.line_num}"
            try:
                fold, target = int(row["fold"]), int(row["target"])
            except (TypeError, ValueError):
                raise ManifestError(f"{where}: fold {row['fold']!r} and target {row['target']!r} must be integers") from None
            path = os.path.join(audio_dir, row["filename"])
            if not os.path.isfile(path):
                raise ManifestError(f"{where}: {row['filename']} is listed but {path} does not exist")
            try:
                size = num_samples(path)
            except AudioFileError as error:
                raise ManifestError(f"{where}: {error}") from None
            clips.append(Clip(row["filename"], fold, target, row["category"].strip(), size))
    if not clips:
        raise ManifestError(f"{meta}: no clips listed")
    return clips


def categories_by_target(clips: list[Clip]) -> list[str]:
    """Category names ordered by their ``target`` index."""
    names: dict[int, str] = {}
    for clip in clips:
        if names.setdefault(clip.target, clip.category) != clip.category:
            raise ManifestError(
                f"target {clip.target} is both {names[clip.target]!r} and {clip.category!r} in esc50.csv"
            )
    ordered = [names[t] for t in sorted(names)]
    if len(set(ordered)) != len(ordered):
        raise ManifestError("esc50.csv gives one category two different targets")
    return ordered


def build_esc50(esc50_dir: str, out_dir: str) -> dict[int, dict[str, int]]:
    """Write ``foldK/{train,valid}.{tsv,label}`` and ``dict.label.txt``; returns fold -> split sizes."""
    clips = read_esc50(esc50_dir)
    classes = categories_by_target(clips)
    audio_dir = os.path.join(esc50_dir, "audio")
    sizes = {}
    for fold in sorted({c.fold for c in clips}):
        fold_dir = os.path.join(out_dir, f"fold{fold}")
        splits = {
            "train": [c for c in clips if c.fold != fold],
            "valid": [c for c in clips if c.fold == fold],
        }
        for split, members in splits.items():
            write_manifest(
                fold_dir, split, audio_dir, [(c.filename, c.num_samples) for c in members], [[c.category] for c in members]
            )
        write_class_list(fold_dir, classes)
        sizes[fold] = {split: len(members) for split, members in splits.items()}
        print(f"fold{fold}: {sizes[fold]['train']} train, {sizes[fold]['valid']} valid clips")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--esc50-dir", required=True, help="the unpacked ESC-50 folder (holds meta/ and audio/)")
    parser.add_argument("--out-dir", required=True, help="where fold1 .. fold5 are written")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        build_esc50(args.esc50_dir, args.out_dir)
    except ManifestError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
