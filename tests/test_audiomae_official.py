"""Our models against the official AudioMAE code's own outputs (tests/fixtures/audiomae_official:
a small MaskedAutoencoderViT saved and run by facebookresearch/AudioMAE, see its README).

Every public way in is checked: ``SupmamModel.from_audiomae`` (the whole pretraining model:
predictions and loss), the classifier's ``model.pretrained``, ``SupmamClassifier.from_audiomae``
(the fine-tuned layout with its head), ``embeddings.load_encoder``, ``supmam-convert-audiomae`` and
``supmam-plot-reconstruction``'s loader.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from conftest import FIXTURES
from supmam_plugin.pictures import reconstruction
from supmam_plugin.commands.convert_audiomae import main as convert_main
from supmam_plugin.criterions.supmam_loss import SupmamCriterion, SupmamCriterionConfig
from supmam_plugin.inference.encoder import load_encoder
from supmam_plugin.core.checkpoints import CheckpointError, read_encoder
from supmam_plugin.models.classifier import SupmamClassifier, SupmamClassifierConfig
from supmam_plugin.core.positions import position_table, sincos_2d_positions
from supmam_plugin.models.supmam_model import SupmamModel

OFFICIAL = os.path.join(FIXTURES, "audiomae_official")
PRETRAINED = os.path.join(OFFICIAL, "pretrained.pth")
FINETUNED = os.path.join(OFFICIAL, "finetuned.pth")
TOKENS_ATOL = 1e-5
PRED_ATOL = 1e-4
LOSS_RTOL = 1e-5


def load(name) -> torch.Tensor:
    return torch.from_numpy(np.load(os.path.join(OFFICIAL, name)))


@pytest.fixture(scope="module")
def fbank():
    return load("fbank.npy")  # (2, 1024, 128)


@pytest.fixture(scope="module")
def official_tokens():
    return load("encoder_tokens.npy")  # (2, 513, 192): [CLS], then the patches in token order


@pytest.fixture(scope="module")
def model():
    return SupmamModel.from_audiomae(PRETRAINED)


def patch_tokens(encoder, fbank) -> torch.Tensor:
    with torch.no_grad():
        return encoder.eval().features(fbank)["patches"]


def max_error(a, b) -> float:
    return (a.float() - b.float()).abs().max().item()


# ----------------------------------------------------------------------------- positions


def test_the_official_tables_are_the_audiomae_layout():
    state = torch.load(PRETRAINED, map_location="cpu", weights_only=False)["model"]
    for key, width in (("pos_embed", 192), ("decoder_pos_embed", 128)):
        table = state[key][0]
        assert torch.equal(table[0], torch.zeros(width))  # the [CLS] row
        # built for patch_hw = (8, 64) (freq x time) while the tokens are time-major (64 x 8)
        assert max_error(table[1:], sincos_2d_positions(width, (8, 64))) < 1e-6
        assert max_error(table[1:], position_table(width, (64, 8), "audiomae")) < 1e-6
        assert max_error(table[1:], position_table(width, (64, 8), "grid")) > 1.0  # not the true grid


# ----------------------------------------------------------------------------- the pretraining model


def test_from_audiomae_reads_the_official_sizes(model):
    cfg = model.cfg
    assert (cfg.encoder_layers, cfg.encoder_embed_dim, cfg.encoder_heads, cfg.cls_token) == (2, 192, 3, True)
    assert (cfg.decoder_embed_dim, cfg.decoder_layers, cfg.decoder_heads) == (128, 16, 16)
    assert (cfg.decoder_window_time, cfg.decoder_window_freq, cfg.decoder_shift_time, cfg.decoder_shift_freq) == \
        (4, 4, 2, 0)
    assert (cfg.position_layout, cfg.target, cfg.mask_ratio, cfg.norm_pix_loss) == ("audiomae", "spectrogram", 0.8, True)
    assert len(model.head) == 1 and isinstance(model.head[0], torch.nn.Linear)  # decoder_pred: no LayerNorm
    assert [b.shift_size for b in model.decoder.blocks[:3]] == [(0, 0), (2, 0), (0, 0)]
    assert not model.training


def test_encoder_tokens(model, fbank, official_tokens):
    assert max_error(patch_tokens(model.encoder, fbank), official_tokens[:, 1:]) < TOKENS_ATOL
    # the [CLS] token attends like AudioMAE's (its position folded into the loaded token)
    encoder = model.encoder
    with torch.no_grad():
        x = encoder._with_cls(encoder.embed_patches(fbank))
        for x in encoder._block_outputs(x):
            pass
        cls = encoder.norm(x)[:, 0]
    assert max_error(cls, official_tokens[:, 0]) < TOKENS_ATOL


@pytest.mark.parametrize("attention", ["matmul", "sdpa"])
def test_predictions_mask_and_loss_reproduce_audiomae(model, fbank, attention):
    for block in model.decoder.blocks:
        block.attn.attention = attention
    noise = load("noise.npy")
    try:
        with torch.no_grad():
            out = model(fbank=fbank, mask_noise=noise)
            criterion = SupmamCriterion(SupmamCriterionConfig(), task=None)
            loss, sample_size, log = criterion(model, {"net_input": {"fbank": fbank, "mask_noise": noise}})
    finally:
        for block in model.decoder.blocks:
            block.attn.attention = "auto"
    # AudioMAE keeps the int(512 * (1 - 0.8)) = 102 patches with the smallest noise
    assert torch.equal(out["mask"], load("mask.npy").float())
    assert int(out["mask"][0].sum()) == 512 - 102
    assert max_error(out["prediction"], load("pred.npy")) < PRED_ATOL
    official_loss = float(np.load(os.path.join(OFFICIAL, "loss.npy")))
    # AudioMAE: masked MSE averaged over all masked patches of the batch; ours: per clip, summed,
    # divided by the clips (sample_size) in fairseq's logs. Equal masked counts make them the same.
    assert abs(loss.item() / sample_size - official_loss) <= LOSS_RTOL * official_loss
    assert log["loss"] / sample_size == pytest.approx(official_loss, rel=LOSS_RTOL)


def test_mask_noise_must_fit(model, fbank):
    with pytest.raises(ValueError, match="mask_noise must be"):
        model(fbank=fbank, mask_noise=torch.rand(2, 100))


def test_plot_reconstruction_loads_the_official_pretraining_model(fbank, official_tokens):
    model, info = reconstruction.load_pretraining_model(PRETRAINED)
    assert info["name"] == "pretrained.pth" and model.cfg.decoder_layers == 16
    assert max_error(patch_tokens(model.encoder, fbank), official_tokens[:, 1:]) < TOKENS_ATOL
    with torch.no_grad():
        prediction = model(fbank=fbank, mask_noise=load("noise.npy"))["prediction"]
    assert max_error(prediction, load("pred.npy")) < PRED_ATOL
    with pytest.raises(CheckpointError, match="has no decoder"):
        reconstruction.load_pretraining_model(FINETUNED)


# ----------------------------------------------------------------------------- encoders


def test_classifier_pretrained_takes_the_official_encoder(fbank, official_tokens):
    cfg = OmegaConf.structured(SupmamClassifierConfig(pretrained=PRETRAINED, encoder_layers=12, encoder_embed_dim=768,
                                                      encoder_heads=12, cls_token=False, position_layout="grid"))
    classifier = SupmamClassifier(cfg, num_classes=3)
    assert (cfg.encoder_layers, cfg.encoder_embed_dim, cfg.cls_token, cfg.position_layout) == (2, 192, True, "audiomae")
    assert max_error(patch_tokens(classifier.encoder, fbank), official_tokens[:, 1:]) < TOKENS_ATOL


def test_load_encoder_takes_the_official_encoder(fbank, official_tokens):
    encoder = load_encoder(PRETRAINED)
    assert encoder.embed_dim == 192 and encoder.num_patches == 512
    assert max_error(patch_tokens(encoder.encoder, fbank), official_tokens[:, 1:]) < TOKENS_ATOL
    assert read_encoder(FINETUNED).architecture["position_layout"] == "audiomae"


def test_convert_command_checks_and_strips_the_official_file(fbank, official_tokens, tmp_path, capsys):
    assert convert_main([PRETRAINED, "--check"]) == 0
    out = capsys.readouterr().out
    assert "model.position_layout=audiomae" in out and "model.encoder_layers=2" in out and out.rstrip().endswith("ok")
    stripped = tmp_path / "encoder.pth"
    assert convert_main([PRETRAINED, str(stripped)]) == 0
    written = torch.load(stripped, weights_only=False)["model"]
    original = torch.load(PRETRAINED, weights_only=False)["model"]
    assert not any(k.startswith("decoder_") or k == "mask_token" for k in written)
    assert torch.equal(written["pos_embed"][:, 1:], original["pos_embed"][:, 1:])  # the table, as it was
    assert max_error(patch_tokens(load_encoder(str(stripped)).encoder, fbank), official_tokens[:, 1:]) < TOKENS_ATOL


def test_finetuned_layout_reproduces_the_official_logits(fbank):
    classifier = SupmamClassifier.from_audiomae(FINETUNED)
    assert classifier.head.weight.shape == (5, 192) and not classifier.training
    with torch.no_grad():
        logits = classifier(fbank=fbank)["logits"]
    assert max_error(logits, load("finetuned_logits.npy")) < TOKENS_ATOL
    with pytest.raises(CheckpointError, match="no classifier head"):
        SupmamClassifier.from_audiomae(PRETRAINED)


# ----------------------------------------------------------------------------- refusals


def rewritten(tmp_path, name, change) -> str:
    state = torch.load(PRETRAINED, map_location="cpu", weights_only=False)
    change(state["model"])
    path = str(tmp_path / name)
    torch.save(state, path)
    return path


def test_a_grid_layout_table_is_recognised_and_used(tmp_path, fbank):
    def to_grid(sd):
        sd["pos_embed"][0, 1:] = position_table(192, (64, 8), "grid")

    path = rewritten(tmp_path, "grid.pth", to_grid)
    found = read_encoder(path)
    assert found.architecture["position_layout"] == "grid"
    assert torch.equal(load_encoder(path).encoder.pos_embed[0], position_table(192, (64, 8), "grid"))


@pytest.mark.parametrize("key", ["pos_embed", "decoder_pos_embed"])
def test_a_table_of_another_layout_is_refused_by_name(tmp_path, key):
    def shuffle(sd):
        table = sd[key]
        order = torch.randperm(512, generator=torch.Generator().manual_seed(0)) + 1
        sd[key] = torch.cat([table[:, :1], table[:, order]], dim=1)

    path = rewritten(tmp_path, "shuffled.pth", shuffle)
    with pytest.raises(CheckpointError, match="neither AudioMAE's layout") as e:
        SupmamModel.from_audiomae(path)
    assert path in str(e.value) and key in str(e.value)
    if key == "pos_embed":
        with pytest.raises(CheckpointError, match="neither AudioMAE's layout"):
            load_encoder(path)
        assert convert_main([path, "--check"]) == 1


def test_a_plain_transformer_decoder_is_refused(tmp_path):
    def drop_swin(sd):
        for k in [k for k in sd if k.startswith("decoder_blocks.") and (".tau" in k or "meta_mlp" in k)]:
            del sd[k]

    path = rewritten(tmp_path, "mode0.pth", drop_swin)
    with pytest.raises(CheckpointError, match="decoder_mode=0"):
        SupmamModel.from_audiomae(path)
    load_encoder(path)  # its encoder still loads


def test_fine_tuning_on_shorter_clips_crops_the_table_as_audiomae_does(fbank, tmp_path):
    """ESC-50 (512 frames) from a 1024-frame checkpoint: AudioMAE's fine-tuning keeps the first 32
    time columns of its (8, 64) table (interpolate_pos_embed_audio); ours must be that crop."""
    cfg = OmegaConf.structured(SupmamClassifierConfig(pretrained=PRETRAINED, input_frames=512))
    classifier = SupmamClassifier(cfg, num_classes=3)
    assert cfg.input_frames == 512 and classifier.encoder.num_patches == 256
    table = torch.load(PRETRAINED, map_location="cpu", weights_only=False)["model"]["pos_embed"][0, 1:]
    cropped = table.reshape(8, 64, 192)[:, :32].reshape(256, 192)  # AudioMAE's crop of its (freq x time) table
    assert max_error(classifier.encoder.pos_embed[0], cropped) < 1e-6
    with torch.no_grad():
        assert classifier.eval()(fbank=fbank[:, :512])["logits"].shape == (2, 3)
