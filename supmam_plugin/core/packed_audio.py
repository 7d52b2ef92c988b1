"""Packed audio: clips stored, as they are (flac stays flac), in uncompressed zip shards, and named
in a manifest by fairseq's convention ``shard.zip:OFFSET:LENGTH`` (speech_to_text's manifests): the
member's bytes start at byte OFFSET of the shard and run for LENGTH bytes.

Reading one clip is one ``pread`` of LENGTH bytes from a large file instead of an open, a stat and a
read of a small one: what shared network storage serves well. Written here rather than taken from
``fairseq.data.audio.audio_utils`` (``parse_path``, ``read_from_stored_zip``) because the ground floor
imports no fairseq (the portable export stands on it), and because those check nothing: a bad entry
is an ``assert`` and an offset past the end of a truncated shard returns fewer bytes, silently. The
tests check that both read the same bytes from the same entry.
"""
from __future__ import annotations

import os
import re
import struct
import zipfile

PACKED_ENTRY = re.compile(r"^(?P<shard>.+\.zip):(?P<offset>\d+):(?P<length>\d+)$")
ZIP_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, ..., file name length, extra field length
ZIP_LOCAL_HEADER_SIGNATURE = b"PK\x03\x04"


class PackedAudioError(RuntimeError):
    """A packed entry that cannot be read; the message names the manifest line and the shard."""


def parse_packed(path: str) -> tuple[str, int, int] | None:
    """(shard path, offset, length) of ``shard.zip:OFFSET:LENGTH``; None for a plain file path."""
    match = PACKED_ENTRY.match(path)
    if match is None:
        return None
    return match.group("shard"), int(match.group("offset")), int(match.group("length"))


def packed_shard_exists(path: str) -> bool:
    """Whether a packed entry's shard is a file (the entry's bytes are checked when read)."""
    shard, _, _ = parse_packed(path)
    return os.path.isfile(shard)


def read_packed(path: str, where: str) -> bytes:
    """The LENGTH bytes at OFFSET of the entry's shard (``where``: 'manifest:line' for errors)."""
    shard, offset, length = parse_packed(path)
    try:
        with open(shard, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if offset + length > size:
                raise PackedAudioError(
                    f"{where}: {path}: bytes {offset}..{offset + length} lie past the end of {shard} "
                    f"({size} bytes): the shard is truncated (copy it again) or the manifest line does "
                    "not belong to this shard (pack the split again with supmam-pack-manifest)"
                )
            data = os.pread(f.fileno(), length, offset)
    except FileNotFoundError:
        raise PackedAudioError(
            f"{where}: shard {shard} not found; fix the manifest's root line or copy the shard there"
        ) from None
    if len(data) != length:
        raise PackedAudioError(f"{where}: {path}: read {len(data)} of {length} bytes from {shard}: the shard is "
                               "truncated or being written; copy it again")
    return data


def member_data_offset(shard: zipfile.ZipFile, info: zipfile.ZipInfo) -> int:
    """Byte offset of a stored member's data in its shard: after its local header, whose name and
    extra field lengths may differ from the central directory's, so they are read from the file."""
    shard.fp.seek(info.header_offset)
    signature, name_length, extra_length = ZIP_LOCAL_HEADER.unpack(shard.fp.read(ZIP_LOCAL_HEADER.size))
    if signature != ZIP_LOCAL_HEADER_SIGNATURE:
        raise PackedAudioError(f"{shard.filename}: no local header at byte {info.header_offset} for {info.filename}")
    return info.header_offset + ZIP_LOCAL_HEADER.size + name_length + extra_length


def write_shard(shard_path: str, members: list[tuple[str, str]]) -> None:
    """Store the files ``members`` ((name in the shard, file on disk), in order) uncompressed in a new
    zip. Written to ``shard_path + '.partial'`` and renamed when complete, so a killed packer never
    leaves a shard that looks finished."""
    partial = shard_path + ".partial"
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as shard:
        for name, file_path in members:
            if name not in shard.NameToInfo:  # a file listed twice is stored once
                shard.write(file_path, arcname=name)
    os.replace(partial, shard_path)


def shard_entries(shard_path: str, names: list[str]) -> list[str]:
    """The manifest entry ``SHARD_NAME:OFFSET:LENGTH`` of each member ``names`` of a stored zip (the
    shard's base name: a packed manifest's root is its shards' folder)."""
    entries = []
    with zipfile.ZipFile(shard_path) as shard:
        for name in names:
            info = shard.getinfo(name)
            if info.compress_type != zipfile.ZIP_STORED:
                raise PackedAudioError(f"{shard_path}: member {name} is compressed; pack with supmam-pack-manifest")
            entries.append(f"{os.path.basename(shard_path)}:{member_data_offset(shard, info)}:{info.file_size}")
    return entries


def packing_record_path(manifest_path: str) -> str:
    """``{split}.packed.json`` beside a packed ``{split}.tsv``: which loose manifest it was packed from."""
    return os.path.splitext(manifest_path)[0] + ".packed.json"


def clip_list_sha256(manifest_path: str) -> str:
    """What names a manifest's clips in their order, packed or loose: the SHA-256 of the loose manifest
    (a packed one's record names the manifest it was packed from). A teacher cache made for one serves
    the other: packing keeps every clip and its order.

    Raises:
        PackedAudioError: a packed manifest edited since it was packed (its lines would no longer be
            the clips of the loose manifest its record names).
    """
    import json
    import logging

    from .file_hash import file_sha256

    record = packing_record_path(manifest_path)
    if not os.path.isfile(record):
        return file_sha256(manifest_path)
    with open(record, encoding="utf-8") as f:
        packing = json.load(f)
    if "packed_manifest_sha256" not in packing:
        logging.getLogger(__name__).warning(f"{record}: made before packings recorded their own manifest: edits to "
                                            f"{manifest_path} since packing cannot be seen; pack again to check them")
    elif packing["packed_manifest_sha256"] != file_sha256(manifest_path):
        raise PackedAudioError(
            f"{manifest_path}: changed since it was packed from {packing['source_manifest']} (its SHA-256 is not the "
            f"one {record} recorded): its lines may no longer be those clips in that order, so caches made for them "
            "cannot be trusted; pack the loose manifest again (supmam-pack-manifest ... --overwrite)")
    return packing["source_manifest_sha256"]
