"""AudioMAE's checkpoint layout (pretrained.pth / finetuned.pth) <-> our VitEncoder: reading the
official files (tests/fixtures/audiomae_official, saved by AudioMAE's own code), refusing what does
not fit by name, and our exporter's round trip. The official outputs themselves are reproduced in
test_audiomae_official.py."""
from __future__ import annotations

import logging
import os

import pytest
import torch
from omegaconf import OmegaConf

from conftest import FIXTURES
from supmam_plugin.commands.convert_audiomae import main as convert_main
from supmam_plugin.core.checkpoints import (
    ENCODER_FIELDS,
    CheckpointError,
    apply_architecture,
    audiomae_head,
    encoder_from_audiomae_state,
    encoder_to_audiomae_state,
    load_strict,
    read_encoder,
)
from supmam_plugin.models.classifier import SupmamClassifier, SupmamClassifierConfig
from supmam_plugin.core.vit import VitEncoder, VitEncoderConfig

OFFICIAL = os.path.join(FIXTURES, "audiomae_official")
PRETRAINED = os.path.join(OFFICIAL, "pretrained.pth")
FINETUNED = os.path.join(OFFICIAL, "finetuned.pth")


def official(name="pretrained.pth") -> dict:
    return torch.load(os.path.join(OFFICIAL, name), map_location="cpu", weights_only=False)


TINY = dict(encoder_layers=2, encoder_embed_dim=192, encoder_heads=3, input_frames=1024, cls_token=True)


def random_encoder(seed=0, **overrides) -> VitEncoder:
    torch.manual_seed(seed)
    encoder = VitEncoder(OmegaConf.structured(VitEncoderConfig(**{**TINY, **overrides})))
    with torch.no_grad():
        for p in encoder.parameters():  # every weight random, LayerNorms and biases included
            p.normal_(0.0, 0.05)
        encoder.cls_token.normal_(0.0, 1.0)
    return encoder.eval()


def fbank_batch(frames=1024, seed=1):
    return torch.randn(2, frames, 128, generator=torch.Generator().manual_seed(seed))


def encode(encoder, fbank, final_norm=True):
    with torch.no_grad():
        return encoder.encode(encoder.embed_patches(fbank), final_norm=final_norm)


def load_fresh(path) -> tuple[VitEncoder, dict]:
    found = read_encoder(str(path))
    cfg = OmegaConf.structured(VitEncoderConfig(cls_token=False, position_layout="grid"))  # all taken from the file
    apply_architecture(cfg, found.architecture, str(path))
    encoder = VitEncoder(cfg)
    load_strict(encoder, found.weights, str(path))
    return encoder.eval(), found.architecture


@pytest.fixture
def encoder():
    return random_encoder()


@pytest.fixture
def pretrained_pth(encoder, tmp_path):
    """Our encoder exported in AudioMAE's layout (encoder keys only)."""
    path = tmp_path / "exported.pth"
    torch.save(encoder_to_audiomae_state(encoder), path)
    return path


def rewritten(tmp_path, change, name="changed.pth", source="pretrained.pth"):
    """The official file with ``change(state_dict)`` applied, saved under tmp_path."""
    state = official(source)
    change(state["model"])
    path = tmp_path / name
    torch.save(state, path)
    return path


def test_round_trip_gives_identical_outputs(encoder, pretrained_pth):
    fbank = fbank_batch()
    expected = encode(encoder, fbank)
    loaded, architecture = load_fresh(pretrained_pth)
    assert architecture == {f: getattr(OmegaConf.structured(VitEncoderConfig(**TINY)), f) for f in ENCODER_FIELDS}
    assert set(architecture) == set(ENCODER_FIELDS)
    assert loaded.state_dict().keys() == encoder.state_dict().keys()
    for key, value in encoder.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert torch.equal(encode(loaded, fbank), expected)


def test_export_layout(encoder):
    model = encoder_to_audiomae_state(encoder)["model"]
    assert model["pos_embed"].shape == (1, 513, 192)
    assert torch.equal(model["pos_embed"][0, 0], torch.zeros(192))
    assert torch.equal(model["pos_embed"][:, 1:], encoder.pos_embed)  # the table as it is (data)
    assert torch.equal(model["cls_token"], encoder.cls_token.detach())
    assert model["patch_embed.proj.weight"].shape == (192, 1, 16, 16)
    with pytest.raises(ValueError, match="CLS"):
        encoder_to_audiomae_state(VitEncoder(OmegaConf.structured(VitEncoderConfig(**{**TINY, "cls_token": False}))))


def test_other_clip_length_and_width_are_inferred(tmp_path):
    encoder = random_encoder(encoder_embed_dim=128, encoder_heads=2, input_frames=512, mlp_ratio=2.0)
    path = tmp_path / "esc.pth"
    torch.save(encoder_to_audiomae_state(encoder), path)
    loaded, architecture = load_fresh(path)
    assert architecture["input_frames"] == 512 and architecture["position_layout"] == "audiomae" and architecture["mlp_ratio"] == 2.0
    assert architecture["encoder_heads"] == 2  # 128 / 64
    fbank = fbank_batch(frames=512)
    assert torch.equal(encode(loaded, fbank), encode(encoder, fbank))


def test_classifier_takes_architecture_and_weights_from_the_official_file(caplog):
    cfg = OmegaConf.structured(SupmamClassifierConfig(
        pretrained=PRETRAINED, encoder_layers=12, encoder_embed_dim=768, encoder_heads=12, cls_token=False
    ))
    with caplog.at_level(logging.INFO):
        model = SupmamClassifier(cfg, num_classes=5)
    assert "model.encoder_layers = 2" in caplog.text and "model.cls_token = True" in caplog.text
    assert (cfg.encoder_layers, cfg.encoder_embed_dim, cfg.encoder_heads, cfg.cls_token) == (2, 192, 3, True)
    assert model.head.weight.shape == (5, 192)
    sd = official()["model"]
    loaded = model.encoder.state_dict()
    assert torch.equal(loaded["cls_token"], sd["cls_token"] + sd["pos_embed"][:, :1])
    assert torch.equal(loaded["pos_embed"], sd["pos_embed"][:, 1:])
    for key in ("patch_embed.proj.weight", "blocks.1.attn.qkv.weight", "blocks.0.mlp.fc2.bias", "norm.weight"):
        assert torch.equal(loaded[key], sd[key]), key


def test_cls_position_row_is_folded_into_the_token(tmp_path):
    def nonzero_cls_row(sd):  # AudioMAE's row 0 is zero; the formula must hold regardless
        sd["pos_embed"][:, 0] = torch.randn(192)

    path = rewritten(tmp_path, nonzero_cls_row)
    sd = torch.load(path, weights_only=False)["model"]
    loaded, _ = load_fresh(path)
    assert torch.equal(loaded.cls_token.detach(), sd["cls_token"] + sd["pos_embed"][:, :1])


def test_official_finetuned_pth_loads_with_identity_norm_and_its_head(caplog):
    with caplog.at_level(logging.INFO):
        loaded, architecture = load_fresh(FINETUNED)
    assert "no final norm" in caplog.text and architecture["encoder_layers"] == 2
    assert torch.equal(loaded.norm.weight, torch.ones(192)) and torch.equal(loaded.norm.bias, torch.zeros(192))
    head = audiomae_head(official("finetuned.pth"), FINETUNED)
    assert set(head) == {"fc_norm.weight", "fc_norm.bias", "head.weight", "head.bias"}
    assert head["head.weight"].shape == (5, 192)
    assert audiomae_head(official()) is None
    # model.pretrained takes the encoder only: fine-tuning builds its own head
    classifier = SupmamClassifier(OmegaConf.structured(SupmamClassifierConfig(pretrained=FINETUNED)), num_classes=3)
    assert classifier.head.weight.shape == (3, 192)


def test_renamed_key_is_named(tmp_path):
    def rename(sd):
        sd["blocks.0.attention.qkv.weight"] = sd.pop("blocks.0.attn.qkv.weight")

    path = rewritten(tmp_path, rename, "renamed.pth")
    with pytest.raises(CheckpointError) as e:
        read_encoder(str(path))
    message = str(e.value)
    assert str(path) in message
    assert "blocks.0.attention.qkv.weight" in message and "blocks.0.attn.qkv.weight" in message


def test_shuffled_positions_are_refused(tmp_path):
    def shuffle(sd):
        pos = sd["pos_embed"]
        order = torch.randperm(pos.size(1) - 1, generator=torch.Generator().manual_seed(0)) + 1
        sd["pos_embed"] = torch.cat([pos[:, :1], pos[:, order]], dim=1)

    path = rewritten(tmp_path, shuffle, "shuffled.pth")
    with pytest.raises(CheckpointError, match="neither AudioMAE's layout") as e:
        read_encoder(str(path))
    assert str(path) in str(e.value) and "grid layout" in str(e.value)


def test_learned_positions_are_refused(tmp_path):
    def learned(sd):
        sd["pos_embed"] = sd["pos_embed"] + 0.01 * torch.randn_like(sd["pos_embed"])

    with pytest.raises(CheckpointError, match="learned positions"):
        read_encoder(str(rewritten(tmp_path, learned, "learned.pth")))


def test_overlapping_patch_grid_is_refused(tmp_path):
    def overlapping(sd):  # AudioMAE's custom stride-10 patches: 101 x 12 positions
        sd["pos_embed"] = torch.zeros(1, 101 * 12 + 1, 192)

    with pytest.raises(CheckpointError, match="another grid or patching"):
        read_encoder(str(rewritten(tmp_path, overlapping, "overlap.pth")))


@pytest.mark.parametrize("content, message", [
    ({"foo": 1}, "not an encoder checkpoint"),
    ([1, 2, 3], "not an encoder checkpoint"),
    ({"model": {"fc.weight": torch.zeros(3, 3)}}, "no encoder blocks"),
    ({"model": {"blocks.0.norm1.weight": torch.zeros(3)}}, "encoder keys missing"),
])
def test_not_a_state_dict_fails_clearly(tmp_path, content, message):
    path = tmp_path / "other.pth"
    torch.save(content, path)
    with pytest.raises(CheckpointError, match=message) as e:
        read_encoder(str(path))
    assert str(path) in str(e.value)


def test_image_mae_patch_embedding_does_not_fit(tmp_path):
    def rgb(sd):
        sd["patch_embed.proj.weight"] = torch.randn(192, 3, 16, 16)

    with pytest.raises(CheckpointError, match="patch_embed.proj.weight"):
        load_fresh(rewritten(tmp_path, rgb, "rgb.pth"))


def test_convert_command(encoder, pretrained_pth, tmp_path, capsys):
    assert convert_main([str(pretrained_pth), "--check"]) == 0
    out = capsys.readouterr().out
    assert "model.encoder_layers=2" in out and "model.encoder_embed_dim=192" in out
    assert "task.target_frames=1024" in out and "model.input_frames" not in out and out.rstrip().endswith("ok")

    stripped = tmp_path / "encoder.pth"
    assert convert_main([str(pretrained_pth), str(stripped)]) == 0
    loaded, _ = load_fresh(stripped)
    fbank = fbank_batch(seed=5)
    assert torch.equal(encode(loaded, fbank), encode(encoder, fbank))

    bad = tmp_path / "bad.pth"
    torch.save({"foo": 1}, bad)
    capsys.readouterr()
    assert convert_main([str(bad), "--check"]) == 1
    captured = capsys.readouterr()
    assert "error" in captured.err and str(bad) in captured.err and "ok" not in captured.out
    assert convert_main([str(tmp_path / "missing.pth"), "--check"]) == 1


def audiomae_style_positions(dim, patch_hw):
    """AudioMAE's recipe in numpy (util/pos_embed.get_2d_sincos_pos_embed_flexible, as described:
    coordinates from a width-first meshgrid over patch_hw = (freq patches, time patches); the first
    half of the channels encodes the width coordinate, the second the height), with a zero [CLS]
    row, as stored in its checkpoints."""
    import numpy as np

    def one_axis(d, pos):
        omega = 1.0 / 10000 ** (np.arange(d // 2, dtype=np.float64) / (d / 2.0))
        out = np.outer(pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    w, h = np.meshgrid(np.arange(patch_hw[1], dtype=np.float32), np.arange(patch_hw[0], dtype=np.float32))
    emb = np.concatenate([one_axis(dim // 2, w), one_axis(dim // 2, h)], axis=1)
    emb = np.concatenate([np.zeros((1, dim)), emb], axis=0)
    return torch.from_numpy(emb).float().unsqueeze(0)


def test_vit_base_positions_of_audiomae_recipe_are_recognised():
    """A ViT-B AudioMAE table (patch_hw = (128 // 16, 1024 // 16) = (8, 64), tokens time-major)."""
    state = {"cls_token": torch.zeros(1, 1, 768), "pos_embed": audiomae_style_positions(768, (8, 64)),
             "patch_embed.proj.weight": torch.zeros(768, 1, 16, 16), "patch_embed.proj.bias": torch.zeros(768)}
    for key in ("norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2"):  # shapes do not matter here
        state[f"blocks.0.{key}.weight"] = torch.zeros(3072 if key == "mlp.fc1" else 768, 768)
        state[f"blocks.0.{key}.bias"] = torch.zeros(1)
    weights, architecture = encoder_from_audiomae_state({"model": state}, "vit_b.pth")
    assert architecture == {"encoder_layers": 1, "encoder_embed_dim": 768, "encoder_heads": 12, "mlp_ratio": 4.0,
                            "patch_size": 16, "input_frames": 1024, "num_mel_bins": 128, "cls_token": True,
                            "position_layout": "audiomae"}
    assert torch.equal(weights["pos_embed"], state["pos_embed"][:, 1:]) and torch.equal(weights["norm.weight"],
                                                                                        torch.ones(768))
    # the same recipe on the true (time, freq) grid is the "grid" layout (this plugin before it took AudioMAE's layout)
    state["pos_embed"] = audiomae_style_positions(768, (64, 8))
    assert encoder_from_audiomae_state({"model": state}, "vit_b.pth")[1]["position_layout"] == "grid"
