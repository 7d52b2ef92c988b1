"""Whole-subset metrics (mAP, per-class AP) in fairseq's logging: predictions of every batch are
collected by a custom meter and scored once, so per-batch averaging can never creep in."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from fairseq.logging import meters
from fairseq.logging.meters import Meter

from .logged_batch import LoggedBatch


class BatchPredictions(LoggedBatch):
    """Scores (B, C) float32 and multi-hot targets (B, C) uint8 of one batch."""

    fields = ("scores", "targets")


def average_precision_per_class(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """sklearn's average precision of each class, (C,) in [0, 1]; NaN for a class without a
    positive clip (its AP is undefined). scores, targets: (N, C)."""
    from sklearn.metrics import average_precision_score  # here: sklearn costs every fairseq process ~1 s to import

    has_positive = targets.sum(axis=0) > 0
    per_class = np.full(targets.shape[1], np.nan)
    if has_positive.any():
        per_class[has_positive] = average_precision_score(targets[:, has_positive], scores[:, has_positive],
                                                          average=None)
    return per_class


class PredictionMeter(Meter):
    """Collects BatchPredictions; ``smoothed_value`` is the mAP (in %) of all of them. The
    per-class APs are computed once per new batch and shared with the metrics derived from
    this meter (``classes_skipped``, ``ap_by_class``): sklearn over AudioSet's eval set takes
    seconds, and fairseq asks for every logged value after each validation batch."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.scores, self.targets = [], []
        self._per_class = None

    def update(self, predictions: BatchPredictions):
        self.scores.append(np.asarray(predictions.scores, dtype=np.float32))
        self.targets.append(np.asarray(predictions.targets))
        self._per_class = None

    def state_dict(self):
        return {}  # predictions are not checkpointed

    def load_state_dict(self, state_dict):
        self.reset()  # older states hold {"report": ...}: nothing to restore

    def per_class(self) -> np.ndarray:
        """Average precision of each class over every clip collected, (C,), NaN without a positive."""
        if self._per_class is None:
            self._per_class = average_precision_per_class(np.concatenate(self.scores), np.concatenate(self.targets))
        return self._per_class

    @property
    def smoothed_value(self) -> float:
        if not self.scores or np.isnan(self.per_class()).all():
            return float("nan")
        return round(100.0 * float(np.nanmean(self.per_class())), 3)

    def classes_skipped(self) -> float:
        """Classes without a positive clip, left out of the mAP."""
        return float(np.isnan(self.per_class()).sum()) if self.scores else float("nan")

    def ap_by_class(self, class_names: Sequence[str]) -> dict[str, float]:
        """{class name: AP in %, 2 decimals} over the classes with a positive clip, in class order."""
        if not self.scores:
            return {}
        return {name: round(100.0 * float(ap), 2) for name, ap in zip(class_names, self.per_class())
                if not np.isnan(ap)}


# fairseq restores the meters saved in a checkpoint by class name, looked up in its own
# meters module (MetersDict.load_state_dict): make ours findable there so runs resume.
meters.PredictionMeter = PredictionMeter
