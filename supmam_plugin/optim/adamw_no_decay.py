"""Optimizer ``supmam_adamw``: fairseq's AdamW with AudioMAE's weight-decay groups.

AudioMAE (main_pretrain.py, "following timm: set wd as 0 for bias and norm layers") builds its
AdamW groups with timm's ``add_weight_decay``: every parameter with one dimension (biases, the
weights of LayerNorm and BatchNorm) gets no weight decay; the others, the [CLS] and mask tokens
(shaped (1, 1, D)) included, get ``weight_decay``. Fixed sin-cos tables are buffers and never
reach the optimizer. fairseq's ``adam`` decays every parameter, and its composite optimizer's
``weight_decay_scale`` override never takes effect (fairseq 0.12.3 checks a key that is never
there), so we write this one rule here. ``optimizer.torch_fused=true`` steps with
``torch.optim.AdamW(fused=True)`` over the same groups (BENCHMARKS.md: the step's share of the optimizer). The rule needs no parameter names, so it also holds for
the fp32 master copies of fairseq's bf16/fp16 optimizer, as long as they are not flattened into
one vector (``common.fp16_no_flatten_grads=true``, set in the recipes).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
from fairseq.optim import register_optimizer
from fairseq.optim.adam import FairseqAdam, FairseqAdamConfig

logger = logging.getLogger(__name__)


@dataclass
class SupmamAdamWConfig(FairseqAdamConfig):
    decay_tokens: bool = field(
        default=True,
        metadata={"help": "decay the learned tokens ([CLS], mask) as AudioMAE's pretraining does (timm's "
                  "add_weight_decay skips only 1-D parameters); false also leaves them undecayed"},
    )
    torch_fused: bool = field(
        default=False,
        metadata={"help": "step with torch.optim.AdamW(fused=True) (AudioMAE's own optimizer, one fused kernel "
                  "over all parameters on the CPU and GPUs) instead of fairseq's per-parameter Adam; same "
                  "groups, same update but for where eps enters (torch: sqrt(v_hat) + eps); a run saved with "
                  "either resumes with the other"},
    )


def weight_decay_groups(params: list, weight_decay: float, decay_tokens: bool = True) -> list[dict]:
    """[{"params": decayed}, {"params": not decayed, "weight_decay": 0.0}] (empty groups left out).

    Not decayed: 1-D parameters (biases, norm weights), and with ``decay_tokens=False`` tokens
    shaped (1, 1, D) too.
    """
    params = [p for p in params if p.requires_grad]
    if len(params) == 1 and params[0].dim() == 1 and params[0].numel() > 100_000:
        raise ValueError(
            "supmam_adamw got one flat parameter vector: fairseq's fp16 optimizer flattened the model, so "
            "biases and norms cannot be told apart; set common.fp16_no_flatten_grads=true"
        )

    def exempt(p: torch.Tensor) -> bool:
        return p.dim() <= 1 or (not decay_tokens and p.dim() == 3 and p.shape[:2] == (1, 1))

    decayed = [p for p in params if not exempt(p)]
    exempted = [p for p in params if exempt(p)]
    groups = []
    if decayed:
        groups.append({"params": decayed})
    if exempted:
        groups.append({"params": exempted, "weight_decay": 0.0})
    logger.info(f"supmam_adamw: weight decay {weight_decay} on {sum(p.numel() for p in decayed):,} parameters, "
                f"none on {sum(p.numel() for p in exempted):,} (biases, norms"
                f"{'' if decay_tokens else ', tokens'})")
    return groups


@register_optimizer("supmam_adamw", dataclass=SupmamAdamWConfig)
class SupmamAdamW(FairseqAdam):
    """fairseq's ``adam`` (decoupled weight decay, i.e. AdamW; fused on GPUs) with no decay on
    biases and norm weights. Every ``optimizer.*`` option of ``adam`` works the same."""

    def __init__(self, cfg: SupmamAdamWConfig, params):
        groups = weight_decay_groups(list(params), cfg.weight_decay, cfg.decay_tokens)
        super().__init__(cfg, groups)
        if cfg.torch_fused:
            self._optimizer = torch.optim.AdamW(groups, **self.optimizer_config, fused=True)

    def load_state_dict(self, state_dict, optimizer_overrides=None):
        """Resume from either implementation: torch's fused AdamW keeps ``step`` as a float32 tensor,
        fairseq's Adam as an int (it also counts with a tensor)."""
        if self.cfg.torch_fused:
            for state in state_dict.get("state", {}).values():
                if "step" in state and not torch.is_tensor(state["step"]):
                    state["step"] = torch.tensor(float(state["step"]))
        super().load_state_dict(state_dict, optimizer_overrides)
