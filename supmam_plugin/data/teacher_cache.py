"""Precomputed CLAP teacher targets: the teacher's NATIVE token map per clip, on disk.

A cache stores (C, 2, 32) float16 per clip (about 98 KB for HTSAT-tiny: about 200 GB for
AS-2M); the model resizes it to the 64 x 8 patch grid (and applies CLAP's projection when
asked) when it reads it. The resized grid would be 16x larger and not fit a user's disk.

Layout in the cache folder: ``{split}.teacher.npy`` (N, C, 2, 32) float16, written as a
numpy memmap, and ``{split}.teacher.json`` with what made it (manifest, checkpoint, model).
Targets are computed on each clip's first 10 s (the validation crop), so a run that reads a
cache does not random-crop: for AudioSet's 10 s clips nothing is lost.
"""
from __future__ import annotations

import json
import os

import numpy as np

from .manifest import Manifest, ManifestError


def cache_paths(cache_dir: str, split: str) -> tuple[str, str]:
    return os.path.join(cache_dir, f"{split}.teacher.npy"), os.path.join(cache_dir, f"{split}.teacher.json")


def open_for_writing(cache_dir: str, split: str, num_clips: int, map_shape: tuple, meta: dict) -> np.memmap:
    """A (num_clips, *map_shape) float16 memmap to fill, and its description file."""
    os.makedirs(cache_dir, exist_ok=True)
    array_path, meta_path = cache_paths(cache_dir, split)
    with open(meta_path, "w") as f:
        json.dump({**meta, "num_clips": num_clips, "map_shape": list(map_shape), "complete": False}, f, indent=1)
    return np.lib.format.open_memmap(array_path, mode="w+", dtype=np.float16, shape=(num_clips, *map_shape))


def mark_complete(cache_dir: str, split: str) -> None:
    _, meta_path = cache_paths(cache_dir, split)
    meta = json.load(open(meta_path))
    meta["complete"] = True
    with open(meta_path, "w") as f:
        json.dump(meta, f, indent=1)


def open_for_reading(cache_dir: str, split: str, manifest: Manifest) -> tuple[np.ndarray, dict]:
    """The cache's memmap (N, C, 2, 32) float16 and its description, checked against ``manifest``."""
    array_path, meta_path = cache_paths(cache_dir, split)
    if not (os.path.isfile(array_path) and os.path.isfile(meta_path)):
        raise ManifestError(
            f"{array_path}: no teacher cache for split {split!r}; make it with "
            f"supmam-precompute-teacher {os.path.dirname(manifest.path)} {split} --out-dir {cache_dir} ..."
        )
    meta = json.load(open(meta_path))
    maps = np.load(array_path, mmap_mode="r")
    if not meta.get("complete"):
        raise ManifestError(f"{meta_path}: the cache was not finished; run supmam-precompute-teacher again")
    if maps.shape[0] != len(manifest):
        raise ManifestError(
            f"{array_path}: holds {maps.shape[0]} clips but {manifest.path} lists {len(manifest)}; "
            "the manifest changed since the cache was made: make the cache again"
        )
    return maps, meta
