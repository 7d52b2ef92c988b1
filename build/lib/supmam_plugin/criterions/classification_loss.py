"""Criterion ``supmam_classification``: cross-entropy (single-label) or BCE (multi-label), with
accuracy or mAP over the WHOLE validation subset."""

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import FairseqDataclass
from fairseq.logging import metrics

from .finite_loss import check_finite
from .prediction_meter import BatchPredictions, PredictionMeter


@dataclass
class SupmamClassificationConfig(FairseqDataclass):
    report_map: bool = field(
        default=True, metadata={"help": "multi-label validation: log mAP over the whole subset (sklearn AP)"}
    )


def mixed_loss(logits: torch.Tensor, target: torch.Tensor, mixed) -> torch.Tensor:
    """Per-clip loss (B,): CE for class indices (B,), BCE averaged over classes for multi-hot
    (B, C); with mixup (lam, partner) the targets are mixed the same way as the inputs."""
    logits = logits.float()
    if target.dim() == 2:
        target = target.float()
        if mixed is not None:
            lam, partner = mixed
            target = lam * target + (1.0 - lam) * target[partner]
        return F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(dim=1)
    loss = F.cross_entropy(logits, target, reduction="none")
    if mixed is not None:
        lam, partner = mixed
        loss = lam * loss + (1.0 - lam) * F.cross_entropy(logits, target[partner], reduction="none")
    return loss


@register_criterion("supmam_classification", dataclass=SupmamClassificationConfig)
class SupmamClassificationCriterion(FairseqCriterion):
    """Loss summed over clips, sample_size = clips. Logs accuracy (single-label) and, outside
    training, mAP over every clip of the subset (multi-label)."""

    def __init__(self, cfg: SupmamClassificationConfig, task):
        super().__init__(task)
        self.report_map = cfg.report_map

    def forward(self, model, sample, reduce=True):
        if "target" not in sample:
            raise ValueError("supmam_classification needs labels: set task.labels (e.g. 'label')")
        out = model(**sample["net_input"])
        logits, target = out["logits"], sample["target"]
        per_clip = mixed_loss(logits, target, out.get("mixup"))  # (B,)
        check_finite(per_clip, sample, model)
        loss = per_clip.sum()
        batch_size = logits.size(0)
        log = {"loss": loss.item(), "nsentences": batch_size, "sample_size": batch_size,
               "ntokens": sample.get("ntokens", batch_size)}
        if target.dim() == 1:
            log["correct"] = (logits.argmax(dim=-1) == target).sum().item()
        elif self.report_map and not model.training:
            log["predictions"] = BatchPredictions(
                torch.sigmoid(logits.detach().float()).cpu().numpy(),
                target.detach().float().cpu().numpy().astype("uint8"),  # bf16 has no numpy dtype
            )
        return loss, batch_size, log

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        sample_size = sum(log.get("sample_size", 0) for log in logging_outputs)
        metrics.log_scalar("loss", sum(log.get("loss", 0) for log in logging_outputs) / max(sample_size, 1),
                           sample_size, round=4)
        if any("correct" in log for log in logging_outputs):
            correct = sum(log.get("correct", 0) for log in logging_outputs)
            metrics.log_scalar("accuracy", 100.0 * correct / max(sample_size, 1), sample_size, round=3)
        for log in logging_outputs:
            if "predictions" in log:
                metrics.log_custom(PredictionMeter, "mAP", log["predictions"])
                metrics.log_custom(lambda: PredictionMeter("skipped"), "mAP_classes_skipped", log["predictions"])

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return False  # predictions are gathered, not summed
