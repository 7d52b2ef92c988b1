"""AudioSet manifests from the official segment CSVs and a folder of downloaded clips.

Inputs: ``--csv-dir`` with ``balanced_train_segments.csv``, ``unbalanced_train_segments.csv``,
``eval_segments.csv`` and ``class_labels_indices.csv``; ``--audio-dir`` with the clips, found
recursively and named ``{YTID}.ext``, ``Y{YTID}.ext`` or ``{YTID}_{start}...ext``.

Writes to ``--out-dir``: ``{split}.tsv`` and ``{split}.label`` (labels are mids such as
``/m/09x0r``) for the splits ``balanced_train`` (AS-20K), ``unbalanced_train``, ``train``
(balanced + unbalanced, AS-2M) and ``eval``; ``{split}.missing.txt`` (YTIDs without a clip)
and ``{split}.unreadable.txt`` (clips soundfile cannot read); ``dict.label.txt`` (the mids in
index order) and ``class_names.tsv`` (``mid<TAB>display_name``). A split whose CSV is absent
is skipped; missing and unreadable clips are counted and reported, never fatal.
"""
from __future__ import annotations

import argparse
import csv
import logging
import os
import sys
from dataclasses import dataclass, field

from manifests.audio_files import AudioFileError, index_audio_files, measure_files, setup_logging
from supmam_plugin.core.manifest import ManifestError, write_class_list, write_manifest

logger = logging.getLogger(__name__)

CLASS_CSV = "class_labels_indices.csv"
SEGMENT_CSVS = {
    "balanced_train": "balanced_train_segments.csv",
    "unbalanced_train": "unbalanced_train_segments.csv",
    "eval": "eval_segments.csv",
}
TRAIN_PARTS = ("balanced_train", "unbalanced_train")  # train = AS-2M = both together


@dataclass(frozen=True)
class Segment:
    """One line of a segment CSV."""

    ytid: str
    start_seconds: float
    end_seconds: float
    labels: tuple[str, ...]  # mids
    where: str  # 'file:line'


@dataclass
class SplitReport:
    """What happened to the clips of one split."""

    listed: int = 0
    written: int = 0
    missing: list[str] = field(default_factory=list)  # YTIDs without a clip
    unreadable: list[str] = field(default_factory=list)  # 'path: error'
    duplicates: int = 0  # YTIDs listed twice (kept once)

    def summary(self, split: str) -> str:
        text = (
            f"{split}: {self.listed} segments listed, {self.written} written, "
            f"{len(self.missing)} missing, {len(self.unreadable)} unreadable"
        )
        return text + (f", {self.duplicates} duplicate YTIDs ignored" if self.duplicates else "")


def read_class_labels(path: str) -> list[tuple[str, str]]:
    """``(mid, display_name)`` pairs of ``class_labels_indices.csv``, in index order."""
    if not os.path.isfile(path):
        raise ManifestError(f"{path}: AudioSet class list not found (download {CLASS_CSV})")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, skipinitialspace=True))
    if not rows or [c.strip() for c in rows[0][:3]] != ["index", "mid", "display_name"]:
        raise ManifestError(f"{path}:1: expected the header 'index,mid,display_name'")
    by_index: dict[int, tuple[str, str]] = {}
    seen: dict[str, int] = {}
    for line_number, row in enumerate(rows[1:], start=2):
        if not row or not "".join(row).strip():
            continue
        if len(row) != 3:
            raise ManifestError(f"{path}:{line_number}: expected 'index,mid,display_name', got {row}")
        try:
            index = int(row[0])
        except ValueError:
            raise ManifestError(f"{path}:{line_number}: index {row[0]!r} is not an integer") from None
        mid = row[1].strip()
        if index in by_index:
            raise ManifestError(f"{path}:{line_number}: index {index} already used")
        if mid in seen:
            raise ManifestError(f"{path}:{line_number}: mid {mid} already listed on line {seen[mid]}")
        seen[mid] = line_number
        by_index[index] = (mid, row[2].strip())
    if sorted(by_index) != list(range(len(by_index))):
        raise ManifestError(f"{path}: the indices must be 0 .. {len(by_index) - 1} without gaps")
    if not by_index:
        raise ManifestError(f"{path}: no classes listed")
    return [by_index[i] for i in range(len(by_index))]


def read_segments(path: str, known_mids: set[str]) -> list[Segment]:
    """Segments of a ``*_segments.csv`` (``YTID, start, end, "mid,mid"``; '#' lines are headers)."""
    segments = []
    with open(path, newline="", encoding="utf-8") as f:
        for line_number, row in enumerate(csv.reader(f, skipinitialspace=True), start=1):
            if not row or row[0].startswith("#") or not "".join(row).strip():
                continue
            where = f"{path}:{line_number}"
            if len(row) != 4:
                raise ManifestError(f"{where}: expected 'YTID, start_seconds, end_seconds, \"labels\"', got {row}")
            try:
                start, end = float(row[1]), float(row[2])
            except ValueError:
                raise ManifestError(f"{where}: start/end {row[1]!r}, {row[2]!r} are not numbers") from None
            labels = tuple(dict.fromkeys(m.strip() for m in row[3].split(",") if m.strip()))
            if not labels:
                raise ManifestError(f"{where}: segment {row[0]} has no labels")
            unknown = [m for m in labels if m not in known_mids]
            if unknown:
                raise ManifestError(
                    f"{where}: label(s) {', '.join(unknown)} not in {CLASS_CSV}; use the class list "
                    "of the same AudioSet release as the segment CSVs"
                )
            segments.append(Segment(row[0].strip(), start, end, labels, where))
    return segments


class ClipFinder:
    """Finds the clip of a YTID among files named ``{YTID}``, ``Y{YTID}`` or ``{YTID}_{start}...``."""

    def __init__(self, audio_index: dict[str, str]):
        self.exact = audio_index
        self.prefixed: dict[str, str] = {}  # YTID taken from '{YTID}_{digit}...' and 'Y{YTID}_...'
        for stem, relative_path in audio_index.items():
            for i, char in enumerate(stem):
                if char == "_" and stem[i + 1 : i + 2].isdigit():
                    self.prefixed.setdefault(stem[:i], relative_path)
                    if stem.startswith("Y"):
                        self.prefixed.setdefault(stem[1:i], relative_path)

    def find(self, ytid: str) -> str | None:
        return self.exact.get(ytid) or self.exact.get("Y" + ytid) or self.prefixed.get(ytid)


def build_audioset(
    csv_dir: str, audio_dir: str, out_dir: str, workers: int = 8
) -> dict[str, SplitReport]:
    """Write the AudioSet manifests; returns a report per written split."""
    classes = read_class_labels(os.path.join(csv_dir, CLASS_CSV))
    known_mids = {mid for mid, _ in classes}
    segments_by_split: dict[str, list[Segment]] = {}
    for split, name in SEGMENT_CSVS.items():
        path = os.path.join(csv_dir, name)
        if os.path.isfile(path):
            segments_by_split[split] = read_segments(path, known_mids)
        else:
            print(f"{split}: {path} not found; split skipped")
    if all(part in segments_by_split for part in TRAIN_PARTS):
        segments_by_split["train"] = segments_by_split["balanced_train"] + segments_by_split["unbalanced_train"]
    else:
        print("train: needs both balanced and unbalanced segment CSVs; split skipped")
    if not segments_by_split:
        raise ManifestError(f"{csv_dir}: none of {', '.join(SEGMENT_CSVS.values())} found")

    os.makedirs(out_dir, exist_ok=True)
    write_class_list(out_dir, [mid for mid, _ in classes])
    with open(os.path.join(out_dir, "class_names.tsv"), "w", encoding="utf-8") as f:
        for mid, display_name in classes:
            f.write(f"{mid}\t{display_name}\n")

    finder = ClipFinder(index_audio_files(audio_dir))
    clip_of = {s.ytid: finder.find(s.ytid) for segments in segments_by_split.values() for s in segments}
    sizes = measure_files(audio_dir, [p for p in clip_of.values() if p is not None], workers=workers)

    reports = {}
    for split, segments in segments_by_split.items():
        report = SplitReport(listed=len(segments))
        entries, labels, seen = [], [], set()
        for segment in segments:
            if segment.ytid in seen:
                report.duplicates += 1
                continue
            seen.add(segment.ytid)
            relative_path = clip_of[segment.ytid]
            if relative_path is None:
                report.missing.append(segment.ytid)
                continue
            size = sizes[relative_path]
            if isinstance(size, AudioFileError):
                report.unreadable.append(str(size))
                continue
            entries.append((relative_path, size))
            labels.append(segment.labels)
        report.written = len(entries)
        _write_list(os.path.join(out_dir, f"{split}.missing.txt"), report.missing)
        _write_list(os.path.join(out_dir, f"{split}.unreadable.txt"), report.unreadable)
        if entries:
            write_manifest(out_dir, split, audio_dir, entries, labels)
        else:
            print(f"{split}: no clip found; {split}.tsv not written")
        reports[split] = report
        print(report.summary(split))
    return reports


def _write_list(path: str, lines: list[str]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv-dir", required=True, help="folder with the official AudioSet CSVs")
    parser.add_argument("--audio-dir", required=True, help="folder with the downloaded clips (searched recursively)")
    parser.add_argument("--out-dir", required=True, help="where the manifests are written")
    parser.add_argument("--workers", type=int, default=8, help="threads reading audio headers")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        build_audioset(args.csv_dir, args.audio_dir, args.out_dir, workers=args.workers)
    except (ManifestError, AudioFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
