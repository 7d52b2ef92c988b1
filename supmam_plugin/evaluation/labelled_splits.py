"""The labelled splits of a manifest folder (``{split}.tsv`` + ``{split}.{ext}`` + ``dict.{ext}.txt``),
read with the plugin's manifest readers, as the targets scikit-learn takes."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..core.manifest import Manifest, ManifestError, read_class_list, read_labels, read_manifest


@dataclass(frozen=True)
class LabelledSplit:
    """One split: its manifest, the class indices of each clip and the folder's class list."""

    name: str
    manifest: Manifest
    labels: tuple[tuple[int, ...], ...]  # class indices of clip i, in manifest order
    classes: tuple[str, ...]
    label_path: str

    def __len__(self) -> int:
        return len(self.manifest)

    @property
    def paths(self) -> list[str]:
        return [self.manifest.audio_path(i) for i in range(len(self.manifest))]

    @property
    def where(self) -> list[str]:
        """'manifest.tsv:line' of each clip, for error messages."""
        return [self.manifest.where(i) for i in range(len(self.manifest))]

    def spread(self, count: int) -> "LabelledSplit":
        """At most ``count`` clips, evenly spaced over the manifest (a sorted manifest keeps its
        variety), in manifest order; the split itself when it is no larger."""
        if count <= 0 or count >= len(self):
            return self
        keep = np.unique(np.linspace(0, len(self) - 1, count).round().astype(int))
        manifest = Manifest(self.manifest.path, self.manifest.root, tuple(self.manifest.entries[i] for i in keep))
        return LabelledSplit(self.name, manifest, tuple(self.labels[i] for i in keep), self.classes, self.label_path)

    def targets(self, multi_label: bool) -> np.ndarray:
        """(N,) int class indices, or (N, C) 0/1 int matrix when ``multi_label``. A clip with
        several labels is an error for single-label targets (the message names its line)."""
        if multi_label:
            matrix = np.zeros((len(self.labels), len(self.classes)), dtype=np.int64)
            for i, clip_labels in enumerate(self.labels):
                matrix[i, list(clip_labels)] = 1
            return matrix
        for i, clip_labels in enumerate(self.labels):
            if len(clip_labels) != 1:
                raise ManifestError(
                    f"{self.label_path}:{i + 1}: {len(clip_labels)} labels for one clip; a single-label "
                    "probe needs exactly one (use --multi-label for AudioSet-style label files)"
                )
        return np.array([clip_labels[0] for clip_labels in self.labels], dtype=np.int64)


def read_labelled_splits(data: str, splits: Sequence[str] = ("train", "valid", "test"),
                         labels: str = "label") -> dict[str, LabelledSplit]:
    """{split: LabelledSplit} of ``data``; errors name the missing or bad file and line."""
    if not os.path.isdir(data):
        raise ManifestError(f"{data}: manifest folder not found")
    class_path = os.path.join(data, f"dict.{labels}.txt")
    classes = tuple(read_class_list(class_path))
    out = {}
    for split in splits:
        tsv = os.path.join(data, f"{split}.tsv")
        if not os.path.isfile(tsv):
            present = sorted(f[:-4] for f in os.listdir(data) if f.endswith(".tsv"))
            raise ManifestError(
                f"{tsv}: split {split!r} not found (the folder has {present or 'no .tsv manifests'}); "
                "name the folder's splits with --train-split / --valid-split / --test-split"
            )
        manifest = read_manifest(tsv)
        label_path = os.path.join(data, f"{split}.{labels}")
        indices = read_labels(label_path, classes, manifest)
        out[split] = LabelledSplit(split, manifest, tuple(tuple(i) for i in indices), classes, label_path)
    return out
