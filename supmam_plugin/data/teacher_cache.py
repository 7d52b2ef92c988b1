"""Precomputed teacher targets: the teacher's NATIVE map per clip, on disk.

A cache stores the (C, rows, steps) float16 map per clip: (768, 2, 32) for LAION-CLAP's
HTSAT-tiny, about 98 KB (about 200 GB for AS-2M); (768, 8, 64) for a ViT-B ``supmam`` teacher on
1024 frames, about 786 KB (1.6 TB for AS-2M: run that teacher online or on a subset). The model
samples the map on its patch grid (and applies the teacher's projection or normalisation) when it
reads it; LAION-CLAP's map sampled on the 64 x 8 grid would be 8x larger.

Layout in the cache folder, one set per split:

- ``{split}.teacher.npy``: (N, C, rows, steps) float16, a numpy memmap made once (sparse) and filled
  in place, each clip's row by exactly one shard;
- ``{split}.teacher.done-K-of-N.npy``: (N,) uint8, 1 where shard K of N has written and flushed
  the clip's row. A row is flushed before its mark, so after a kill -9 at any moment a marked
  row is whole, and a rerun computes exactly the unmarked clips of its shard;
- ``{split}.teacher.json``: what made it (teacher identity with the checkpoint's SHA-256, the
  manifest and its SHA-256, map shape, clip count) and ``complete``, set only once the marks of
  all shards cover every clip exactly once. Readers refuse an incomplete cache.

Shards write disjoint rows of the same file, so processes, GPUs or machines sharing a file
system fill one cache with no merge step. Maps are computed on each clip's start (the validation
crop), so a run that reads a cache does not random-crop: for AudioSet's 10 s clips nothing is lost.
"""
from __future__ import annotations

import glob
import json
import os
import re
from dataclasses import dataclass

import numpy as np

from ..core.checkpoints.legacy import TEACHER_ALIASES
from ..core.packed_audio import clip_list_sha256
from ..core.manifest import Manifest, ManifestError

IDENTITY_KEYS = ("teacher", "variant", "checkpoint_sha256")  # what made the maps (Teacher.identity)
SOURCE_KEYS = ("manifest_sha256", "num_clips", "map_shape")  # which clips, in which shape


class TeacherCacheError(ManifestError):
    """A teacher cache that cannot be used or continued; the message names the file and the fix."""


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count``: the clips i with i % count == index."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> "Shard":
        """'K/N' (0 <= K < N)."""
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not match or not int(match.group(1)) < int(match.group(2)):
            raise ValueError(f"--shard {text!r}: expected K/N with 0 <= K < N, e.g. 0/4")
        return cls(int(match.group(1)), int(match.group(2)))

    def clips(self, num_clips: int) -> np.ndarray:
        return np.arange(self.index, num_clips, self.count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def cache_paths(cache_dir: str, split: str) -> tuple[str, str]:
    return os.path.join(cache_dir, f"{split}.teacher.npy"), os.path.join(cache_dir, f"{split}.teacher.json")


def done_path(cache_dir: str, split: str, shard: Shard) -> str:
    return os.path.join(cache_dir, f"{split}.teacher.done-{shard.index}-of-{shard.count}.npy")


def _create_once(path: str, make) -> None:
    """Make ``path`` with ``make(tmp_path)`` unless it exists; atomic against other shards doing the
    same (a hard link fails when the name exists), and never a half-made file under ``path``."""
    if os.path.exists(path):
        return
    tmp = f"{path}.tmp-{os.getpid()}"
    make(tmp)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another shard made it first
    finally:
        os.remove(tmp)


def _write_json(path: str, data: dict) -> None:
    with open(path, "w") as f:
        json.dump(data, f, indent=1)


def _replace_json(path: str, data: dict) -> None:
    _write_json(f"{path}.tmp-{os.getpid()}", data)
    os.replace(f"{path}.tmp-{os.getpid()}", path)


def _differences(found: dict, wanted: dict, keys) -> list[str]:
    found = {**found, "teacher": TEACHER_ALIASES.get(found.get("teacher"), found.get("teacher"))}  # old names
    return [f"{k} {found.get(k)!r} (wanted {wanted.get(k)!r})" for k in keys if found.get(k) != wanted.get(k)]


def open_for_writing(cache_dir: str, split: str, num_clips: int, map_shape: tuple, meta: dict,
                     shard: Shard = Shard()) -> tuple[np.memmap, np.memmap]:
    """The (num_clips, *map_shape) float16 memmap to fill and this shard's (num_clips,) uint8 done
    marks, made on first use and continued afterwards. ``meta`` must hold IDENTITY_KEYS and
    ``manifest_sha256``; a cache made by another teacher, for another manifest or split into
    another number of shards is refused."""
    os.makedirs(cache_dir, exist_ok=True)
    array_path, meta_path = cache_paths(cache_dir, split)
    wanted = {**meta, "num_clips": int(num_clips), "map_shape": [int(s) for s in map_shape], "complete": False}
    _create_once(meta_path, lambda tmp: _write_json(tmp, wanted))
    found = json.load(open(meta_path))
    wrong = _differences(found, wanted, IDENTITY_KEYS + SOURCE_KEYS)
    if wrong:
        raise TeacherCacheError(
            f"{meta_path}: this cache was made by another teacher or for other clips: {'; '.join(wrong)}. "
            "Give another --out-dir, or delete the cache to make it again"
        )
    others = [p for p in glob.glob(os.path.join(cache_dir, f"{split}.teacher.done-*-of-*.npy"))
              if not p.endswith(f"-of-{shard.count}.npy")]
    if others:
        raise TeacherCacheError(
            f"{others[0]}: the cache is being made in another number of shards than {shard.count}; "
            f"continue it with the same --shard K/N, or delete the cache"
        )
    _create_once(array_path, lambda tmp: np.lib.format.open_memmap(
        tmp, mode="w+", dtype=np.float16, shape=(num_clips, *map_shape)).flush())
    _create_once(done_path(cache_dir, split, shard), lambda tmp: np.lib.format.open_memmap(
        tmp, mode="w+", dtype=np.uint8, shape=(num_clips,)).flush())
    maps = load_array(array_path, "r+")
    done = load_array(done_path(cache_dir, split, shard), "r+")
    return maps, done


def record(maps: np.memmap, done: np.memmap, ids: np.ndarray, rows: np.ndarray) -> None:
    """Write ``rows`` at ``ids``, flush them, then mark them done (in that order: a mark is only
    ever on a row that is on disk)."""
    maps[ids] = rows
    maps.flush()
    done[ids] = 1
    done.flush()


def finish(cache_dir: str, split: str) -> tuple[bool, str]:
    """Mark the cache complete when the shards' marks cover every clip exactly once. Returns
    (complete, what is missing) and raises on a clip marked by two shards."""
    array_path, meta_path = cache_paths(cache_dir, split)
    meta = json.load(open(meta_path))
    marks = sorted(glob.glob(os.path.join(cache_dir, f"{split}.teacher.done-*-of-*.npy")))
    count = np.zeros(meta["num_clips"], dtype=np.int64)
    for path in marks:
        count += np.load(path, mmap_mode="r")
    if (count > 1).any():
        raise TeacherCacheError(f"{array_path}: clip {int(np.argmax(count > 1))} was computed by more than one shard; "
                                "delete the cache and make it again")
    missing = int((count == 0).sum())
    shards = {int(re.search(r"-of-(\d+)\.npy$", p).group(1)) for p in marks}
    if missing:
        return False, f"{missing} of {meta['num_clips']} clips not computed yet ({len(marks)} of {max(shards | {1})} shards started)"
    if not meta.get("complete"):
        _replace_json(meta_path, {**meta, "complete": True})
    return True, ""


def check_teacher(cache_dir: str, identity: dict) -> None:
    """Refuse a cache folder whose maps another teacher made (``identity``: :meth:`Teacher.identity`)."""
    for meta_path in sorted(glob.glob(os.path.join(cache_dir, "*.teacher.json"))):
        found = json.load(open(meta_path))
        if "variant" not in found:
            raise TeacherCacheError(f"{meta_path}: this cache does not say which teacher made it (made before caches "
                                    "recorded it); make it again with supmam-precompute-teacher")
        wrong = _differences(found, identity, IDENTITY_KEYS)
        if wrong:
            raise TeacherCacheError(
                f"{meta_path}: the cached targets were made by another teacher than the model's: {'; '.join(wrong)}. "
                "Make the cache with the model's teacher (supmam-precompute-teacher --teacher ... --teacher-checkpoint ...) "
                "or point task.teacher_cache at its cache"
            )


def load_array(array_path: str, mode: str) -> np.memmap:
    """The memmap of a cache ``.npy``, its size checked against its header first (a truncated copy
    otherwise fails in numpy with 'mmap length is greater than file size' or an EOFError)."""
    size = os.path.getsize(array_path)
    try:
        with open(array_path, "rb") as f:
            version = np.lib.format.read_magic(f)
            reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = reader(f)
            expected = f.tell() + int(np.prod(shape)) * dtype.itemsize
    except (ValueError, EOFError, OSError) as e:
        raise TeacherCacheError(f"{array_path}: not a readable .npy ({e}); the cache is damaged: copy it again or "
                                "make it again with supmam-precompute-teacher") from None
    if size != expected:
        raise TeacherCacheError(f"{array_path}: {size} bytes, but its header says {tuple(shape)} {dtype} ({expected} "
                                "bytes): the file is truncated (a copy cut short?); copy it again or make the cache again")
    return np.load(array_path, mmap_mode=mode)


def check_finite(rows: np.ndarray, where: str) -> None:
    """Refuse a teacher map holding NaN or inf (a damaged cache, or a teacher output beyond float16),
    naming the clip: left alone it shows up later as a diverged loss."""
    bad = int(rows.size - np.isfinite(rows).sum())
    if bad:
        raise TeacherCacheError(f"{where}: the teacher map of this clip holds {bad} NaN or infinite values; make the "
                                "cache again (supmam-precompute-teacher), or check the teacher on this clip")


def open_for_reading(cache_dir: str, split: str, manifest: Manifest) -> tuple[np.ndarray, dict]:
    """The cache's memmap (N, C, rows, steps) float16 and its description, checked against ``manifest``."""
    array_path, meta_path = cache_paths(cache_dir, split)
    if not (os.path.isfile(array_path) and os.path.isfile(meta_path)):
        raise TeacherCacheError(
            f"{array_path}: no teacher cache for split {split!r}; make it with "
            f"supmam-precompute-teacher {os.path.dirname(manifest.path)} {split} --out-dir {cache_dir} ..."
        )
    meta = json.load(open(meta_path))
    maps = load_array(array_path, "r")
    if not meta.get("complete"):
        raise TeacherCacheError(f"{meta_path}: the cache was not finished; run supmam-precompute-teacher again "
                                "(it continues where it stopped)")
    if maps.shape[0] != len(manifest):
        raise TeacherCacheError(
            f"{array_path}: holds {maps.shape[0]} clips but {manifest.path} lists {len(manifest)}; "
            "the manifest changed since the cache was made: make the cache again"
        )
    if "manifest_sha256" in meta and meta["manifest_sha256"] != clip_list_sha256(manifest.path):
        raise TeacherCacheError(
            f"{array_path}: was made for another version of {manifest.path} (its SHA-256 differs); "
            "make the cache again"
        )
    return maps, meta
