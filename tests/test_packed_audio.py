"""Packed audio (fairseq's ``shard.zip:OFFSET:LENGTH``): supmam-pack-manifest keeps every clip, label,
caption and the order; fairseq's own reader agrees on the bytes; a bad shard is named."""
from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest
import torch
from conftest import make_split_folder, tone, write_audio
from omegaconf import OmegaConf

from supmam_plugin.core.packing import pack
from supmam_plugin.commands.validate_manifest import validate
from supmam_plugin.core.audio import AudioFileError, read_mono
from supmam_plugin.core.captions import TOKENIZER_FILE, train_tokenizer
from supmam_plugin.core.file_hash import file_sha256
from supmam_plugin.core.manifest import read_manifest, write_manifest
from supmam_plugin.core.packed_audio import clip_list_sha256, parse_packed, read_packed


@pytest.fixture(scope="module")
def loose_and_packed(tmp_path_factory):
    """A multi-label folder (wav) with captions and their tokenizer, packed 5 clips a shard."""
    root = tmp_path_factory.mktemp("loose")
    make_split_folder(root, classes=("a", "b", "c"), per_class={"train": 4, "valid": 2}, seconds=0.5, multi_label=True)
    for split in ("train", "valid"):
        n = len(read_manifest(os.path.join(root, f"{split}.tsv")))
        captions = [f"clip {k} of {split} ||| a sound number {k}" for k in range(n)]
        open(os.path.join(root, f"{split}.text"), "w").write("\n".join(captions) + "\n")
    train_tokenizer([f"clip {k} a sound number of train valid" for k in range(40)], os.path.join(root, TOKENIZER_FILE),
                    vocab_size=40)
    packed = tmp_path_factory.mktemp("packed")
    for split in ("train", "valid"):
        pack(str(root), split, str(packed), shard_size=5, workers=2 if split == "train" else 1)
    return str(root), str(packed)


def load(task_name, data, split, **cfg):
    from fairseq import tasks

    import supmam_plugin  # noqa: F401 (registers the tasks)

    task = tasks.setup_task(OmegaConf.create({"_name": task_name, "data": data, **cfg}))
    return task.load_dataset(split)


def test_packed_manifest_layout_and_fairseq_reads_the_same_bytes(loose_and_packed):
    from fairseq.data.audio.audio_utils import is_sf_audio_data, parse_path, read_from_stored_zip

    loose, packed = loose_and_packed
    manifest = read_manifest(os.path.join(packed, "train.tsv"))
    assert open(manifest.path).readline().strip() == "."  # the folder moves as a whole
    assert len(manifest) == 12 and sorted(f for f in os.listdir(packed) if f.endswith(".zip")) == [
        "train-00000.zip", "train-00001.zip", "train-00002.zip", "valid-00000.zip", "valid-00001.zip"]
    for i in range(len(manifest)):
        path = manifest.audio_path(i)
        shard, offset, length = parse_packed(path)
        assert parse_path(path) == (shard, [offset, length])
        data = read_packed(path, manifest.where(i))
        assert data == read_from_stored_zip(shard, offset, length) and is_sf_audio_data(data)
    for name in ("train.label", "train.text", "dict.label.txt", TOKENIZER_FILE):
        assert open(os.path.join(packed, name), "rb").read() == open(os.path.join(loose, name), "rb").read()
    # a teacher cache made for the loose manifest serves the packed one
    assert clip_list_sha256(manifest.path) == file_sha256(os.path.join(loose, "train.tsv"))
    assert json.load(open(os.path.join(packed, "train.packed.json")))["num_clips"] == 12


@pytest.mark.parametrize("split", ["train", "valid"])
def test_packed_equals_loose_multi_label(loose_and_packed, split):
    loose, packed = loose_and_packed
    cfg = dict(labels="label", multi_label=True)
    a = load("supmam_audio_classification", loose, split, **cfg)
    b = load("supmam_audio_classification", packed, split, **cfg)
    assert len(a) == len(b) and np.array_equal(a.ordered_indices(), b.ordered_indices())
    batch_a, batch_b = a.collater([a[i] for i in range(len(a))]), b.collater([b[i] for i in range(len(b))])
    assert torch.equal(batch_a["net_input"]["source"], batch_b["net_input"]["source"])
    assert torch.equal(batch_a["target"], batch_b["target"]) and batch_a["target"].sum(1).max() == 2


def test_packed_equals_loose_single_label_random_crops(tmp_path):
    loose = make_split_folder(tmp_path / "loose", per_class={"train": 3}, seconds=2.0)
    pack(loose, "train", str(tmp_path / "packed"), shard_size=4)
    cfg = dict(labels="label", target_frames=64, random_crop=True)  # 0.66 s crops of 2 s clips
    a = load("supmam_audio_classification", loose, "train", **cfg)
    b = load("supmam_audio_classification", str(tmp_path / "packed"), "train", **cfg)
    for i in range(len(a)):
        x, y = a[i], b[i]
        assert x["start_seconds"] == y["start_seconds"] > 0 and x["label"] == y["label"]
        assert torch.equal(x["source"], y["source"])


def test_packed_equals_loose_captions(loose_and_packed):
    loose, packed = loose_and_packed
    a, b = load("clap_pretraining", loose, "valid"), load("clap_pretraining", packed, "valid")
    batch_a, batch_b = a.collater([a[i] for i in range(len(a))]), b.collater([b[i] for i in range(len(b))])
    assert batch_a.keys() == batch_b.keys()
    for key in batch_a["net_input"]:
        assert torch.equal(batch_a["net_input"][key], batch_b["net_input"][key]), key


def copy_packed(packed, tmp_path, split="train"):
    import shutil

    target = tmp_path / "copy"
    shutil.copytree(packed, target)
    return str(target), read_manifest(os.path.join(target, f"{split}.tsv"))


def test_truncated_shard_is_named_with_the_manifest_line(loose_and_packed, tmp_path):
    _, packed = loose_and_packed
    data, manifest = copy_packed(packed, tmp_path)
    shard, offset, length = parse_packed(manifest.audio_path(3))
    with open(shard, "r+b") as f:
        f.truncate(offset + length // 2)
    with pytest.raises(AudioFileError, match=rf"train.tsv:5: .*past the end of {shard}.*truncated"):
        read_mono(manifest.audio_path(3), where=manifest.where(3))
    problems = validate(data, "train", labels=None, progress_every=0)
    assert len(problems) == 2 and "train.tsv:5" in problems[0] and "train.tsv:6" in problems[1]  # clips 4, 5 of shard 0
    # the skip policy applies: the run goes on without the clip
    dataset = load("supmam_pretraining", data, "train", labels=None, skip_unreadable=True, max_unreadable_fraction=0.5)
    batch = dataset.collater([dataset[i] for i in range(len(dataset))])
    assert batch["unreadable"] == 2 and len(batch["id"]) == len(dataset) - 2


def test_offset_past_the_end_and_not_audio(loose_and_packed, tmp_path):
    _, packed = loose_and_packed
    data, manifest = copy_packed(packed, tmp_path)
    shard, offset, length = parse_packed(manifest.audio_path(0))
    size = os.path.getsize(shard)
    with pytest.raises(AudioFileError, match="past the end"):
        read_mono(f"{shard}:{size - 10}:{length}", where="train.tsv:2")
    text = tmp_path / "notes.zip"
    with zipfile.ZipFile(text, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("notes.txt", "not audio at all, " * 20)
    from supmam_plugin.core.packed_audio import shard_entries

    entry = shard_entries(str(text), ["notes.txt"])[0]
    with pytest.raises(AudioFileError, match=rf"train.tsv:7: {tmp_path}/{entry}: cannot read audio .*packed bytes are not audio"):
        read_mono(os.path.join(str(tmp_path), entry), where="train.tsv:7")
    with pytest.raises(AudioFileError, match="shard .*missing.zip not found"):
        read_mono(f"{tmp_path}/missing.zip:0:10", where="train.tsv:8")


def test_packing_refuses_what_it_cannot_keep(tmp_path):
    root = tmp_path / "data"
    write_audio(root / "a.wav", tone(0.5, 16000), 16000)
    (root / "b.wav").write_bytes(b"RIFF but not really a wave file")
    write_manifest(str(root), "train", str(root), [("a.wav", 8000), ("b.wav", 8000)])
    with pytest.raises(AudioFileError, match=r"train.tsv:3: .*b.wav: cannot read audio"):
        pack(str(root), "train", str(tmp_path / "out"))
    assert not any(name.endswith(".zip") for name in os.listdir(tmp_path / "out"))  # nothing half-written
    with pytest.raises(ValueError, match="is the data folder"):
        pack(str(root), "train", str(root))


# ----------------------------------------------------------------------------- nothing silently wrong (issue 40)


def small_loose_folder(root, count=4):
    """Loose single-label folder of ``count`` 0.5-s tones (a.wav, b.wav, ...), labels x / y."""
    from supmam_plugin.core.manifest import write_class_list

    names = [f"{chr(97 + k)}.wav" for k in range(count)]
    for k, name in enumerate(names):
        write_audio(root / name, tone(0.5, 16000, freq=300.0 + 100 * k, seed=k), 16000)
    write_manifest(str(root), "train", str(root), [(n, 8000) for n in names], [["x" if k % 2 else "y"] for k in range(count)])
    write_class_list(str(root), ["x", "y"])
    return str(root)


def test_packing_again_with_other_audio_is_refused_unless_overwrite(tmp_path):
    """Before: shards already there were kept, so a clip whose audio (and label) changed kept its old
    bytes in the shard under the new label, and the new record made caches for the new audio accept it."""
    loose = small_loose_folder(tmp_path / "data")
    out = str(tmp_path / "packed")
    tsv = pack(loose, "train", out, shard_size=2)
    before = read_packed(read_manifest(tsv).audio_path(1), "line 2")
    assert pack(loose, "train", out, shard_size=2) == tsv  # the same packing again: nothing to do, accepted
    time_before = os.stat(os.path.join(out, "train-00000.zip")).st_mtime_ns
    write_audio(tmp_path / "data" / "b.wav", tone(0.5, 16000, freq=1234.0, seed=9), 16000)  # same name, same length
    (tmp_path / "data" / "train.label").write_text("y\ny\ny\nx\n")
    with pytest.raises(ValueError, match="another packing of train: .*audio files were others.*--overwrite"):
        pack(loose, "train", out, shard_size=2)
    assert os.stat(os.path.join(out, "train-00000.zip")).st_mtime_ns == time_before  # nothing touched
    pack(loose, "train", out, shard_size=2, overwrite=True)
    after = read_packed(read_manifest(tsv).audio_path(1), "line 2")
    assert after != before and after == open(tmp_path / "data" / "b.wav", "rb").read()
    assert open(os.path.join(out, "train.label")).read() == "y\ny\ny\nx\n"
    with pytest.raises(ValueError, match="--shard-size 2"):
        pack(loose, "train", out, shard_size=3)


def test_an_edited_packed_manifest_is_no_longer_its_clips(tmp_path):
    """Before: a cache's identity for a packed split came from the packing record alone, so swapping two
    lines of the packed train.tsv trained MAM-CLAP with every target belonging to another clip."""
    from supmam_plugin.core.packed_audio import PackedAudioError

    loose = small_loose_folder(tmp_path / "data")
    tsv = pack(loose, "train", str(tmp_path / "packed"), shard_size=2)
    assert clip_list_sha256(tsv) == file_sha256(os.path.join(loose, "train.tsv"))
    lines = open(tsv).read().splitlines()
    lines[1], lines[2] = lines[2], lines[1]
    open(tsv, "w").write("\n".join(lines) + "\n")
    with pytest.raises(PackedAudioError, match=r"train.tsv: changed since it was packed.*--overwrite"):
        clip_list_sha256(tsv)


def test_members_are_named_by_manifest_line_and_any_path_packs(tmp_path):
    """Before: members were named by the manifest's relative path; an absolute one gave a bare KeyError
    and a half-written shard. Now every member is its line, and absolute or ../ paths pack the bytes
    the loose manifest reads."""
    elsewhere = tmp_path / "elsewhere"
    write_audio(elsewhere / "far.wav", tone(0.5, 16000, freq=500.0), 16000)
    root = tmp_path / "data" / "clips"
    write_audio(root / "near.flac", tone(0.5, 16000, freq=700.0), 16000)
    write_manifest(str(tmp_path / "data"), "train", str(root),
                   [(str(elsewhere / "far.wav"), 8000), ("../../elsewhere/far.wav", 8000), ("near.flac", 8000)])
    tsv = pack(str(tmp_path / "data"), "train", str(tmp_path / "packed"))
    with zipfile.ZipFile(tmp_path / "packed" / "train-00000.zip") as shard:
        assert shard.namelist() == ["000000000.wav", "000000001.wav", "000000002.flac"]
    loose, packed = read_manifest(str(tmp_path / "data" / "train.tsv")), read_manifest(tsv)
    for i in range(3):
        assert read_packed(packed.audio_path(i), "") == open(loose.audio_path(i), "rb").read()
