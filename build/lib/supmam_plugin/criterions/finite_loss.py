"""A non-finite loss is reported with the clips that made it, not trained on."""
from __future__ import annotations

import torch


def check_finite(per_clip_loss: torch.Tensor, sample: dict, model: torch.nn.Module) -> None:
    """Raise FloatingPointError naming the clips (``sample["id"]``: manifest entries, 0-based) when
    ``per_clip_loss`` (B,) is NaN or infinite: those whose input audio / fbank holds NaN or inf, or,
    with finite inputs, those with a non-finite loss in a float32 model. In half precision a
    non-finite loss with finite inputs is an overflow, left to fairseq's loss scaling."""
    bad_loss = ~torch.isfinite(per_clip_loss.detach())
    if not bad_loss.any():
        return
    net_input = sample["net_input"]
    inputs = net_input.get("fbank") if net_input.get("fbank") is not None else net_input["source"]
    bad_input = ~torch.isfinite(inputs.detach().reshape(len(inputs), -1)).all(dim=1)
    ids = sample["id"].cpu()
    if bad_input.any():
        raise FloatingPointError(
            f"non-finite loss: clip id(s) {ids[bad_input.cpu()].tolist()} (manifest entries, 0-based; line = id + 2) "
            "have NaN or infinite input samples. Fix or remove those files (supmam-validate-manifest DATA SPLIT "
            "finds them) or set task.skip_unreadable=true"
        )
    if next(model.parameters()).dtype == torch.float32:
        raise FloatingPointError(
            f"non-finite loss on clip id(s) {ids[bad_loss.cpu()].tolist()} (manifest entries, 0-based) whose inputs "
            "are finite: the model diverged; lower optimization.lr or set optimization.clip_norm"
        )
