"""Packing a split's audio files into uncompressed zip shards (fairseq's ``archive.zip:OFFSET:LENGTH``),
resumable and refused over another packing (``supmam-pack-manifest``, docs/data.md)."""
from __future__ import annotations

import glob
import hashlib
import json
import multiprocessing
import os
import shutil
import sys
import time

from .audio import audio_info
from .captions import TOKENIZER_FILE
from .file_hash import file_sha256
from .manifest import Manifest, ManifestError, read_manifest, write_manifest
from .packed_audio import packing_record_path, parse_packed, shard_entries, write_shard


def shard_name(split: str, index: int) -> str:
    return f"{split}-{index:05d}.zip"


_MANIFEST: Manifest | None = None  # the manifest being packed, set once per process (not sent with each job)


def _set_manifest(manifest: Manifest) -> None:
    global _MANIFEST
    _MANIFEST = manifest


def member_name(manifest: Manifest, line: int) -> str:
    """A clip's name in its shard: its manifest line (0-based entry index), with its file's extension."""
    return f"{line:09d}{os.path.splitext(manifest.entries[line].relative_path)[1].lower()}"


def _pack_shard(job: tuple[str, str, int, range]) -> tuple[int, list[str]]:
    """Write one shard (unless a finished one is there) and return its lines' entries."""
    out_dir, split, index, lines = job
    manifest = _MANIFEST
    shard_path = os.path.join(out_dir, shard_name(split, index))
    names = [member_name(manifest, i) for i in lines]
    if not os.path.isfile(shard_path):
        for i in lines:  # a file soundfile cannot open stops here, named by its manifest line
            audio_info(manifest.audio_path(i), manifest.where(i))
        write_shard(shard_path, [(name, manifest.audio_path(i)) for name, i in zip(names, lines)])
    return index, shard_entries(shard_path, names)


def source_files_sha256(manifest: Manifest) -> str:
    """The SHA-256 of every audio file's size and modification time, in manifest order: a file replaced
    under the same name (same manifest line) changes it. Statting is cheap beside the packing's reads."""
    sha = hashlib.sha256()
    for i in range(len(manifest)):
        try:
            stat = os.stat(manifest.audio_path(i))
        except OSError as e:
            raise ManifestError(f"{manifest.where(i)}: {manifest.audio_path(i)}: {e.strerror}; fix the line or the "
                                "file (supmam-validate-manifest lists every problem)") from None
        sha.update(f"{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return sha.hexdigest()


def previous_packing(out_dir: str, split: str, source: dict) -> str | None:
    """Why ``out_dir`` holds another packing of ``split`` than ``source`` (the record this one writes),
    or None: nothing there, or an unfinished run of the same packing (which continues)."""
    record = os.path.join(out_dir, f"{split}.packed.json")
    shards = glob.glob(os.path.join(out_dir, f"{glob.escape(split)}-[0-9][0-9][0-9][0-9][0-9].zip"))
    if not os.path.isfile(record):
        return f"{len(shards)} shards and no {os.path.basename(record)}" if shards else None
    with open(record, encoding="utf-8") as f:
        found = json.load(f)
    differ = [key for key in ("source_manifest_sha256", "shard_size", "source_files_sha256") if found.get(key) != source[key]]
    if not differ:
        return None
    return f"{record} was packed from {found.get('source_manifest')} " + (
        "as it was before (its SHA-256 differs)" if "source_manifest_sha256" in differ else
        f"with --shard-size {found.get('shard_size')}" if "shard_size" in differ else
        "when its audio files were others (their sizes or modification times differ)")


def remove_packing(out_dir: str, split: str) -> None:
    """Delete ``split``'s shards (finished and partial), manifest and record in ``out_dir``."""
    patterns = [f"{glob.escape(split)}-[0-9][0-9][0-9][0-9][0-9].zip", f"{glob.escape(split)}-[0-9][0-9][0-9][0-9][0-9].zip.partial",
                f"{glob.escape(split)}.tsv", f"{glob.escape(split)}.packed.json"]
    for path in (p for pattern in patterns for p in glob.glob(os.path.join(out_dir, pattern))):
        os.remove(path)


def pack(data: str, split: str, out_dir: str, shard_size: int = 10000, workers: int = 1,
         overwrite: bool = False) -> str:
    """Pack ``{data}/{split}.tsv`` into ``out_dir``; returns the packed manifest's path. An unfinished
    run of the same packing continues; another packing of ``split`` there is refused unless
    ``overwrite`` (then it is deleted first)."""
    if os.path.abspath(data) == os.path.abspath(out_dir):
        raise ValueError(f"--out {out_dir} is the data folder: the packed {split}.tsv would replace the loose one; "
                         "give another folder")
    if shard_size < 1 or workers < 1:
        raise ValueError("--shard-size and --workers must be at least 1")
    manifest = read_manifest(os.path.join(data, f"{split}.tsv"))
    packed = next((i for i in range(len(manifest)) if parse_packed(manifest.entries[i].relative_path)), None)
    if packed is not None:
        raise ManifestError(f"{manifest.where(packed)}: already a packed entry; pack the loose manifest")
    source = {"source_manifest": os.path.abspath(manifest.path), "source_manifest_sha256": file_sha256(manifest.path),
              "num_clips": len(manifest), "shard_size": shard_size, "source_files_sha256": source_files_sha256(manifest)}
    other = previous_packing(out_dir, split, source) if os.path.isdir(out_dir) else None
    if other and not overwrite:
        raise ValueError(f"--out {out_dir} holds another packing of {split}: {other}. Its shards would keep their "
                         "old audio; add --overwrite to pack every shard again, or give another --out")
    if other:
        print(f"[pack] {split}: --overwrite: deleting the packing in {out_dir} ({other})", file=sys.stderr)
        remove_packing(out_dir, split)
    os.makedirs(out_dir, exist_ok=True)
    record = os.path.join(out_dir, f"{split}.packed.json")
    with open(record, "w", encoding="utf-8") as f:
        json.dump({**source, "complete": False}, f, indent=1)  # a killed run continues only for this packing
    jobs = [(out_dir, split, k, range(start, min(start + shard_size, len(manifest))))
            for k, start in enumerate(range(0, len(manifest), shard_size))]
    entries: list[list[str]] = [[] for _ in jobs]
    start_time = time.time()
    _set_manifest(manifest)
    with multiprocessing.Pool(workers, _set_manifest, (manifest,)) if workers > 1 else _Serial() as pool:
        for done, (index, shard) in enumerate(pool.imap_unordered(_pack_shard, jobs), start=1):
            entries[index] = shard
            clips = sum(len(e) for e in entries)
            print(f"[pack] {split}: shard {done}/{len(jobs)} ({clips} of {len(manifest)} clips, "
                  f"{clips / max(time.time() - start_time, 1e-9):.0f} clips/s)", file=sys.stderr)
    lines = [entry for shard in entries for entry in shard]
    tsv = write_manifest(out_dir, split, ".", zip(lines, (e.num_samples for e in manifest.entries)),
                         absolute_root=False)
    copied = []
    beside = [f"{split}.*", "dict.*.txt", TOKENIZER_FILE]  # labels, captions, class lists, caption tokenizer
    for path in sorted(p for pattern in beside for p in glob.glob(os.path.join(data, pattern))):
        if not path.endswith(".tsv") and not path.endswith(".packed.json"):
            shutil.copyfile(path, os.path.join(out_dir, os.path.basename(path)))
            copied.append(os.path.basename(path))
    with open(packing_record_path(tsv) + ".partial", "w", encoding="utf-8") as f:
        json.dump({**source, "packed_manifest_sha256": file_sha256(tsv),
                   "shards": [shard_name(split, k) for k in range(len(jobs))], "copied": copied, "complete": True},
                  f, indent=1)
    os.replace(packing_record_path(tsv) + ".partial", packing_record_path(tsv))
    print(f"[pack] {split}: {len(manifest)} clips in {len(jobs)} shards -> {tsv} (copied {', '.join(copied) or 'nothing'})",
          file=sys.stderr)
    return tsv


class _Serial:
    """``multiprocessing.Pool``'s ``imap_unordered`` in this process (--workers 1)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    @staticmethod
    def imap_unordered(function, jobs):
        return map(function, jobs)
