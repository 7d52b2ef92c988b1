"""Checkpoints written by the plugin before the AudioMAE layout (commit 458ab0c: grid position
tables rebuilt at load time and not saved, timm Swin V1 decoder, LayerNorm after the spectrogram
head; tests/fixtures/legacy_458ab0c, made by that commit's code, see its README).

Their encoders keep loading everywhere with the positions they were trained with (the old code's
outputs are reproduced); a legacy pretraining checkpoint's decoder does not fit, so the ``supmam``
model refuses it with a message that says what still works.
"""
from __future__ import annotations

import os

import pytest
import torch
from fairseq import checkpoint_utils
from omegaconf import OmegaConf

from conftest import CPU_RUN, FIXTURES, run_cli
from supmam_plugin.commands import plot_reconstruction
from supmam_plugin.pictures import reconstruction
from supmam_plugin.core.manifest import write_class_list
from supmam_plugin.inference.encoder import load_encoder
from supmam_plugin.core.checkpoints import CheckpointError, read_encoder, upgrade_teacher_fields
from supmam_plugin.models.classifier import SupmamClassifier, SupmamClassifierConfig
from supmam_plugin.core.positions import position_table
from supmam_plugin.models.supmam_model import SupmamConfig, SupmamModel

LEGACY = os.path.join(FIXTURES, "legacy_458ab0c")
PRETRAINING = os.path.join(LEGACY, "supmam_pretraining.pt")
CLASSIFIER = os.path.join(LEGACY, "supmam_classifier.pt")
ATOL = 1e-5


@pytest.fixture(scope="module")
def expected():
    return torch.load(os.path.join(LEGACY, "expected.pt"), weights_only=False)


def patches(encoder, fbank):
    with torch.no_grad():
        return encoder.eval().features(fbank)["patches"]


@pytest.mark.parametrize("name", ["supmam_pretraining", "supmam_classifier"])
def test_load_encoder_reproduces_the_old_features(name, expected):
    found = read_encoder(os.path.join(LEGACY, f"{name}.pt"))
    assert found.architecture["position_layout"] == "grid" and found.architecture["cls_token"] is False
    encoder = load_encoder(os.path.join(LEGACY, f"{name}.pt")).encoder
    assert torch.equal(encoder.pos_embed[0], position_table(32, (8, 8), "grid"))
    torch.testing.assert_close(patches(encoder, expected["fbank"]), expected[f"{name}_patches"], atol=ATOL, rtol=0)


def test_old_pretraining_checkpoint_still_starts_fine_tuning(expected):
    cfg = OmegaConf.structured(SupmamClassifierConfig(pretrained=PRETRAINING, input_frames=128))
    classifier = SupmamClassifier(cfg, num_classes=2)
    assert (cfg.encoder_embed_dim, cfg.cls_token, cfg.position_layout) == (32, False, "grid")
    torch.testing.assert_close(patches(classifier.encoder, expected["fbank"]), expected["supmam_pretraining_patches"],
                               atol=ATOL, rtol=0)


def test_old_fine_tuned_checkpoint_loads_through_fairseq(expected, tmp_path):
    write_class_list(str(tmp_path), ["low", "high"])
    models, _, _ = checkpoint_utils.load_model_ensemble_and_task([CLASSIFIER], arg_overrides={"data": str(tmp_path)})
    model = models[0].eval()
    assert model.cfg.get("position_layout", "audiomae") == "audiomae"  # the cfg predates the field ...
    assert torch.equal(model.encoder.pos_embed[0], position_table(32, (8, 8), "grid"))  # ... the table is right
    with torch.no_grad():
        logits = model(fbank=expected["fbank"])["logits"]
    torch.testing.assert_close(logits, expected["supmam_classifier_logits"], atol=ATOL, rtol=0)


def test_old_pretraining_checkpoint_is_refused_by_the_supmam_model():
    state = torch.load(PRETRAINING, map_location="cpu", weights_only=False)
    model_cfg = {k: v for k, v in upgrade_teacher_fields(state["cfg"]["model"]).items() if k != "_name"}
    model = SupmamModel(OmegaConf.structured(SupmamConfig(**model_cfg)), num_classes=2)
    with pytest.raises(CheckpointError, match="before the AudioMAE decoder") as e:
        model.load_state_dict(state["model"], strict=True)
    message = str(e.value)
    assert "model.pretrained=" in message and "load_encoder" in message and "relative_position_bias_table" in message


def test_plot_reconstruction_names_the_file_and_the_way_out(tone_dataset, tmp_path, capsys):
    with pytest.raises(CheckpointError, match="supmam_pretraining.pt"):
        reconstruction.load_pretraining_model(PRETRAINING)
    audio = os.path.join(tone_dataset, "audio", "low", "clip0.wav")
    assert plot_reconstruction.main([PRETRAINING, audio, "--out", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert PRETRAINING in err and f"model.pretrained={PRETRAINING}" in err
    assert not os.path.exists(tmp_path / "x.png")


def test_resuming_an_old_pretraining_run_is_refused_with_the_reason(tone_dataset, tmp_path):
    out = run_cli([
        "fairseq-hydra-train", "--config-dir", "examples/supmam/pretraining", "--config-name", "supmam",
        f"task.data={tone_dataset}", "task.multi_label=false", f"checkpoint.save_dir={tmp_path}",
        f"checkpoint.restore_file={PRETRAINING}", "optimization.max_update=3", "dataset.batch_size=4",
        "task.target_frames=128", "model.encoder_layers=1", "model.encoder_embed_dim=32", "model.encoder_heads=2",
        "model.decoder_embed_dim=16", "model.decoder_heads=2", "model.decoder_layers=2", "model.cls_hidden_dim=8",
        "model.cls_token=false", *CPU_RUN,
    ])
    assert out.returncode != 0
    assert "before the AudioMAE decoder" in out.stdout and "model.pretrained=" in out.stdout
