"""Criterion ``supmam``: lambda_target * L_target + lambda_cls * L_cls (SupMAM-CLAP, Interspeech 2023, Sec. 2)."""

import logging
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import FairseqDataclass
from fairseq.logging import metrics

from .finite_loss import check_finite

logger = logging.getLogger(__name__)


@dataclass
class SupmamCriterionConfig(FairseqDataclass):
    lambda_cls: float = field(
        default=0.0,
        metadata={"help": "weight of the classification loss (paper: 0.01 for SupMAM, 1e-4 for "
                  "SupMAM-CLAP, 0 without the branch)"},
    )
    lambda_target: float = field(
        default=1.0,
        metadata={"help": "weight of the target (reconstruction) loss: 1 in every paper recipe; 0 leaves the "
                  "classification loss alone (the paper's Table 5 'cls' row; the decoder still runs)"},
    )
    cls_temperature: float = field(
        default=10.0, metadata={"help": "tau: the branch's logits are divided by it (paper: 10)"}
    )


def masked_and_visible_mse(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor):
    """Per-clip mean squared error over masked and over visible patches.

    prediction, target: (B, L, D); mask: (B, L), 1 = masked. Returns two (B,) tensors, each
    averaged over its own patch count (and over D).
    """
    per_patch = (prediction.float() - target.float()).square().mean(dim=-1)  # (B, L)
    visible = 1.0 - mask
    masked_loss = (per_patch * mask).sum(1) / mask.sum(1).clamp_min(1.0)
    visible_loss = (per_patch * visible).sum(1) / visible.sum(1).clamp_min(1.0)
    return masked_loss, visible_loss


def labelled_clips(target: torch.Tensor) -> torch.Tensor:
    """(B,) bool: clips that carry a label. Unlabelled clips (semi-supervised pretraining) have
    target -100 (single-label, CE's ignore index) or a row of negative values (multi-label)."""
    if target.dim() == 2:
        return (target >= 0).all(dim=1)
    return target >= 0


def classification_loss(logits: torch.Tensor, target: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per-clip CE(logits / tau, y); multi-hot targets (B, C) get BCE averaged over classes. (B,)

    Unlabelled clips (see :func:`labelled_clips`) get a loss of exactly 0 and no gradient:
    CE ignores index -100, and BCE rows with negative targets are masked out."""
    logits = logits.float() / temperature
    if target.dim() == 2:
        labelled = labelled_clips(target)
        safe_target = torch.where(labelled[:, None], target.float(), torch.zeros_like(logits))
        per_clip = F.binary_cross_entropy_with_logits(logits, safe_target, reduction="none").mean(1)
        return per_clip * labelled.to(per_clip.dtype)
    return F.cross_entropy(logits, target, reduction="none", ignore_index=-100)


@register_criterion("supmam", dataclass=SupmamCriterionConfig)
class SupmamCriterion(FairseqCriterion):
    """Spectrogram target: MSE on masked patches. CLAP target: MSE on visible plus MSE on masked
    patches. Plus ``lambda_cls`` x classification loss of the visible-token branch.
    Losses are summed over masked samples; sample_size is their number (the clips times
    ``model.clone_batch``), nsentences the number of clips.

    Semi-supervised (``task.allow_unlabeled=true``): every clip adds its target loss, only the
    labelled clips add a classification loss, so the loss per clip is

        (1 / B) * [sum over all B clips of L_target + lambda_cls * sum over labelled clips of L_cls]

    i.e. the cls term, relative to the target term, scales with the labelled fraction of the
    batch (n_labelled / B): with 200 labelled clips in a pool of 3200, lambda_cls acts about
    16x weaker than on a fully labelled set; raise ``criterion.lambda_cls`` to compensate. A batch
    without a labelled clip has cls_loss 0. Logged ``cls_loss`` and ``cls_accuracy`` are per
    LABELLED clip (``cls_labelled`` counts them)."""

    def __init__(self, cfg: SupmamCriterionConfig, task):
        super().__init__(task)
        self.lambda_cls = cfg.lambda_cls
        self.lambda_target = cfg.lambda_target
        if self.lambda_target == 0 and self.lambda_cls == 0:
            raise ValueError("criterion.lambda_target=0 and criterion.lambda_cls=0: nothing would be trained; "
                             "set one of them above 0")
        self.temperature = cfg.cls_temperature

    def forward(self, model, sample, reduce=True):
        out = model(**sample["net_input"])
        masked_loss, visible_loss = masked_and_visible_mse(out["prediction"], out["target"], out["mask"])
        target_loss = masked_loss + visible_loss if out["loss_on_visible"] else masked_loss
        loss = self.lambda_target * target_loss.sum()
        batch_size = out["mask"].size(0)  # masked samples: clips x model.clone_batch
        log = {
            "nsentences": batch_size // out.get("copies", 1),
            "sample_size": batch_size,
            "ntokens": sample.get("ntokens", batch_size),
            "target_loss": target_loss.sum().item(),
            "masked_loss": masked_loss.sum().item(),
            "visible_loss": visible_loss.sum().item(),
        }
        if self.lambda_cls > 0:
            if out.get("cls_logits") is None:
                raise ValueError("criterion.lambda_cls > 0 but the model has no classification branch: "
                                 "set model.cls_branch=true")
            if "target" not in sample:
                raise ValueError("criterion.lambda_cls > 0 needs labels: set task.labels (e.g. 'label')")
            target = sample["target"].repeat_interleave(out.get("copies", 1), dim=0)  # a row per masked sample
            cls_loss = classification_loss(out["cls_logits"], target, self.temperature)  # (B,), 0 if unlabelled
            labelled = labelled_clips(target)
            loss = loss + self.lambda_cls * cls_loss.sum()
            log["cls_loss"] = cls_loss.sum().item()
            log["cls_labelled"] = int(labelled.sum().item())
            if target.dim() == 1:
                correct = (out["cls_logits"].argmax(-1) == target) & labelled
                log["cls_correct"] = int(correct.sum().item())
        check_finite(self.lambda_target * target_loss + (self.lambda_cls * cls_loss if self.lambda_cls > 0 else 0.0), sample, model)
        log["loss"] = loss.item()
        return loss, batch_size, log

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        def total(key):
            return sum(log.get(key, 0) for log in logging_outputs)

        sample_size = max(total("sample_size"), 1)
        metrics.log_scalar("loss", total("loss") / sample_size, sample_size, round=4)
        for key in ("target_loss", "masked_loss", "visible_loss"):
            metrics.log_scalar(key, total(key) / sample_size, sample_size, round=4)
        # Classification metrics are per labelled clip (all clips unless task.allow_unlabeled=true).
        labelled = total("cls_labelled")
        if any("cls_loss" in log for log in logging_outputs):
            metrics.log_scalar("cls_loss", total("cls_loss") / max(labelled, 1), labelled, round=4)
            metrics.log_scalar("cls_labelled", labelled, round=0)
        if any("cls_correct" in log for log in logging_outputs):
            accuracy = 100.0 * total("cls_correct") / labelled if labelled else 0.0
            metrics.log_scalar("cls_accuracy", accuracy, labelled, round=2)
        metrics.log_scalar("nsentences", total("nsentences"), round=0)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True


