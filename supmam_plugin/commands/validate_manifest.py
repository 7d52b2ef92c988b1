"""``supmam-validate-manifest``: open every file of a manifest and report what is wrong.

    supmam-validate-manifest DATA_DIR SPLIT [--labels label] [--allow-unlabeled] [--workers N]

Reports unreadable or missing files, lengths that differ from the manifest, clips shorter than
one fbank frame (25 ms), NaN/inf samples, and labels not in ``dict.{labels}.txt``, each with its
file and line, in manifest order whatever ``--workers``. For a labelled split it first prints how
often each class occurs (clips and share of clips, most frequent first), the unlabelled clips and
the labels per clip, and warns about classes of the dictionary that no clip carries. Progress
(files/s, time left) goes to stderr. Exit status 1 if anything is wrong.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass

from ..core.audio import AudioFileError, open_audio, read_open_mono
from ..core.manifest import ManifestError, read_class_list, read_lines, read_manifest

FRAME_SECONDS = 0.025


def read_label_lines(label_path: str, num_clips: int) -> list[str]:
    """The lines of a label file, one per clip. Blank lines past the last clip (a trailing newline
    or two) are dropped, but not a blank line that stands for a clip: as ``read_labels`` reads
    them, the last clips may be unlabelled."""
    lines = read_lines(label_path)
    while len(lines) > num_clips and not lines[-1].strip():
        lines.pop()
    return lines


def check_labels(label_path: str, classes: list[str], num_clips: int, allow_unlabeled: bool = False) -> list[str]:
    """Problems of a label file: line count, unknown class names and (unless ``allow_unlabeled``, as
    ``task.allow_unlabeled`` of semi-supervised pretraining accepts them) empty lines, one string each."""
    if not os.path.isfile(label_path):
        return [f"{label_path}: label file not found"]
    known = set(classes)
    lines = read_label_lines(label_path, num_clips)
    problems = []
    if len(lines) != num_clips:
        problems.append(f"{label_path}: {len(lines)} label lines for {num_clips} manifest entries")
    for line_number, line in enumerate(lines, start=1):
        names = line.split()
        if not names and not allow_unlabeled:
            problems.append(f"{label_path}:{line_number}: no label")
        for name in names:
            if name not in known:
                problems.append(f"{label_path}:{line_number}: label {name!r} not in the class list")
    return problems


@dataclass
class ClassFrequencies:
    """How the clips of a labelled split spread over the classes of its dictionary."""

    clips: int                  # label lines
    per_class: dict[str, int]   # class -> clips carrying it, every class of the dictionary, in its order
    unlabelled: int             # empty label lines
    labels_per_clip_mean: float  # over the labelled clips
    labels_per_clip_max: int


def class_frequencies(lines: list[str], classes: list[str]) -> ClassFrequencies:
    """Count, for each class, the clips whose label line names it (a multi-label clip counts once
    for each of its classes, a class named twice on a line once). Names not in ``classes`` are
    left out (``check_labels`` reports them)."""
    per_class = dict.fromkeys(classes, 0)
    labels_per_clip = []
    for line in lines:
        names = set(line.split())
        if names:
            labels_per_clip.append(len(names))
        for name in names & per_class.keys():
            per_class[name] += 1
    return ClassFrequencies(
        clips=len(lines),
        per_class=per_class,
        unlabelled=len(lines) - len(labels_per_clip),
        labels_per_clip_mean=sum(labels_per_clip) / len(labels_per_clip) if labels_per_clip else 0.0,
        labels_per_clip_max=max(labels_per_clip, default=0),
    )


def format_class_frequencies(frequencies: ClassFrequencies, split: str, dict_path: str) -> list[str]:
    """The class-frequency table (most frequent first, ties in dictionary order), its summary and
    a warning naming the classes of ``dict_path`` that no clip carries."""
    width = max(len("class"), *(len(name) for name in frequencies.per_class))
    lines = [f"{split}: {frequencies.clips} clips, {frequencies.unlabelled} unlabelled; labels per labelled clip: "
             f"mean {frequencies.labels_per_clip_mean:.2f}, max {frequencies.labels_per_clip_max}",
             f"{'class':<{width}}  {'clips':>7}  {'share':>6}"]
    for name, count in sorted(frequencies.per_class.items(), key=lambda item: -item[1]):  # sorted() is stable
        share = 100.0 * count / frequencies.clips if frequencies.clips else 0.0
        lines.append(f"{name:<{width}}  {count:>7}  {share:>5.1f}%")
    absent = [name for name, count in frequencies.per_class.items() if count == 0]
    if absent:
        lines.append(f"warning: {len(absent)} of the {len(frequencies.per_class)} classes of {dict_path} on no "
                     f"clip of {split}: {' '.join(absent)}")
    return lines


def check_audio(manifest, index: int) -> list[str]:
    """Problems of one manifest entry's audio file."""
    path, where = manifest.audio_path(index), manifest.where(index)
    try:
        with open_audio(path, where) as info:  # opened once (a packed entry's bytes read once)
            listed = manifest.entries[index].num_samples
            problems = []
            if info.frames != listed:
                problems.append(f"{where}: {path} has {info.frames} samples, the manifest says {listed}")
            if info.frames < FRAME_SECONDS * info.samplerate:
                problems.append(f"{where}: {path} is shorter than one 25 ms fbank frame")
                return problems
            read_open_mono(info, 0.0, None, f"{where}: {path}")  # decodes all of it; raises on NaN/inf
        return problems
    except AudioFileError as e:
        return [str(e)]


_WORKER_MANIFEST = None  # the manifest a worker process checks (set by _start_worker)


def _start_worker(manifest) -> None:
    global _WORKER_MANIFEST
    _WORKER_MANIFEST = manifest


def _check_in_worker(index: int) -> list[str]:
    return check_audio(_WORKER_MANIFEST, index)


def validate(data_dir: str, split: str, labels: str | None = "label", progress_every: int = 1000,
             workers: int = 1, allow_unlabeled: bool = False) -> list[str]:
    """Every problem found in ``{data_dir}/{split}.tsv`` (and its labels), as messages, in manifest
    order; the files are opened by ``workers`` processes. A labelled split's class-frequency table
    is printed first."""
    try:
        manifest = read_manifest(os.path.join(data_dir, f"{split}.tsv"))
    except ManifestError as e:
        return [str(e)]
    problems: list[str] = []
    if labels:
        dict_path, label_path = os.path.join(data_dir, f"dict.{labels}.txt"), os.path.join(data_dir, f"{split}.{labels}")
        try:
            classes = read_class_list(dict_path)
            problems += check_labels(label_path, classes, len(manifest), allow_unlabeled)
            if os.path.isfile(label_path):
                frequencies = class_frequencies(read_label_lines(label_path, len(manifest)), classes)
                print("\n".join(format_class_frequencies(frequencies, split, dict_path)))
        except ManifestError as e:
            problems.append(str(e))
    start, total = time.time(), len(manifest)
    pool = multiprocessing.Pool(workers, _start_worker, (manifest,)) if workers > 1 else None
    try:
        results = (pool.imap(_check_in_worker, range(total), chunksize=16) if pool
                   else (check_audio(manifest, index) for index in range(total)))
        for done, found in enumerate(results, start=1):  # imap keeps the manifest's order
            problems += found
            if progress_every and (done % progress_every == 0 or done == total):
                rate = done / max(time.time() - start, 1e-9)
                print(f"checked {done}/{total} files ({rate:.0f} files/s, {(total - done) / rate / 60:.1f} min left), "
                      f"{len(problems)} problems so far", file=sys.stderr)
    finally:
        if pool:
            pool.terminate()
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="folder with {split}.tsv")
    parser.add_argument("split", help="split name, e.g. train")
    parser.add_argument("--labels", default="label", help="label extension; 'none' to skip labels")
    parser.add_argument("--workers", type=int, default=1, help="processes opening the files (e.g. the CPU count)")
    parser.add_argument("--allow-unlabeled", action="store_true",
                        help="an empty label line is an unlabelled clip, not a problem (as task.allow_unlabeled)")
    parser.add_argument("--progress-every", type=int, default=1000, help="report progress every N files")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    labels = None if args.labels.lower() == "none" else args.labels
    problems = validate(args.data, args.split, labels, args.progress_every, args.workers, args.allow_unlabeled)
    for p in problems:
        print(p)
    print(f"{args.split}: {len(problems)} problem(s) found")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
