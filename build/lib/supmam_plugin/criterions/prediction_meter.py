"""Whole-subset metrics (mAP, accuracy) in fairseq's logging: predictions of every batch are
collected by a custom meter and scored once, so per-batch averaging can never creep in."""
from __future__ import annotations

import numpy as np
from fairseq.logging import meters
from fairseq.logging.meters import Meter


class BatchPredictions(str):
    """Scores (B, C) float32 and multi-hot targets (B, C) uint8 of one batch, carried in a
    logging output. It is a ``str`` ("<B clips>") only so fairseq's progress bars (simple, json,
    tqdm) print it short instead of choking on arrays; pickling (all_gather_list) keeps both."""

    def __new__(cls, scores: np.ndarray, targets: np.ndarray):
        obj = super().__new__(cls, f"<{len(scores)} clips>")
        obj.scores, obj.targets = scores, targets
        return obj

    def __reduce__(self):
        return BatchPredictions, (self.scores, self.targets)


def mean_average_precision(scores: np.ndarray, targets: np.ndarray) -> tuple[float, int]:
    """Mean over classes of sklearn's average precision; classes without a positive are skipped.
    scores, targets: (N, C). Returns (mAP, number of classes skipped)."""
    from sklearn.metrics import average_precision_score  # here: sklearn costs every fairseq process ~1 s to import

    has_positive = targets.sum(axis=0) > 0
    if not has_positive.any():
        return float("nan"), int(targets.shape[1])
    per_class = average_precision_score(targets[:, has_positive], scores[:, has_positive], average=None)
    return float(np.mean(per_class)), int((~has_positive).sum())


class PredictionMeter(Meter):
    """Collects BatchPredictions; ``smoothed_value`` is the mAP (in %) of all of them, or the
    number of classes without a positive (``report="skipped"``)."""

    def __init__(self, report: str = "mAP"):
        self.report = report
        self.reset()

    def reset(self):
        self.scores, self.targets = [], []

    def update(self, predictions: BatchPredictions):
        self.scores.append(np.asarray(predictions.scores, dtype=np.float32))
        self.targets.append(np.asarray(predictions.targets))

    def state_dict(self):
        return {"report": self.report}  # predictions are not checkpointed

    def load_state_dict(self, state_dict):
        self.report = state_dict["report"]
        self.reset()

    @property
    def smoothed_value(self) -> float:
        if not self.scores:
            return float("nan")
        average_precision, skipped = mean_average_precision(np.concatenate(self.scores), np.concatenate(self.targets))
        return round(100.0 * average_precision, 3) if self.report == "mAP" else float(skipped)


# fairseq restores the meters saved in a checkpoint by class name, looked up in its own
# meters module (MetersDict.load_state_dict): make ours findable there so runs resume.
meters.PredictionMeter = PredictionMeter
