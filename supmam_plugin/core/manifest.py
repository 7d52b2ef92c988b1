"""fairseq audio manifests: read and write ``{split}.tsv``, ``{split}.{ext}`` and ``dict.{ext}.txt``.

Format (fairseq's wav2vec convention):
- ``{split}.tsv``: first line the root folder; each further line ``relative/path<TAB>num_samples``
  (num_samples = frames of the file at its own sample rate, as ``soundfile.info`` reports).
- ``{split}.{ext}``: one line per clip, space-separated class names (several for multi-label);
  with ``allow_unlabeled`` (semi-supervised pretraining) an empty line is an unlabelled clip.
- ``dict.{ext}.txt``: one class per line, ``name`` or ``name count`` (fairseq dictionary
  format); the line order is the class index.
Every reading error names the file and line and says how to fix it.
"""

import os
from dataclasses import dataclass
from typing import Iterable, Sequence


class ManifestError(ValueError):
    """Bad manifest, label file or class list; the message names the file and line."""


@dataclass(frozen=True)
class ManifestEntry:
    relative_path: str
    num_samples: int
    line_number: int  # 1-based line in the .tsv (line 1 is the root)


@dataclass(frozen=True)
class Manifest:
    path: str
    root: str
    entries: tuple[ManifestEntry, ...]

    def audio_path(self, index: int) -> str:
        return os.path.join(self.root, self.entries[index].relative_path)

    def where(self, index: int) -> str:
        """'file:line' of an entry, for error messages."""
        return f"{self.path}:{self.entries[index].line_number}"

    def __len__(self) -> int:
        return len(self.entries)


def read_lines(path: str) -> list[str]:
    """The lines of a UTF-8 text file (manifest, labels, captions), split at "\\n" only, as ``wc -l``
    and the writers count them: a U+2028 or U+0085 inside a caption is text, not a line break
    (``str.splitlines`` would break there). A CRLF line's "\\r" is dropped; so is the empty string
    after the last newline.

    Raises:
        ManifestError: a byte that is not UTF-8, named by line and byte offset.
    """
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ManifestError(f"{path}:{line}: byte {e.start} (0x{data[e.start]:02x}) is not UTF-8; save the file as "
                            f"UTF-8 (e.g. iconv -f latin1 -t utf-8 {os.path.basename(path)})") from None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def read_manifest(path: str, min_samples: int = 0) -> Manifest:
    """Parse a ``.tsv`` manifest. ``min_samples``: entries shorter than this are an error
    (e.g. one fbank window, 400 samples at 16 kHz)."""
    if not os.path.isfile(path):
        raise ManifestError(f"{path}: manifest not found; build one with the supmam-manifest-* commands")
    lines = read_lines(path)
    if not lines or not lines[0].strip():
        raise ManifestError(f"{path}:1: empty manifest; the first line must be the audio root folder")
    root = lines[0].strip()
    if not os.path.isabs(root):  # a relative root is taken relative to the manifest's folder
        root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(path)), root))
    entries = []
    for line_number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            raise ManifestError(
                f"{path}:{line_number}: expected 'relative/path<TAB>num_samples', got {line!r}"
            )
        try:
            num_samples = int(fields[1])
        except ValueError:
            raise ManifestError(
                f"{path}:{line_number}: num_samples {fields[1]!r} is not an integer"
            ) from None
        if num_samples < max(min_samples, 1):
            raise ManifestError(
                f"{path}:{line_number}: {fields[0]} has {num_samples} samples, fewer than "
                f"{max(min_samples, 1)} (one fbank frame); remove the line or fix the file"
            )
        entries.append(ManifestEntry(fields[0], num_samples, line_number))
    if not entries:
        raise ManifestError(f"{path}: manifest lists no audio files (only the root line)")
    return Manifest(path, root, tuple(entries))


def read_class_list(path: str) -> list[str]:
    """Class names of ``dict.{ext}.txt`` in index order."""
    if not os.path.isfile(path):
        raise ManifestError(
            f"{path}: class list not found; it lists one class per line (the manifest builders write it)"
        )
    names: list[str] = []
    seen: dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for line_number, line in enumerate(f, start=1):
            fields = line.split()
            if not fields:
                continue
            name = fields[0]
            if name in seen:
                raise ManifestError(
                    f"{path}:{line_number}: class {name!r} already listed on line {seen[name]}"
                )
            seen[name] = line_number
            names.append(name)
    if not names:
        raise ManifestError(f"{path}: class list is empty")
    return names


def read_labels(
    path: str, classes: Sequence[str], manifest: Manifest, allow_unlabeled: bool = False
) -> list[list[int]]:
    """Class indices of each clip, aligned with ``manifest``'s entries.

    ``allow_unlabeled`` (semi-supervised pretraining, ``task.allow_unlabeled=true``): an EMPTY
    line marks an unlabelled clip, returned as ``[]``. Otherwise an empty line is an error."""
    if not os.path.isfile(path):
        raise ManifestError(f"{path}: label file not found (expected beside {manifest.path})")
    index = {name: i for i, name in enumerate(classes)}
    lines = read_lines(path)
    # Drop blank lines past the last clip (a trailing newline or two), but never a blank line
    # that stands for a clip: with allow_unlabeled the last clips may be unlabelled.
    while len(lines) > len(manifest) and not lines[-1].strip():
        lines.pop()
    if len(lines) != len(manifest):
        raise ManifestError(
            f"{path}: {len(lines)} label lines but {manifest.path} lists {len(manifest)} clips; "
            "the label file needs exactly one line per manifest entry, in the same order"
        )
    labels = []
    for line_number, line in enumerate(lines, start=1):
        names = line.split()
        if not names:
            if allow_unlabeled:
                labels.append([])
                continue
            raise ManifestError(
                f"{path}:{line_number}: no label for {manifest.entries[line_number - 1].relative_path}; "
                "give its class name(s), or, to pretrain on unlabelled clips (supmam_pretraining "
                "only), set task.allow_unlabeled=true so that an empty line marks an unlabelled clip"
            )
        unknown = [n for n in names if n not in index]
        if unknown:
            raise ManifestError(
                f"{path}:{line_number}: label(s) {unknown} not in the class list; add them to the "
                "dict file or fix the label"
            )
        labels.append([index[n] for n in names])
    return labels


def require_one_label_per_clip(path: str, labels: list[list[int]], why: str = "") -> None:
    """A ManifestError naming ``path``'s first line with several labels (single-label use of a
    label file); ``why`` says what would go wrong."""
    several = next((n for n, clip_labels in enumerate(labels, 1) if len(clip_labels) > 1), None)
    if several is not None:
        raise ManifestError(f"{path}:{several}: several labels on one line but task.multi_label=false{why}; "
                            "set task.multi_label=true")


def write_manifest(
    out_dir: str,
    split: str,
    root: str,
    entries: Iterable[tuple[str, int]],
    labels: Iterable[Sequence[str]] | None = None,
    label_ext: str = "label",
    absolute_root: bool = True,
) -> str:
    """Write ``{split}.tsv`` (and ``{split}.{label_ext}`` when labels are given); returns the tsv path.
    The root line is made absolute unless ``absolute_root`` is false (a root relative to the manifest's
    folder, e.g. ``.``, lets the folder move as a whole)."""
    os.makedirs(out_dir, exist_ok=True)
    tsv = os.path.join(out_dir, f"{split}.tsv")
    with open(tsv, "w", encoding="utf-8") as f:
        f.write((os.path.abspath(root) if absolute_root else root) + "\n")
        for relative_path, num_samples in entries:
            f.write(f"{relative_path}\t{int(num_samples)}\n")
    if labels is not None:
        with open(os.path.join(out_dir, f"{split}.{label_ext}"), "w", encoding="utf-8") as f:
            for names in labels:
                f.write(" ".join(names) + "\n")
    return tsv


def write_class_list(out_dir: str, classes: Sequence[str], label_ext: str = "label", counts=None) -> str:
    """Write ``dict.{label_ext}.txt``: ``name count`` per line, in index order."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"dict.{label_ext}.txt")
    counts = counts or {}
    with open(path, "w", encoding="utf-8") as f:
        for name in classes:
            if any(c.isspace() for c in name):
                raise ManifestError(f"class name {name!r} contains whitespace; use '_' instead")
            f.write(f"{name} {int(counts.get(name, 1))}\n")
    return path
