"""``model.clone_batch=K`` (EAT's / data2vec 2.0's several masks per clip): K independent masks per
clip, the targets computed once and shared by the copies, and the same step as a batch whose clips
were repeated K times and masked with the same noise."""
from __future__ import annotations

import pytest
import torch
from test_supmam_model import L, random_fbank, tiny_model

from supmam_plugin.criterions.supmam_loss import SupmamCriterion, SupmamCriterionConfig

K = 3


def token_map(batch: int) -> torch.Tensor:
    """What a teacher cache holds: HTSAT-tiny's native map (B, 768, 2, 32) float16."""
    return torch.randn(batch, 768, 2, 32, generator=torch.Generator().manual_seed(5)).half()


@pytest.fixture(scope="module")
def models():
    """SupMAM-CLAP with clone_batch=K and the same weights with clone_batch=1."""
    overrides = dict(target="teacher", teacher_checkpoint="random", mask_ratio=0.4, cls_branch=True)
    cloned = tiny_model(num_classes=3, clone_batch=K, **overrides)
    single = tiny_model(num_classes=3, **overrides)
    single.load_state_dict(cloned.state_dict())
    return cloned.train(), single.train()


def test_k_independent_masks_per_clip_and_one_target_per_clip(models):
    cloned, _ = models
    out = cloned(fbank=random_fbank(2), teacher_token_map=token_map(2), clip_ids=torch.tensor([7, 3]))
    mask = out["mask"]
    assert out["copies"] == K and mask.shape == (2 * K, L) and out["prediction"].shape[0] == 2 * K
    assert (mask.sum(1) == L - int(L * 0.6)).all()  # every copy at the mask ratio
    for clip in range(2):
        rows = mask[clip * K:(clip + 1) * K]
        for a in range(K):
            for b in range(a + 1, K):
                overlap = (rows[a] * rows[b]).sum() / rows[a].sum()
                assert not torch.equal(rows[a], rows[b]) and overlap < 0.6  # independent: about 0.4 overlap
        copies = out["target"][clip * K:(clip + 1) * K]
        assert all(torch.equal(copies[0], c) for c in copies[1:])
    assert not torch.equal(out["target"][0], out["target"][K])
    # the same clip in another batch and position gets the same K masks (keyed by clip id and copy)
    again = cloned(fbank=random_fbank(2).flip(0), teacher_token_map=token_map(2).flip(0), clip_ids=torch.tensor([3, 7]))
    assert torch.equal(again["mask"][K:], mask[:K]) and torch.equal(again["mask"][:K], mask[K:])
    # validation masks once
    cloned.eval()
    try:
        assert cloned(fbank=random_fbank(2), teacher_token_map=token_map(2))["mask"].shape == (2, L)
    finally:
        cloned.train()


def test_clone_batch_equals_a_repeated_batch_with_the_same_masks(models):
    """The whole criterion (prediction, target, visible + masked loss, cls loss on the labels of each
    copy) equals clone_batch=1 on the batch whose clips are repeated K times, masked with the same noise."""
    cloned, single = models
    noise = torch.rand(2 * K, L, generator=torch.Generator().manual_seed(9))
    labels = torch.tensor([2, 0])
    criterion = SupmamCriterion(SupmamCriterionConfig(lambda_cls=0.5), task=None)
    fbank, maps = random_fbank(2), token_map(2)
    torch.manual_seed(0)  # the branch's BatchNorm statistics are of the same rows either way
    loss_k, size_k, log_k = criterion(cloned, {"net_input": {"fbank": fbank, "teacher_token_map": maps,
                                                             "mask_noise": noise}, "target": labels})
    loss_1, size_1, log_1 = criterion(single, {"net_input": {"fbank": fbank.repeat_interleave(K, 0),
                                                             "teacher_token_map": maps.repeat_interleave(K, 0),
                                                             "mask_noise": noise},
                                               "target": labels.repeat_interleave(K)})
    assert size_k == size_1 == 2 * K and log_k["nsentences"] == 2 and log_1["nsentences"] == 2 * K
    assert loss_k.item() == pytest.approx(loss_1.item(), rel=1e-4)  # float32 sums over other batch shapes
    for key in ("masked_loss", "visible_loss", "cls_loss"):
        assert log_k[key] == pytest.approx(log_1[key], rel=1e-4), key
    assert log_k["cls_loss"] > 0


def test_clone_batch_must_be_positive():
    with pytest.raises(ValueError, match="model.clone_batch=0"):
        tiny_model(clone_batch=0)
