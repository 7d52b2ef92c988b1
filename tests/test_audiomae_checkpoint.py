"""AudioMAE's released checkpoint layout (pretrained.pth / finetuned.pth) <-> our VitEncoder."""
from __future__ import annotations

import logging
from functools import partial

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from omegaconf import OmegaConf
from timm.models.vision_transformer import Block

from supmam_plugin.commands.convert_audiomae import main as convert_main
from supmam_plugin.models.audiomae_checkpoint import (
    audiomae_head,
    encoder_from_audiomae_state,
    encoder_to_audiomae_state,
)
from supmam_plugin.models.classifier import SupmamClassifier, SupmamClassifierConfig
from supmam_plugin.models.pretrained_encoder import (
    ENCODER_FIELDS,
    CheckpointError,
    apply_architecture,
    check_and_load,
    load_encoder_weights,
)
from supmam_plugin.models.vit_encoder import VitEncoder, VitEncoderConfig

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


def as_pretrained_pth(encoder) -> dict:
    """Our encoder exported, plus MAE decoder entries, like AudioMAE's pretrained.pth."""
    state = encoder_to_audiomae_state(encoder)
    d, dec = encoder.cls_token.size(-1), 128
    state["model"].update({
        "mask_token": torch.randn(1, 1, dec),
        "decoder_embed.weight": torch.randn(dec, d),
        "decoder_embed.bias": torch.randn(dec),
        "decoder_pos_embed": torch.randn(1, encoder.num_patches + 1, dec),
        "decoder_blocks.0.attn.qkv.weight": torch.randn(3 * dec, dec),
        "decoder_norm.weight": torch.randn(dec),
        "decoder_pred.weight": torch.randn(256, dec),
        "decoder_pred.bias": torch.randn(256),
    })
    return state


def as_finetuned_pth(encoder, num_classes=527) -> dict:
    """AudioMAE's fine-tuned ViT with global pooling: no final norm, fc_norm + head."""
    model = dict(encoder_to_audiomae_state(encoder)["model"])
    del model["norm.weight"], model["norm.bias"]
    d = encoder.cls_token.size(-1)
    model.update({"fc_norm.weight": torch.rand(d) + 0.5, "fc_norm.bias": torch.randn(d) * 0.1,
                  "head.weight": torch.randn(num_classes, d) * 0.1, "head.bias": torch.randn(num_classes) * 0.1})
    return {"model": model}


def load_fresh(path) -> tuple[VitEncoder, dict]:
    weights, architecture = load_encoder_weights(str(path))
    cfg = OmegaConf.structured(VitEncoderConfig())  # ViT-B defaults, no [CLS]: all taken from the file
    apply_architecture(cfg, architecture, str(path))
    encoder = VitEncoder(cfg)
    check_and_load(encoder, weights, str(path))
    return encoder.eval(), architecture


def audiomae_forward(model: dict, fbank, heads: int, final_norm=True):
    """AudioMAE's encoder forward written directly on its state dict (models_mae.forward_encoder
    without masking); returns the patch outputs (the [CLS] output dropped)."""
    weight = model["patch_embed.proj.weight"]
    x = F.conv2d(fbank.unsqueeze(1), weight, model["patch_embed.proj.bias"], stride=weight.size(-1))
    x = x.flatten(2).transpose(1, 2)  # (B, L, D), row-major over (time, freq)
    x = x + model["pos_embed"][:, 1:]
    cls = model["cls_token"] + model["pos_embed"][:, :1]
    x = torch.cat([cls.expand(x.size(0), -1, -1), x], dim=1)
    d = weight.size(0)
    depth = len({k.split(".")[1] for k in model if k.startswith("blocks.")})
    blocks = nn.ModuleList(
        Block(d, heads, 4.0, qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6)) for _ in range(depth)
    )
    blocks.load_state_dict({k[len("blocks."):]: v for k, v in model.items() if k.startswith("blocks.")})
    blocks.eval()
    with torch.no_grad():
        for block in blocks:
            x = block(x)
        if final_norm:
            x = F.layer_norm(x, (d,), model["norm.weight"], model["norm.bias"], eps=1e-6)
    return x[:, 1:]


@pytest.fixture
def encoder():
    return random_encoder()


@pytest.fixture
def pretrained_pth(encoder, tmp_path):
    path = tmp_path / "pretrained.pth"
    torch.save(as_pretrained_pth(encoder), path)
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
    assert torch.equal(model["pos_embed"][:, 1:], encoder.pos_embed)
    assert torch.equal(model["cls_token"], encoder.cls_token.detach())
    assert model["patch_embed.proj.weight"].shape == (192, 1, 16, 16)
    with pytest.raises(ValueError, match="CLS"):
        encoder_to_audiomae_state(VitEncoder(OmegaConf.structured(VitEncoderConfig(**{**TINY, "cls_token": False}))))


def test_other_clip_length_and_width_are_inferred(tmp_path):
    encoder = random_encoder(encoder_embed_dim=128, encoder_heads=2, input_frames=512, mlp_ratio=2.0)
    path = tmp_path / "esc.pth"
    torch.save(as_pretrained_pth(encoder), path)
    loaded, architecture = load_fresh(path)
    assert architecture["input_frames"] == 512 and architecture["mlp_ratio"] == 2.0
    assert architecture["encoder_heads"] == 2  # 128 / 64
    fbank = fbank_batch(frames=512)
    assert torch.equal(encode(loaded, fbank), encode(encoder, fbank))


def test_classifier_takes_architecture_and_weights_from_audiomae_file(encoder, pretrained_pth, caplog):
    cfg = OmegaConf.structured(SupmamClassifierConfig(
        pretrained=str(pretrained_pth), encoder_layers=12, encoder_embed_dim=768, encoder_heads=12, cls_token=False
    ))
    with caplog.at_level(logging.INFO):
        model = SupmamClassifier(cfg, num_classes=5)
    assert "model.encoder_layers = 2" in caplog.text and "model.cls_token = True" in caplog.text
    assert (cfg.encoder_layers, cfg.encoder_embed_dim, cfg.encoder_heads, cfg.cls_token) == (2, 192, 3, True)
    assert model.head.weight.shape == (5, 192)
    for key, value in encoder.state_dict().items():
        assert torch.equal(model.encoder.state_dict()[key], value), key


@pytest.mark.parametrize("cls_position", ["zero", "nonzero"])
def test_cls_folding_matches_audiomae_forward(encoder, tmp_path, cls_position):
    state = as_pretrained_pth(encoder)
    model = state["model"]
    model["cls_token"] = torch.randn(1, 1, 192)
    if cls_position == "nonzero":  # AudioMAE's row 0 is zero; the formula must hold regardless
        model["pos_embed"] = model["pos_embed"].clone()
        model["pos_embed"][:, 0] = torch.randn(192)
    path = tmp_path / "pretrained.pth"
    torch.save(state, path)
    fbank = fbank_batch(seed=3)
    expected = audiomae_forward(model, fbank, heads=3)
    loaded, _ = load_fresh(path)
    assert torch.allclose(loaded.cls_token, model["cls_token"] + model["pos_embed"][:, :1])
    torch.testing.assert_close(encode(loaded, fbank), expected, atol=1e-5, rtol=0)


def test_finetuned_pth_loads_with_identity_norm_and_head_available(encoder, tmp_path, caplog):
    state = as_finetuned_pth(encoder)
    path = tmp_path / "finetuned.pth"
    torch.save(state, path)
    with caplog.at_level(logging.INFO):
        loaded, architecture = load_fresh(path)
    assert "no final norm" in caplog.text
    assert torch.equal(loaded.norm.weight, torch.ones(192)) and torch.equal(loaded.norm.bias, torch.zeros(192))
    fbank = fbank_batch(seed=4)
    assert torch.equal(encode(loaded, fbank, final_norm=False), encode(encoder, fbank, final_norm=False))
    torch.testing.assert_close(encode(loaded, fbank, final_norm=False),
                               audiomae_forward(state["model"], fbank, heads=3, final_norm=False), atol=1e-5, rtol=0)

    # The head is not loaded by model.pretrained but can be read and put into the classifier:
    # then it computes AudioMAE's global-pooling prediction.
    head = audiomae_head(torch.load(path, weights_only=False), str(path))
    assert head["head.weight"].shape == (527, 192)
    assert audiomae_head(as_pretrained_pth(encoder)) is None
    classifier = SupmamClassifier(OmegaConf.structured(SupmamClassifierConfig(pretrained=str(path))), num_classes=527)
    classifier.load_state_dict(head, strict=False)
    classifier.eval()
    with torch.no_grad():
        logits = classifier(fbank=fbank)["logits"]
        pooled = audiomae_forward(state["model"], fbank, heads=3, final_norm=False).mean(dim=1)
        expected = F.linear(F.layer_norm(pooled, (192,), head["fc_norm.weight"], head["fc_norm.bias"], eps=1e-6),
                            head["head.weight"], head["head.bias"])
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=0)


def test_renamed_key_is_named(encoder, tmp_path):
    state = as_pretrained_pth(encoder)
    state["model"]["blocks.0.attention.qkv.weight"] = state["model"].pop("blocks.0.attn.qkv.weight")
    path = tmp_path / "renamed.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as e:
        load_encoder_weights(str(path))
    message = str(e.value)
    assert str(path) in message
    assert "blocks.0.attention.qkv.weight" in message and "blocks.0.attn.qkv.weight" in message


def test_shuffled_positions_are_refused(encoder, tmp_path):
    state = as_pretrained_pth(encoder)
    pos = state["model"]["pos_embed"]
    order = torch.randperm(pos.size(1) - 1, generator=torch.Generator().manual_seed(0)) + 1
    state["model"]["pos_embed"] = torch.cat([pos[:, :1], pos[:, order]], dim=1)
    path = tmp_path / "shuffled.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="positions differ") as e:
        load_encoder_weights(str(path))
    assert str(path) in str(e.value)


def test_overlapping_patch_grid_is_refused(encoder, tmp_path):
    state = as_pretrained_pth(encoder)  # AudioMAE's custom stride-10 patches: 101 x 12 positions
    state["model"]["pos_embed"] = torch.zeros(1, 101 * 12 + 1, 192)
    path = tmp_path / "overlap.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="positions differ"):
        load_encoder_weights(str(path))


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
        load_encoder_weights(str(path))
    assert str(path) in str(e.value)


def test_image_mae_patch_embedding_does_not_fit(encoder, tmp_path):
    state = as_pretrained_pth(encoder)
    state["model"]["patch_embed.proj.weight"] = torch.randn(192, 3, 16, 16)  # RGB
    path = tmp_path / "rgb.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="patch_embed.proj.weight"):
        load_fresh(path)


def test_convert_command(encoder, pretrained_pth, tmp_path, capsys):
    assert convert_main([str(pretrained_pth), "--check"]) == 0
    out = capsys.readouterr().out
    assert "model.encoder_layers=2" in out and "model.encoder_embed_dim=192" in out
    assert "model.input_frames=1024" in out and out.rstrip().endswith("ok")

    stripped = tmp_path / "encoder.pth"
    assert convert_main([str(pretrained_pth), str(stripped)]) == 0
    model = torch.load(stripped, weights_only=False)["model"]
    assert not any(k.startswith("decoder_") or k == "mask_token" for k in model)
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


def audiomae_style_positions(dim, grid):
    """AudioMAE's recipe in numpy (grid coordinates from a width-first meshgrid; the first half of
    the channels encodes the width = frequency column, the second the height = time row), with a
    zero [CLS] row, as stored in its checkpoints."""
    import numpy as np

    def one_axis(d, pos):
        omega = 1.0 / 10000 ** (np.arange(d // 2, dtype=np.float64) / (d / 2.0))
        out = np.outer(pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    w, h = np.meshgrid(np.arange(grid[1], dtype=np.float32), np.arange(grid[0], dtype=np.float32))
    emb = np.concatenate([one_axis(dim // 2, w), one_axis(dim // 2, h)], axis=1)
    emb = np.concatenate([np.zeros((1, dim)), emb], axis=0)
    return torch.from_numpy(emb).float().unsqueeze(0)


def test_vit_base_positions_of_audiomae_recipe_are_accepted(tmp_path):
    state = {"cls_token": torch.zeros(1, 1, 768), "pos_embed": audiomae_style_positions(768, (64, 8)),
             "patch_embed.proj.weight": torch.zeros(768, 1, 16, 16), "patch_embed.proj.bias": torch.zeros(768)}
    for key in ("norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2"):  # shapes do not matter here
        state[f"blocks.0.{key}.weight"] = torch.zeros(3072 if key == "mlp.fc1" else 768, 768)
        state[f"blocks.0.{key}.bias"] = torch.zeros(1)
    weights, architecture = encoder_from_audiomae_state({"model": state}, "vit_b.pth")
    assert architecture == {"encoder_layers": 1, "encoder_embed_dim": 768, "encoder_heads": 12, "mlp_ratio": 4.0,
                            "patch_size": 16, "input_frames": 1024, "num_mel_bins": 128, "cls_token": True}
    assert "pos_embed" not in weights and torch.equal(weights["norm.weight"], torch.ones(768))
