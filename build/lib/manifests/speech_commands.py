"""Speech Commands v2 manifests: SPC-2 (35 words) and SPC-1 (SUPERB's 12-class keyword spotting).

Input: ``--speech-commands-dir`` as distributed: one folder per word holding .wav files,
``validation_list.txt`` and ``testing_list.txt`` (``word/file.wav`` per line) and
``_background_noise_/`` with long noise recordings. Writes to ``--out-dir``:

- ``spc2/``: every word folder is a class (``dict.label.txt`` in sorted order); ``test`` = the
  files of ``testing_list.txt``, ``valid`` = those of ``validation_list.txt``, ``train`` = the rest.
  The manifest root is the Speech Commands folder.
- ``spc1/``: the same three splits with SUPERB's 12 classes, in this order: yes, no, up, down,
  left, right, on, off, stop, go, ``_silence_``, ``_unknown_``. The ten words keep their name,
  every other word becomes ``_unknown_``.
  ``_silence_`` clips are cut from ``_background_noise_``: each noise file (sorted by name) is
  cut into consecutive, non-overlapping 1-second segments (a tail shorter than 1 s is dropped),
  mixed down to mono and resampled to 16 kHz, and written as 16-bit wav files
  ``spc1/silence_audio/{noise_name}_{j:04d}.wav``. Segment j of a file cut into n segments goes
  to train if 10 j < 8 n, else to valid if 10 j < 9 n, else to test: the first 80 % of every
  noise recording trains, the next 10 % validates, the last 10 % tests.
  The manifest root is the deepest folder holding both the Speech Commands folder and
  ``spc1/`` (real paths, so the relative paths go only downwards).
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import soundfile

from supmam_plugin.core.audio import read_mono, resample
from manifests.audio_files import AudioFileError, measure_files, setup_logging
from supmam_plugin.core.manifest import ManifestError, write_class_list, write_manifest

NOISE_FOLDER = "_background_noise_"
SPLITS = ("train", "valid", "test")
SPC1_WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
SILENCE, UNKNOWN = "_silence_", "_unknown_"
SPC1_CLASSES = SPC1_WORDS + (SILENCE, UNKNOWN)
SILENCE_RATE = 16000  # samples per second of the silence clips, each SILENCE_RATE samples long


def find_words(root: str) -> list[str]:
    """Word folders (every folder holding .wav files, except ``_background_noise_``), sorted."""
    if not os.path.isdir(root):
        raise ManifestError(f"{root}: Speech Commands folder not found")
    words = sorted(
        name
        for name in os.listdir(root)
        if name != NOISE_FOLDER
        and not name.startswith(".")
        and os.path.isdir(os.path.join(root, name))
        and any(f.lower().endswith(".wav") for f in os.listdir(os.path.join(root, name)))
    )
    if not words:
        raise ManifestError(f"{root}: no word folders with .wav files; is this the Speech Commands v2 folder?")
    return words


def read_file_list(root: str, name: str) -> set[str]:
    """Relative paths of ``validation_list.txt`` / ``testing_list.txt``; each must exist."""
    path = os.path.join(root, name)
    if not os.path.isfile(path):
        raise ManifestError(f"{path}: split list not found (it ships with Speech Commands v2)")
    listed = set()
    with open(path, encoding="utf-8") as f:
        for line_number, line in enumerate(f, start=1):
            relative_path = line.strip()
            if not relative_path:
                continue
            if not os.path.isfile(os.path.join(root, relative_path)):
                raise ManifestError(f"{path}:{line_number}: {relative_path} is listed but does not exist")
            listed.add(relative_path)
    return listed


def split_word_files(root: str, words: list[str]) -> dict[str, list[str]]:
    """Split -> sorted ``word/file.wav`` paths, following the official lists."""
    valid = read_file_list(root, "validation_list.txt")
    test = read_file_list(root, "testing_list.txt")
    both = sorted(valid & test)
    if both:
        raise ManifestError(f"{both[0]} is in both validation_list.txt and testing_list.txt")
    splits: dict[str, list[str]] = {split: [] for split in SPLITS}
    for word in words:
        for name in sorted(os.listdir(os.path.join(root, word))):
            if name.lower().endswith(".wav") and not name.startswith("."):
                relative_path = f"{word}/{name}"
                split = "test" if relative_path in test else "valid" if relative_path in valid else "train"
                splits[split].append(relative_path)
    return splits


def silence_split(segment: int, num_segments: int) -> str:
    """Split of segment ``segment`` of a noise file cut into ``num_segments`` (80/10/10 in time)."""
    if 10 * segment < 8 * num_segments:
        return "train"
    return "valid" if 10 * segment < 9 * num_segments else "test"


def cut_silence(noise_dir: str, out_dir: str) -> dict[str, list[str]]:
    """Cut the noise files into 1-s 16 kHz wav clips in ``out_dir``; returns split -> clip paths."""
    if not os.path.isdir(noise_dir):
        raise ManifestError(f"{noise_dir}: background noise folder not found (needed for {SILENCE})")
    os.makedirs(out_dir, exist_ok=True)
    splits: dict[str, list[str]] = {split: [] for split in SPLITS}
    for name in sorted(os.listdir(noise_dir)):
        if not name.lower().endswith(".wav") or name.startswith("."):
            continue
        path = os.path.join(noise_dir, name)
        audio, rate = read_mono(path)
        audio = resample(audio, rate, SILENCE_RATE)
        num_segments = len(audio) // SILENCE_RATE
        stem = os.path.splitext(name)[0]
        for j in range(num_segments):
            clip = os.path.join(out_dir, f"{stem}_{j:04d}.wav")
            segment = np.clip(audio[j * SILENCE_RATE : (j + 1) * SILENCE_RATE], -1.0, 1.0)
            soundfile.write(clip, segment, SILENCE_RATE, subtype="PCM_16")
            splits[silence_split(j, num_segments)].append(clip)
    if not any(splits.values()):
        raise ManifestError(f"{noise_dir}: no noise file of at least 1 s; cannot make {SILENCE} clips")
    return splits


def spc1_label(word: str) -> str:
    return word if word in SPC1_WORDS else UNKNOWN


def _checked_sizes(root: str, relative_paths: list[str], workers: int) -> dict[str, int]:
    """``measure_files``, raising the first error: every listed clip must be readable."""
    sizes = measure_files(root, relative_paths, workers=workers)
    for size in sizes.values():
        if isinstance(size, AudioFileError):
            raise size
    return sizes  # type: ignore[return-value]


def build_speech_commands(root: str, out_dir: str, workers: int = 8) -> dict[str, dict[str, int]]:
    """Write ``spc2/`` and ``spc1/``; returns ``{'spc2': {split: n}, 'spc1': {split: n}}``."""
    words = find_words(root)
    word_files = split_word_files(root, words)
    sizes = _checked_sizes(root, [f for files in word_files.values() for f in files], workers)
    counts: dict[str, dict[str, int]] = {"spc2": {}, "spc1": {}}

    spc2_dir = os.path.join(out_dir, "spc2")
    for split, files in word_files.items():
        entries = [(f, sizes[f]) for f in files]
        write_manifest(spc2_dir, split, root, entries, [[f.split("/")[0]] for f in files])
        counts["spc2"][split] = len(files)
    write_class_list(spc2_dir, words)

    spc1_dir = os.path.join(out_dir, "spc1")
    silence = cut_silence(os.path.join(root, NOISE_FOLDER), os.path.join(spc1_dir, "silence_audio"))
    real_root = os.path.realpath(root)
    common = os.path.commonpath([real_root, os.path.realpath(spc1_dir)])
    word_prefix = os.path.relpath(real_root, common)
    for split in SPLITS:
        entries = [(os.path.normpath(os.path.join(word_prefix, f)), sizes[f]) for f in word_files[split]]
        silence_rel = [os.path.relpath(os.path.realpath(p), common) for p in silence[split]]
        entries += [(p, SILENCE_RATE) for p in silence_rel]  # every silence clip is 1 s at 16 kHz
        labels = [[spc1_label(f.split("/")[0])] for f in word_files[split]] + [[SILENCE]] * len(silence_rel)
        write_manifest(spc1_dir, split, common, entries, labels)
        counts["spc1"][split] = len(labels)
    write_class_list(spc1_dir, SPC1_CLASSES)

    absent = [w for w in SPC1_WORDS if w not in words]
    if absent:
        print(f"spc1: no folder for the keyword(s) {', '.join(absent)}")
    for name, by_split in counts.items():
        print(f"{name}: " + ", ".join(f"{n} {split}" for split, n in by_split.items()) + " clips")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--speech-commands-dir", required=True, help="the unpacked Speech Commands v2 folder")
    parser.add_argument("--out-dir", required=True, help="where spc2/ and spc1/ are written")
    parser.add_argument("--workers", type=int, default=8, help="threads reading audio headers")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        build_speech_commands(args.speech_commands_dir, args.out_dir, workers=args.workers)
    except (ManifestError, AudioFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
