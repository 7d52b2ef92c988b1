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
    per_class_ap: bool = field(
        default=True,
        metadata={"help": "multi-label validation with report_map: also log AP_per_class, {class name: AP in %} "
                  "over the classes with a positive clip (AudioSet-style per-class results; the json log "
                  "keeps it, tensorboard and wandb skip it)"},
    )


def check_best_checkpoint_metric(metric: str, multi_label: bool, report_map: bool = True) -> None:
    """Refuse a ``checkpoint.best_checkpoint_metric`` that this criterion does not log in
    validation: fairseq would only find out after the first epoch, as a bare KeyError in its
    validate. Metrics logged either way (loss) and metrics of other code pass."""
    if multi_label and metric == "accuracy":
        raise ValueError(
            "checkpoint.best_checkpoint_metric=accuracy but task.multi_label=true: supmam_classification logs "
            "mAP, not accuracy, for multi-label data; set checkpoint.best_checkpoint_metric=mAP "
            "(and checkpoint.maximize_best_checkpoint_metric=true)"
        )
    if not multi_label and metric in ("mAP", "mAP_classes_skipped", "AP_per_class"):
        raise ValueError(
            f"checkpoint.best_checkpoint_metric={metric} but task.multi_label=false: supmam_classification logs "
            "accuracy, not mAP, for single-label data; set checkpoint.best_checkpoint_metric=accuracy "
            "(and checkpoint.maximize_best_checkpoint_metric=true)"
        )
    if metric == "AP_per_class":
        raise ValueError(
            "checkpoint.best_checkpoint_metric=AP_per_class is one AP per class, not a number; set "
            "checkpoint.best_checkpoint_metric=mAP (and checkpoint.maximize_best_checkpoint_metric=true)"
        )
    if metric in ("mAP", "mAP_classes_skipped") and not report_map:
        raise ValueError(
            f"checkpoint.best_checkpoint_metric={metric} but criterion.report_map=false: mAP is not logged; "
            "set criterion.report_map=true"
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
    training, mAP and AP_per_class over every clip of the subset (multi-label)."""

    def __init__(self, cfg: SupmamClassificationConfig, task):
        super().__init__(task)
        self.report_map = cfg.report_map
        self.per_class_ap = cfg.per_class_ap

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
        predictions = [log["predictions"] for log in logging_outputs if "predictions" in log]
        for batch in predictions:
            metrics.log_custom(PredictionMeter, "mAP", batch)
        if predictions:
            metrics.log_derived("mAP_classes_skipped", lambda meters: meters["mAP"].classes_skipped(), priority=50)

    def reduce_class_metrics(self, logging_outputs) -> None:
        """Metrics that need the class names, which the static ``reduce_metrics`` cannot reach
        (fairseq calls it on the class): ``AP_per_class``. Called by the task's reduce_metrics,
        after ``reduce_metrics`` logged the mAP meter it reads."""
        if self.per_class_ap and any("predictions" in log for log in logging_outputs):
            class_names = list(self.task.classes)
            metrics.log_derived("AP_per_class", lambda meters: meters["mAP"].ap_by_class(class_names), priority=200)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return False  # predictions are gathered, not summed
