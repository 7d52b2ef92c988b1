"""Teachers chosen by config (supmam_plugin.teachers): the ``checkpoint_encoder`` teacher (an encoder this plugin
reads) against the official AudioMAE outputs and against ``load_encoder``, its targets, its cache
against its direct forward, and both registered teachers through fairseq-hydra-train."""
from __future__ import annotations

import os
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import supmam_plugin  # noqa: F401
from supmam_plugin.commands.precompute_teacher import main as precompute_main
from supmam_plugin.data.teacher_cache import TeacherCacheError
from supmam_plugin.inference.encoder import load_encoder
from supmam_plugin.models.supmam_model import SupmamConfig
from supmam_plugin.teachers import TEACHERS, CheckpointEncoderTeacher, ClapTeacher, build_teacher

from conftest import CPU_RUN, FIXTURES, TINY_MODEL, pretraining_batch, run_cli, train_log_records

OFFICIAL = os.path.join(FIXTURES, "audiomae_official")
PRETRAINED = os.path.join(OFFICIAL, "pretrained.pth")  # AudioMAE's MaskedAutoencoderViT: 2 blocks x 192
FINETUNED = os.path.join(OFFICIAL, "finetuned.pth")
ENCODER_TEACHER = dict(target="teacher", teacher="checkpoint_encoder", teacher_checkpoint=PRETRAINED)


@pytest.fixture(scope="module")
def teacher():
    return CheckpointEncoderTeacher(PRETRAINED, grid=(64, 8))


def test_both_teachers_are_registered_and_chosen_by_config():
    assert set(TEACHERS) == {"laion_clap", "checkpoint_encoder", "clap"}
    encoder = build_teacher(SupmamConfig(**ENCODER_TEACHER), grid=(64, 8), student_seconds=10.24)
    assert isinstance(encoder, CheckpointEncoderTeacher) and encoder.name == "checkpoint_encoder"
    assert (encoder.sample_rate, encoder.num_samples, encoder.output_dim, encoder.layer) == (16000, 164080, 192, 1)
    clap = build_teacher(SupmamConfig(target="teacher", teacher_checkpoint="random"), grid=(64, 8))
    assert isinstance(clap, ClapTeacher) and (clap.sample_rate, clap.num_samples) == (48000, 480000)
    with pytest.raises(ValueError, match="model.teacher_checkpoint .*teacher checkpoint_encoder: a checkpoint of this plugin"):
        build_teacher(SupmamConfig(target="teacher", teacher="checkpoint_encoder"), grid=(64, 8))
    with pytest.raises(ValueError, match=r"model.teacher_layer=2: .*pretrained.pth has blocks 0..1"):
        CheckpointEncoderTeacher(PRETRAINED, grid=(64, 8), layer=2)


def test_the_last_block_is_audiomaes_own_encoder_output(teacher):
    """The official code's tokens (after its final norm) are the teacher's map put through that norm."""
    fbank = torch.from_numpy(np.load(os.path.join(OFFICIAL, "fbank.npy")))  # (2, 1024, 128)
    official = torch.from_numpy(np.load(os.path.join(OFFICIAL, "encoder_tokens.npy")))[:, 1:]  # (2, 512, 192)
    native = teacher.map_of_fbank(fbank)  # (2, 192, 8 freq, 64 time)
    assert native.shape == (2, 192, 8, 64)
    tokens = native.permute(0, 3, 2, 1).reshape(2, 512, 192)  # back to time-major t * 8 + f
    with torch.no_grad():
        normed = teacher.encoder.norm(tokens)
    assert (normed - official).abs().max().item() < 1e-5


@pytest.mark.parametrize("checkpoint, layer", [(PRETRAINED, -1), (PRETRAINED, 0), (FINETUNED, -1)])
def test_token_map_equals_load_encoder_layers(checkpoint, layer):
    """Two code paths from waveforms: the teacher and embeddings.load_encoder (zero frames past the
    end of the 3 s clip in both)."""
    teacher = CheckpointEncoderTeacher(checkpoint, grid=(64, 8), layer=layer)
    wave = 0.1 * torch.randn(2, 48000, generator=torch.Generator().manual_seed(0))
    lengths = torch.tensor([48000, 30000])
    native = teacher.token_map(wave, lengths)
    embedded = load_encoder(checkpoint).embed([wave[0].numpy(), wave[1, :30000].numpy()], layers=(teacher.layer,))
    expected = torch.from_numpy(embedded[f"layer_{teacher.layer}"]).reshape(2, 64, 8, 192).permute(0, 3, 2, 1)
    torch.testing.assert_close(native, expected, rtol=0, atol=1e-5)


def test_targets_on_the_same_grid_are_the_map_normalised_per_patch(teacher):
    native = torch.randn(2, 192, 8, 64, generator=torch.Generator().manual_seed(1)) * 5 + 3
    teacher.student_seconds = 10.24
    targets = teacher.targets_from_token_map(native)  # (2, 512, 192)
    for t, f in [(0, 0), (0, 7), (17, 3), (63, 7)]:
        expected = F.layer_norm(native[:, :, f, t], (192,))  # patch t * 8 + f, normalised by hand
        assert (targets[:, t * 8 + f] - expected).abs().max().item() < 1e-5
    assert targets.mean(-1).abs().max() < 1e-5 and (targets.std(-1, unbiased=False) - 1).abs().max() < 1e-3


def test_cached_maps_give_the_targets_of_the_direct_forward(tone_dataset, tmp_path):
    cache = str(tmp_path / "cache")
    assert precompute_main([tone_dataset, "train", "--out-dir", cache, "--teacher", "checkpoint_encoder", "--teacher-checkpoint",
                            PRETRAINED, "--batch-size", "5", "--device", "cpu"]) == 0
    model, online = pretraining_batch(tone_dataset, {"random_crop": False}, ENCODER_TEACHER, size=6)[1:]
    cached = pretraining_batch(tone_dataset, {"teacher_cache": cache}, ENCODER_TEACHER, size=6)[2]
    # the teacher hears the student's own crop (16 kHz, 1024 frames): no second read of the file
    heard, source = online["net_input"]["teacher_source"], online["net_input"]["source"]
    assert heard.shape == (6, 164080) and not heard[:, source.shape[1]:].any()
    torch.testing.assert_close(heard[:, :source.shape[1]], source, rtol=0, atol=0)
    assert torch.equal(online["net_input"]["teacher_source_lengths"], online["net_input"]["source_lengths"])
    assert cached["net_input"]["teacher_token_map"].shape == (6, 192, 8, 64)
    model.eval()
    direct = model.teacher_targets(online["net_input"]["teacher_source"], online["net_input"]["teacher_source_lengths"])
    from_cache = model.teacher_targets(teacher_token_map=cached["net_input"]["teacher_token_map"])
    assert direct.shape == (6, 512, 192)
    torch.testing.assert_close(from_cache, direct, rtol=0, atol=2e-2)  # float16 storage of O(1) values
    # a cache of another layer is another teacher
    with pytest.raises(TeacherCacheError, match="another teacher than the model's: variant 'layer 1'"):
        pretraining_batch(tone_dataset, {"teacher_cache": cache}, {**ENCODER_TEACHER, "teacher_layer": 0})


@pytest.mark.parametrize("teacher_overrides", [
    ["model.teacher=checkpoint_encoder", f"model.teacher_checkpoint={PRETRAINED}"],
    ["model.teacher=laion_clap", "model.teacher_checkpoint=random"],
], ids=["checkpoint_encoder", "laion_clap"])
def test_mam_clap_recipe_trains_with_each_teacher(teacher_overrides, tone_dataset, tmp_path):
    out = run_cli([
        "fairseq-hydra-train", "--config-dir", "examples/supmam/pretraining", "--config-name", "mam_clap",
        f"task.data={tone_dataset}", *teacher_overrides, f"checkpoint.save_dir={tmp_path}",
        "optimization.max_update=2", "dataset.batch_size=4", *TINY_MODEL, *CPU_RUN,
    ])
    assert out.returncode == 0, out.stdout[-3000:]
    name = teacher_overrides[0].split("=")[1]
    assert f"teacher {name} (" in out.stdout
    records = train_log_records(out.stdout)
    assert [r["num_updates"] for r in records] == ["1", "2"]
    assert all(np.isfinite(float(r["loss"])) and float(r["visible_loss"]) > 0 for r in records)


def test_configs_of_older_versions_are_read_in_todays_names():
    from supmam_plugin.core.checkpoints import upgrade_teacher_fields

    old = {"target": "clap", "clap_checkpoint": "/m/630k.pt", "clap_interpolation": "nearest", "mask_ratio": 0.2}
    assert upgrade_teacher_fields(old) == {"target": "teacher", "teacher": "laion_clap", "teacher_checkpoint": "/m/630k.pt",
                                           "teacher_interpolation": "nearest", "mask_ratio": 0.2}
    today = {"target": "teacher", "teacher": "checkpoint_encoder", "teacher_checkpoint": "x.pt"}
    assert upgrade_teacher_fields(today) == today
    assert upgrade_teacher_fields({**today, "teacher": "supmam"}) == today  # the encoder teacher's old name


def test_the_encoder_teachers_old_name_still_works(tone_dataset, tmp_path):
    """Configs and caches that name the encoder teacher 'supmam' (its old name) are read as
    'checkpoint_encoder': the model builds it, and a cache recorded under the old name serves it."""
    import json

    old = {**ENCODER_TEACHER, "teacher": "supmam"}
    assert isinstance(build_teacher(SupmamConfig(**old), grid=(64, 8)), CheckpointEncoderTeacher)
    cache = str(tmp_path / "cache")
    assert precompute_main([tone_dataset, "train", "--out-dir", cache, "--teacher", "supmam", "--teacher-checkpoint",
                            PRETRAINED, "--batch-size", "6", "--device", "cpu"]) == 0
    meta_path = os.path.join(cache, "train.teacher.json")
    meta = json.load(open(meta_path))
    assert meta["teacher"] == "checkpoint_encoder"
    json.dump({**meta, "teacher": "supmam"}, open(meta_path, "w"))  # as a cache made before the rename
    batch = pretraining_batch(tone_dataset, {"teacher_cache": cache}, ENCODER_TEACHER, size=2)[2]
    assert batch["net_input"]["teacher_token_map"].shape == (2, 192, 8, 64)


def test_precompute_reports_progress(tone_dataset, tmp_path):
    out = run_cli(["supmam-precompute-teacher", tone_dataset, "train", "--out-dir", str(tmp_path / "cache"), "--teacher",
                   "checkpoint_encoder", "--teacher-checkpoint", PRETRAINED, "--batch-size", "4", "--device", "cpu"])
    assert out.returncode == 0, out.stdout[-3000:]
    assert "0 of 12 clips already done, 12 to go" in out.stdout
    assert re.search(r"12/12 clips, [\d.]+ clips/s, 0\.0 min left", out.stdout) and "train: cache complete" in out.stdout
