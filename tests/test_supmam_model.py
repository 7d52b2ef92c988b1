"""Model ``supmam`` and criterion ``supmam``: losses by hand, patches, masking, teacher, branch, ViT-B.

Everything runs the real modules (no stand-in models): a tiny encoder (2 x 192) on the full
1024 x 128 fbank (a 64 x 8 grid of 512 patches), a randomly initialised HTSAT-tiny teacher,
and once the paper's ViT-B configuration.
"""
from __future__ import annotations

import time

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from omegaconf import OmegaConf

from supmam_plugin.criterions.supmam_loss import (
    SupmamCriterion,
    SupmamCriterionConfig,
    classification_loss,
    masked_and_visible_mse,
)
from supmam_plugin.models.supmam_model import (
    ClassificationBranch,
    SupmamConfig,
    SupmamModel,
    normalise_patches,
    patchify,
)

FRAMES, BINS, P = 1024, 128, 16
GRID_T, GRID_F = 64, 8
L = GRID_T * GRID_F  # 512 patches
TEACHER_SAMPLES = 480000  # 10 s at 48 kHz
TINY = dict(
    encoder_layers=2, encoder_embed_dim=192, encoder_heads=3, decoder_embed_dim=128, decoder_heads=4,
    cls_hidden_dim=64,
)


def tiny_model(num_classes: int = 0, init_seed: int = 0, **overrides) -> SupmamModel:
    torch.manual_seed(init_seed)
    cfg = OmegaConf.structured(SupmamConfig(**{**TINY, **overrides}))
    return SupmamModel(cfg, num_classes=num_classes, sample_rate=16000)


def random_fbank(batch: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, FRAMES, BINS, generator=torch.Generator().manual_seed(seed))


def patch_region(index: int):
    """(time slice, freq slice) of the fbank covered by patch ``index`` = t * F + f."""
    t, f = divmod(index, GRID_F)
    return slice(P * t, P * (t + 1)), slice(P * f, P * (f + 1))


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def capture_output(model: nn.Module) -> tuple[list, object]:
    """A forward hook keeping every output dict the model returns (what the criterion saw)."""
    seen = []
    handle = model.register_forward_hook(lambda module, args, output: seen.append(output))
    return seen, handle


@pytest.fixture(scope="module")
def clap_model():
    """SupMAM-CLAP, tiny student, randomly initialised HTSAT-tiny teacher, 3 classes."""
    return tiny_model(num_classes=3, target="teacher", teacher_checkpoint="random", mask_ratio=0.4, cls_branch=True)


@pytest.fixture(scope="module")
def teacher_audio():
    return 0.1 * torch.randn(2, TEACHER_SAMPLES, generator=torch.Generator().manual_seed(3))


# --------------------------------------------------------------------------------------------
# 1. Losses
# --------------------------------------------------------------------------------------------


def test_masked_and_visible_mse_by_hand():
    # B=2, L=4, D=2.
    prediction = torch.tensor(
        [[[1.0, 2.0], [0.0, 0.0], [3.0, 1.0], [2.0, 2.0]],
         [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]]
    )
    target = torch.tensor(
        [[[0.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 0.0]],
         [[1.0, 1.0], [2.0, 0.0], [0.0, 3.0], [1.0, 2.0]]]
    )
    mask = torch.tensor([[1.0, 0.0, 1.0, 0.0], [1.0, 1.0, 1.0, 0.0]])  # 1 = masked
    # Clip 0, squared errors per patch and their mean over D:
    #   p0 (1, 4) -> 2.5   p1 (0, 1) -> 0.5   p2 (4, 0) -> 2.0   p3 (0, 4) -> 2.0
    #   masked {p0, p2}: (2.5 + 2.0) / 2 = 2.25;  visible {p1, p3}: (0.5 + 2.0) / 2 = 1.25
    # Clip 1 (prediction 0):
    #   p0 (1, 1) -> 1.0   p1 (4, 0) -> 2.0   p2 (0, 9) -> 4.5   p3 (1, 4) -> 2.5
    #   masked {p0, p1, p2}: (1 + 2 + 4.5) / 3 = 2.5;  visible {p3}: 2.5 / 1 = 2.5
    masked, visible = masked_and_visible_mse(prediction, target, mask)
    assert masked.shape == visible.shape == (2,)
    torch.testing.assert_close(masked, torch.tensor([2.25, 2.5]))
    torch.testing.assert_close(visible, torch.tensor([1.25, 2.5]))
    # Not a mean over all L patches (clip 0 would give (2.5 + .5 + 2 + 2) / 4 = 1.75 for both).
    assert masked[0] != visible[0]


def test_classification_loss_by_hand_tau_10():
    # Single-label CE on logits / 10:
    #   clip 0: logits [10, 0] -> [1, 0], y=0: CE = log(e^1 + e^0) - 1 = log(1 + e^-1) = 0.3132616875182229
    #   clip 1: logits [0, -10] -> [0, -1], y=1:
    #           CE = log(1 + e^-1) - (-1) = log(1 + e^-1) + 1 = 1.3132616875182228
    logits = torch.tensor([[10.0, 0.0], [0.0, -10.0]])
    ce = classification_loss(logits, torch.tensor([0, 1]), temperature=10.0)
    torch.testing.assert_close(ce, torch.tensor([0.3132616875182229, 1.3132616875182228]), rtol=0, atol=1e-6)
    # 3 classes: logits [0, 20, -10] -> [0, 2, -1], y=2:
    #   CE = log(1 + e^2 + e^-1) + 1 = 2.1698460195562856 + 1 = 3.1698460195562856
    ce3 = classification_loss(torch.tensor([[0.0, 20.0, -10.0]]), torch.tensor([2]), temperature=10.0)
    torch.testing.assert_close(ce3, torch.tensor([3.1698460195562856]), rtol=0, atol=1e-6)
    # Without the temperature the same row would give log(1 + e^20 + e^-10) + 10 = 30.0000...:
    assert abs(ce3.item() - 30.0) > 1.0

    # Multi-hot BCE on logits / 10, mean over classes:
    #   clip 0: logits [10, -20] -> [1, -2], y=[1, 0]:
    #           pos: log(1 + e^-1) = 0.31326169;  neg: log(1 + e^-2) = 0.12692801;  mean 0.22009485
    #   clip 1: logits [0, 30] -> [0, 3], y=[1, 1]:
    #           log(1 + e^0) = log 2 = 0.69314718;  log(1 + e^-3) = 0.04858735;  mean 0.37086727
    bce = classification_loss(
        torch.tensor([[10.0, -20.0], [0.0, 30.0]]), torch.tensor([[1, 0], [1, 1]]), temperature=10.0
    )
    torch.testing.assert_close(bce, torch.tensor([0.22009484928059775, 0.37086726606684367]), rtol=0, atol=1e-6)


def _expected_total(out, labels, lambda_cls, on_visible):
    """Independent recomputation with plain torch ops: per clip F.mse_loss over the gathered
    masked (and visible) patches, plus lambda * sum of CE(logits / 10, y)."""
    total = torch.zeros((), dtype=torch.float64)
    masked_sum = visible_sum = 0.0
    for b in range(out["prediction"].size(0)):
        is_masked = out["mask"][b].bool()
        masked = F.mse_loss(out["prediction"][b][is_masked], out["target"][b][is_masked])
        visible = F.mse_loss(out["prediction"][b][~is_masked], out["target"][b][~is_masked])
        masked_sum += masked.item()
        visible_sum += visible.item()
        total = total + masked.double() + (visible.double() if on_visible else 0.0)
    ce = F.cross_entropy(out["cls_logits"].double() / 10.0, labels, reduction="sum")
    return (total + lambda_cls * ce).item(), masked_sum, visible_sum, ce.item()


def test_criterion_total_clap_target_masked_plus_visible_plus_cls(clap_model, teacher_audio):
    model = clap_model
    model.train()
    model.set_num_updates(0)
    labels = torch.tensor([2, 0])
    sample = {
        "net_input": {"fbank": random_fbank(2, seed=1), "teacher_source": teacher_audio,
                      "clip_ids": torch.tensor([4, 9])},
        "target": labels,
    }
    criterion = SupmamCriterion(SupmamCriterionConfig(lambda_cls=0.5), task=None)
    seen, handle = capture_output(model)
    try:
        loss, sample_size, log = criterion(model, sample)
    finally:
        handle.remove()
    assert len(seen) == 1
    out = {k: (v.detach() if torch.is_tensor(v) else v) for k, v in seen[0].items()}
    assert out["loss_on_visible"] is True
    assert int(out["mask"].sum(1)[0]) == L - int(L * 0.6)  # 205 masked at 0.4
    expected, masked_sum, visible_sum, ce_sum = _expected_total(out, labels, 0.5, on_visible=True)
    assert sample_size == 2
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert log["masked_loss"] == pytest.approx(masked_sum, rel=1e-5)
    assert log["visible_loss"] == pytest.approx(visible_sum, rel=1e-5)
    assert log["cls_loss"] == pytest.approx(ce_sum, rel=1e-5)
    # The visible term is really there and non-trivial (visible predictions are not the targets).
    assert visible_sum > 1e-3 and abs(expected - (masked_sum + 0.5 * ce_sum)) > 1e-4


def test_criterion_total_spectrogram_target_masked_only_plus_cls():
    model = tiny_model(num_classes=4, mask_ratio=0.4, cls_branch=True)
    model.train()
    labels = torch.tensor([3, 1])
    sample = {"net_input": {"fbank": random_fbank(2, seed=2), "clip_ids": torch.tensor([0, 1])}, "target": labels}
    criterion = SupmamCriterion(SupmamCriterionConfig(lambda_cls=0.01), task=None)
    seen, handle = capture_output(model)
    try:
        loss, sample_size, log = criterion(model, sample)
    finally:
        handle.remove()
    out = {k: (v.detach() if torch.is_tensor(v) else v) for k, v in seen[0].items()}
    assert out["loss_on_visible"] is False
    # The spectrogram target is the norm_pix of the input patches.
    torch.testing.assert_close(out["target"], normalise_patches(patchify(sample["net_input"]["fbank"], P)))
    expected, masked_sum, visible_sum, ce_sum = _expected_total(out, labels, 0.01, on_visible=False)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert log["target_loss"] == pytest.approx(masked_sum, rel=1e-5)
    assert log["masked_loss"] == pytest.approx(masked_sum, rel=1e-5)
    # Adding the visible term would give a clearly different number.
    assert abs(loss.item() - (expected + visible_sum)) > 1e-2
    assert log["cls_correct"] == int((out["cls_logits"].argmax(-1) == labels).sum())


def _criterion_terms(model, sample, **criterion_cfg):
    """(loss, log, the model's output) of one criterion call."""
    criterion = SupmamCriterion(SupmamCriterionConfig(**criterion_cfg), task=None)
    seen, handle = capture_output(model)
    try:
        loss, _, log = criterion(model, sample)
    finally:
        handle.remove()
    return loss, log, {k: (v.detach() if torch.is_tensor(v) else v) for k, v in seen[0].items()}


def test_ablations_masked_only_teacher_target_and_classification_only(clap_model, teacher_audio):
    """The paper's ablations as options: model.target_on_visible=false drops eq. 1's visible term
    from the teacher target (true adds it to the spectrogram's); criterion.lambda_target=0 leaves
    the classification loss alone (Table 5's cls row). Checked against _expected_total."""
    labels = torch.tensor([2, 0])
    sample = {"net_input": {"fbank": random_fbank(2, seed=1), "teacher_source": teacher_audio,
                            "clip_ids": torch.tensor([4, 9])}, "target": labels}
    clap_model.train()
    clap_model.set_num_updates(0)
    clap_model.cfg.target_on_visible = False
    try:
        loss, log, out = _criterion_terms(clap_model, sample, lambda_cls=0.5)
    finally:
        clap_model.cfg.target_on_visible = None
    assert out["loss_on_visible"] is False
    expected, masked_sum, visible_sum, _ = _expected_total(out, labels, 0.5, on_visible=False)
    assert loss.item() == pytest.approx(expected, rel=1e-5) and log["target_loss"] == pytest.approx(masked_sum, rel=1e-5)
    assert visible_sum > 1e-3

    model = tiny_model(num_classes=4, mask_ratio=0.4, cls_branch=True, target_on_visible=True)
    model.train()
    labels = torch.tensor([3, 1])
    sample = {"net_input": {"fbank": random_fbank(2, seed=2), "clip_ids": torch.tensor([0, 1])}, "target": labels}
    loss, log, out = _criterion_terms(model, sample, lambda_cls=0.01)
    assert out["loss_on_visible"] is True
    assert loss.item() == pytest.approx(_expected_total(out, labels, 0.01, on_visible=True)[0], rel=1e-5)

    loss, log, out = _criterion_terms(model, sample, lambda_cls=0.01, lambda_target=0.0)
    ce = F.cross_entropy(out["cls_logits"].double() / 10.0, labels, reduction="sum").item()
    assert loss.item() == pytest.approx(0.01 * ce, rel=1e-5) and log["target_loss"] > 0.1  # logged, not trained
    loss.backward()
    assert all(p.grad is None or not p.grad.any() for p in model.decoder.parameters())
    with pytest.raises(ValueError, match="nothing would be trained"):
        SupmamCriterion(SupmamCriterionConfig(lambda_cls=0.0, lambda_target=0.0), task=None)


# --------------------------------------------------------------------------------------------
# 2. Patches
# --------------------------------------------------------------------------------------------


def test_patchify_order_and_norm_pix():
    fbank = torch.arange(32 * 32, dtype=torch.float32).reshape(1, 32, 32)  # value = frame * 32 + bin
    patches = patchify(fbank, 16)
    assert patches.shape == (1, 4, 256)
    # Patch 0 = frames 0..15 x bins 0..15, flattened time-major: element i*16 + j = frame i, bin j.
    expected0 = torch.tensor([i * 32 + j for i in range(16) for j in range(16)], dtype=torch.float32)
    torch.testing.assert_close(patches[0, 0], expected0, rtol=0, atol=0)
    assert patches[0, 0, :3].tolist() == [0.0, 1.0, 2.0] and patches[0, 0, 16].item() == 32.0
    # Patch 1 = frames 0..15 x bins 16..31 (t=0, f=1 -> index 0 * 2 + 1).
    expected1 = torch.tensor([i * 32 + 16 + j for i in range(16) for j in range(16)], dtype=torch.float32)
    torch.testing.assert_close(patches[0, 1], expected1, rtol=0, atol=0)
    # Patch 2 = frames 16..31 x bins 0..15 (t=1, f=0 -> index 1 * 2 + 0).
    torch.testing.assert_close(patches[0, 2], fbank[0, 16:32, 0:16].reshape(-1), rtol=0, atol=0)
    torch.testing.assert_close(patches[0, 3], fbank[0, 16:32, 16:32].reshape(-1), rtol=0, atol=0)

    normed = normalise_patches(patches)
    torch.testing.assert_close(normed.mean(-1), torch.zeros(1, 4), rtol=0, atol=1e-5)
    torch.testing.assert_close(normed.var(-1, unbiased=True), torch.ones(1, 4), rtol=0, atol=1e-4)
    # Unbiased, not population, variance: the population variance of 256 values is 255/256.
    torch.testing.assert_close(normed.var(-1, unbiased=False), torch.full((1, 4), 255 / 256), rtol=0, atol=1e-4)
    # A random fbank, too.
    normed = normalise_patches(patchify(3.0 + 2.0 * random_fbank(2), P))
    torch.testing.assert_close(normed.mean(-1), torch.zeros(2, L), rtol=0, atol=1e-5)
    torch.testing.assert_close(normed.var(-1), torch.ones(2, L), rtol=0, atol=1e-4)


# --------------------------------------------------------------------------------------------
# 3. The encoder sees the visible patches only
# --------------------------------------------------------------------------------------------


def test_encoder_sees_only_visible_patches():
    model = tiny_model(mask_ratio=0.8)
    model.train()
    ids = torch.tensor([5, 11])
    fbank = random_fbank(2, seed=4)

    shapes = []
    handle = model.encoder.blocks[0].register_forward_pre_hook(lambda module, args: shapes.append(args[0].shape))
    try:
        visible_index, mask, restore_index = model.mask_for(ids, 2, fbank.device)
        out = model(fbank=fbank, clip_ids=ids)
    finally:
        handle.remove()
    assert shapes == [(2, 1 + 102, 192)]  # [CLS] + int(512 * 0.2) = 102 visible tokens per clip
    assert visible_index.shape == (2, 102) and int(mask[0].sum()) == 410
    torch.testing.assert_close(out["mask"], mask)

    def encode(x):
        with torch.no_grad():
            return model.encoder.encode(model.encoder.embed_patches(x), visible_index)

    def predict(x):
        # the same dropout draws each time (AudioMAE's position-bias MLP has dropout 0.1 in training)
        torch.manual_seed(0)
        with torch.no_grad():
            return model(fbank=x, clip_ids=ids)

    reference = encode(fbank)
    reference_out = predict(fbank)
    masked_patch = int(mask[0].nonzero()[0])
    visible_patch = int((mask[0] == 0).nonzero()[0])

    changed = fbank.clone()
    rows, cols = patch_region(masked_patch)
    changed[0, rows, cols] += 5.0
    # Only that patch's token and target change ...
    token_diff = (model.encoder.embed_patches(changed) - model.encoder.embed_patches(fbank)).abs().sum(-1)
    assert token_diff[0].nonzero().flatten().tolist() == [masked_patch] and token_diff[1].abs().sum() == 0
    # ... and the encoder never sees it: identical outputs, identical predictions.
    assert torch.equal(encode(changed), reference)
    changed_out = predict(changed)
    assert torch.equal(changed_out["prediction"], reference_out["prediction"])
    target_diff = (changed_out["target"] - reference_out["target"]).abs().sum(-1)
    assert target_diff[0].nonzero().flatten().tolist() == [masked_patch]

    changed = fbank.clone()
    rows, cols = patch_region(visible_patch)
    changed[0, rows, cols] += 5.0
    encoded = encode(changed)
    assert (encoded[0] - reference[0]).abs().max() > 1e-3  # attention spreads it over clip 0
    assert torch.equal(encoded[1], reference[1])  # and clip 1 is untouched
    assert (predict(changed)["prediction"][0] - reference_out["prediction"][0]).abs().max() > 1e-3


# --------------------------------------------------------------------------------------------
# 4. Masks keyed by clip id
# --------------------------------------------------------------------------------------------


def test_masks_are_keyed_by_clip_id_update_and_mode():
    model = tiny_model(mask_ratio=0.8)
    model.train()
    model.set_num_updates(17)
    _, mask_a, _ = model.mask_for(torch.tensor([3, 7]), 2, "cpu")
    vis_b, mask_b, _ = model.mask_for(torch.tensor([7, 3, 9]), 3, "cpu")
    assert torch.equal(mask_a[0], mask_b[1])  # clip 3
    assert torch.equal(mask_a[1], mask_b[0])  # clip 7
    assert not torch.equal(mask_b[0], mask_b[1]) and not torch.equal(mask_b[1], mask_b[2])
    # The same call again (a new batch, same update) gives the same masks.
    assert torch.equal(model.mask_for(torch.tensor([3, 7]), 2, "cpu")[1], mask_a)

    model.set_num_updates(18)
    _, mask_next, _ = model.mask_for(torch.tensor([3, 7]), 2, "cpu")
    assert not torch.equal(mask_next[0], mask_a[0]) and not torch.equal(mask_next[1], mask_a[1])

    model.set_num_updates(17)
    model.eval()
    _, mask_eval, _ = model.mask_for(torch.tensor([3, 7]), 2, "cpu")
    assert not torch.equal(mask_eval[0], mask_a[0]) and not torch.equal(mask_eval[1], mask_a[1])
    model.train()
    assert torch.equal(model.mask_for(torch.tensor([3, 7]), 2, "cpu")[1], mask_a)

    # A different seed gives different masks.
    other = tiny_model(mask_ratio=0.8, seed=2)  # model.seed, the masks' seed (default 1)
    other.train()
    other.set_num_updates(17)
    assert not torch.equal(other.mask_for(torch.tensor([3, 7]), 2, "cpu")[1], mask_a)


@pytest.mark.parametrize("ratio, visible", [(0.2, 409), (0.4, 307), (0.8, 102)])
def test_mask_ratio_is_exact(ratio, visible):
    # MAE's convention: K = int(L * (1 - ratio)) visible, L - K masked:
    # 0.2 -> int(409.6) = 409 visible, 103 masked; 0.4 -> int(307.2) = 307 / 205; 0.8 -> int(102.4) = 102 / 410.
    model = tiny_model(mask_ratio=ratio)
    ids = torch.arange(6)
    visible_index, mask, restore_index = model.mask_for(ids, 6, "cpu")
    assert mask.sum(1).tolist() == [float(L - visible)] * 6
    assert visible_index.shape == (6, visible)
    assert torch.equal(mask.gather(1, visible_index), torch.zeros(6, visible))
    # Without clip ids (torch's RNG) the count is the same.
    assert model.mask_for(None, 3, "cpu")[1].sum(1).tolist() == [float(L - visible)] * 3


# --------------------------------------------------------------------------------------------
# 5. The CLAP teacher: frozen, outside the state dict and the parameters
# --------------------------------------------------------------------------------------------


def test_teacher_is_not_saved_nor_trained(clap_model, teacher_audio):
    model = clap_model
    assert model.teacher is not None and model.teacher.output_dim == 768
    keys = list(model.state_dict())
    assert not [k for k in keys if "audio_branch" in k or "teacher" in k or "audio_projection" in k]
    teacher_ids = {id(p) for p in model.teacher.parameters()}
    assert n_params(model.teacher) > 20_000_000  # HTSAT-tiny is ~28-31 M
    assert not teacher_ids & {id(p) for p in model.parameters()}
    assert all(not isinstance(m, type(model.teacher)) for m in model.modules())

    # Same model with the spectrogram target: only the head differs. CLAP: the paper's
    # Linear(128 -> D) + LayerNorm(D) = 128 * D + D + 2 * D = 131 * D, D = 768; spectrogram:
    # AudioMAE's decoder_pred, a plain Linear(128 -> 256) = 129 * 256.
    spectrogram = tiny_model(num_classes=3, target="spectrogram", mask_ratio=0.4, cls_branch=True)
    assert n_params(model) - n_params(spectrogram) == 131 * 768 - 129 * 256
    assert n_params(model.head) == 131 * 768 and n_params(spectrogram.head) == 129 * 256
    assert model.head[1].eps == 1e-6 and len(spectrogram.head) == 1
    assert len(spectrogram.state_dict()) == len(model.state_dict()) - 2

    model.train()
    model.zero_grad(set_to_none=True)
    out = model(fbank=random_fbank(2, seed=5), teacher_source=teacher_audio, clip_ids=torch.tensor([1, 2]))
    assert out["target"].shape == (2, L, 768) and out["prediction"].shape == (2, L, 768)
    assert not out["target"].requires_grad and out["target"].dtype == torch.float32
    assert torch.isfinite(out["target"]).all() and out["target"].std() > 0
    masked, visible = masked_and_visible_mse(out["prediction"], out["target"], out["mask"])
    (masked + visible).sum().backward()
    for name, parameter in model.encoder.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
    assert model.encoder.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in model.teacher.parameters())
    assert not model.teacher.training  # stays in eval mode under model.train()
    model.zero_grad(set_to_none=True)

    # A precomputed native map (B, 768, 2, 32), as a target cache stores it, gives the same targets.
    with torch.no_grad():
        token_map = model.teacher.token_map(teacher_audio)
        assert token_map.shape == (2, 768, 2, 32)
        cached = model(fbank=random_fbank(2, seed=5), teacher_token_map=token_map, clip_ids=torch.tensor([1, 2]))
    torch.testing.assert_close(cached["target"], out["target"])


# --------------------------------------------------------------------------------------------
# 6. The classification branch and configuration errors
# --------------------------------------------------------------------------------------------


def test_classification_branch_and_config_errors():
    model = tiny_model(num_classes=5, mask_ratio=0.4, cls_branch=True)
    assert isinstance(model.cls_branch, ClassificationBranch)
    layers = list(model.cls_branch.mlp)
    assert [type(m) for m in layers] == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    assert (layers[0].in_features, layers[0].out_features, layers[3].out_features) == (192, 64, 5)
    model.train()
    out = model(fbank=random_fbank(3, seed=6), clip_ids=torch.tensor([0, 1, 2]))
    assert out["cls_logits"].shape == (3, 5)
    # The branch pools the VISIBLE encoder outputs: recompute it from the pieces.
    with torch.no_grad():
        visible_index, _, _ = model.mask_for(torch.tensor([0, 1, 2]), 3, "cpu")
        tokens = model.encoder.embed_patches(random_fbank(3, seed=6))
        pooled = model.encoder.encode(tokens, visible_index).mean(1)
        assert model.cls_branch.training  # BatchNorm on batch statistics, as in the forward above
        torch.testing.assert_close(model.cls_branch(pooled), out["cls_logits"].detach(), rtol=1e-4, atol=1e-5)
    assert tiny_model().cls_branch is None
    assert tiny_model()(fbank=random_fbank(1))["cls_logits"] is None

    with pytest.raises(ValueError, match="task.labels"):
        tiny_model(num_classes=0, cls_branch=True)
    with pytest.raises(ValueError, match="model.teacher_checkpoint"):
        tiny_model(target="teacher", teacher_checkpoint="")

    # The criterion refuses lambda_cls > 0 without a branch or without labels.
    criterion = SupmamCriterion(SupmamCriterionConfig(lambda_cls=0.01), task=None)
    with pytest.raises(ValueError, match="cls_branch"):
        criterion(tiny_model(), {"net_input": {"fbank": random_fbank(2)}, "target": torch.tensor([0, 1])})
    with pytest.raises(ValueError, match="task.labels"):
        criterion(model, {"net_input": {"fbank": random_fbank(2)}})


# --------------------------------------------------------------------------------------------
# 7. The paper's ViT-B configuration
# --------------------------------------------------------------------------------------------


def test_vit_b_defaults_build_and_train_one_step():
    start = time.time()
    defaults = SupmamConfig()
    assert (defaults.encoder_layers, defaults.encoder_embed_dim, defaults.encoder_heads) == (12, 768, 12)
    assert (defaults.decoder_layers, defaults.decoder_embed_dim, defaults.decoder_heads) == (1, 512, 16)
    assert defaults.mask_ratio == 0.8 and defaults.target == "spectrogram"
    torch.manual_seed(0)
    model = SupmamModel(OmegaConf.structured(SupmamConfig()), num_classes=0, sample_rate=16000)

    encoder = n_params(model.encoder)
    patch_embed = n_params(model.encoder.patch_embed)
    decoder = n_params(model.decoder)
    head = n_params(model.head)
    print(f"\nViT-B encoder {encoder:,} (patch embedding {patch_embed:,}), decoder 1 block {decoder:,}, "
          f"head {head:,}, total {n_params(model):,}")
    assert 85_000_000 <= encoder <= 87_000_000
    # 1 input channel: 16 * 16 * 768 + 768 = 197,376; one block: 12 * 768^2 + 13 * 768 = 7,087,872;
    # final norm 2 * 768; [CLS] 768 (AudioMAE's backbone).
    assert patch_embed == 16 * 16 * 768 + 768
    assert encoder == patch_embed + 12 * (12 * 768**2 + 13 * 768) + 2 * 768 + 768
    assert head == 512 * 256 + 256  # AudioMAE's decoder_pred: Linear(512 -> 256), no LayerNorm
    assert model.cls_branch is None and model.teacher is None

    waves = 0.1 * torch.randn(2, 164080, generator=torch.Generator().manual_seed(8))  # 10.255 s at 16 kHz
    sample = {"net_input": {"source": waves, "source_lengths": torch.tensor([164080, 164080])}}
    criterion = SupmamCriterion(SupmamCriterionConfig(), task=None)
    model.train()
    loss, sample_size, log = criterion(model, sample)
    assert sample_size == 2 and torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    for name, parameter in model.encoder.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
    assert model.encoder.patch_embed.proj.weight.grad.abs().sum() > 0
    forward_backward = time.time() - start

    # AudioMAE's own recipe: a 16-block decoder.
    torch.manual_seed(0)
    audiomae = SupmamModel(OmegaConf.structured(SupmamConfig(decoder_layers=16)), num_classes=0, sample_rate=16000)
    decoder16 = n_params(audiomae.decoder)
    block = n_params(audiomae.decoder.blocks[0])
    print(f"AudioMAE decoder 16 blocks {decoder16:,} (one Swin block {block:,}); "
          f"ViT-B build + fwd/bwd {forward_backward:.1f} s, total {time.time() - start:.1f} s")
    assert len(audiomae.decoder.blocks) == 16
    assert decoder16 - decoder == 15 * block
    assert n_params(audiomae.encoder) == encoder
    # AudioMAE's Swin block of width 512, 16 heads: attention 4 * 512^2 + 4 * 512, MLP 8 * 512^2 + 5 * 512,
    # two norms 4 * 512, temperatures 16, position-bias MLP (2 -> 384 -> 16) 3 * 384 + 384 * 16 + 16.
    assert block == 12 * 512**2 + 13 * 512 + 16 + (3 * 384 + 384 * 16 + 16)


def test_classification_branch_takes_a_batch_of_one_clip():
    from supmam_plugin.models.supmam_model import ClassificationBranch

    branch = ClassificationBranch(8, 4, 3).train()
    pooled = torch.randn(1, 8)
    logits = branch(pooled)
    assert logits.shape == (1, 3) and branch.mlp[1].training
    branch.eval()
    torch.testing.assert_close(logits, branch(pooled))  # the running statistics were used


def test_encoder_fast_attention_path_equals_timms_plain_block():
    """The encoder's blocks (plain torch, fused scaled_dot_product_attention) compute what timm's own
    ViT ``Block`` computes with the same weights on its plain softmax(QK^T)V path."""
    from functools import partial

    from timm.models.vision_transformer import Block

    from supmam_plugin.core.vit import VitEncoder, VitEncoderConfig

    torch.manual_seed(0)
    encoder = VitEncoder(OmegaConf.structured(VitEncoderConfig(encoder_layers=2, encoder_embed_dim=192,
                                                               encoder_heads=3))).eval()
    tokens = encoder.embed_patches(torch.randn(2, 1024, 128))
    visible = torch.stack([torch.randperm(512)[:102].sort().values for _ in range(2)])
    timm_blocks = [Block(192, 3, 4.0, qkv_bias=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6)).eval()
                   for _ in encoder.blocks]
    for ours, theirs in zip(encoder.blocks, timm_blocks):
        theirs.load_state_dict(ours.state_dict())  # same parameter names: strict
        theirs.attn.fused_attn = False
    with torch.no_grad():
        fast = encoder.encode(tokens, visible)
        x = torch.cat([encoder.cls_token.expand(2, -1, -1), torch.gather(tokens, 1, visible[..., None].expand(-1, -1, 192))], 1)
        for block in timm_blocks:
            x = block(x)
        plain = encoder.norm(x)[:, 1:]
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-5)
