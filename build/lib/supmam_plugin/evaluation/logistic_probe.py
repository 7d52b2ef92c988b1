"""A linear probe on fixed features: ``StandardScaler`` + ``LogisticRegression`` (scikit-learn),
its inverse regularisation C chosen on the validation split, scored on every split.

Single-label: multinomial logistic regression, score = accuracy (%). Multi-label (AudioSet style):
one-vs-rest logistic regressions, score = mAP (%): the mean over the classes that have a positive
in the scored split of sklearn's ``average_precision_score`` (as the plugin's fine-tuning criterion
reports it). The test split never takes part in choosing C.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, average_precision_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

DEFAULT_C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)


@dataclass
class ProbeScores:
    """What :func:`fit_probe` found: the chosen C, the score (%) of each split for it, and the
    validation score of every C of the grid."""

    C: float
    metric: str  # "accuracy" or "mAP"
    scores: dict[str, float]
    valid_by_C: dict[float, float] = field(default_factory=dict)
    model: Pipeline | None = field(default=None, repr=False)


def make_probe(C: float, multi_label: bool = False, max_iter: int = 5000) -> Pipeline:
    """StandardScaler then LogisticRegression(C) (one-vs-rest when ``multi_label``); lbfgs, seeded."""
    logistic = LogisticRegression(C=C, max_iter=max_iter, random_state=0)
    return make_pipeline(StandardScaler(), OneVsRestClassifier(logistic) if multi_label else logistic)


def mean_average_precision(targets: np.ndarray, scores: np.ndarray) -> float:
    """mAP (%) of (N, C) 0/1 targets and (N, C) scores over the classes with a positive."""
    has_positive = targets.sum(axis=0) > 0
    if not has_positive.any():
        raise ValueError("no class has a positive clip in this split: mAP is undefined")
    per_class = average_precision_score(targets[:, has_positive], scores[:, has_positive], average=None)
    return 100.0 * float(np.mean(per_class))


def probe_score(model: Pipeline, features: np.ndarray, targets: np.ndarray, multi_label: bool) -> float:
    """Accuracy (%) of a single-label probe, mAP (%) of a multi-label one."""
    if multi_label:
        return mean_average_precision(targets, model.decision_function(features))
    return 100.0 * float(accuracy_score(targets, model.predict(features)))


def fit_probe(features: dict[str, np.ndarray], targets: dict[str, np.ndarray], multi_label: bool = False,
              c_grid=DEFAULT_C_GRID, train: str = "train", valid: str = "valid", max_iter: int = 5000,
              ) -> ProbeScores:
    """Fit one probe per C of ``c_grid`` on ``train``; keep the one with the best score on ``valid``
    (ties: the smallest C, i.e. the strongest regularisation); score it on every split of ``features``.

    features: {split: (N, D) float}; targets: {split: (N,) class indices, or (N, C) 0/1 when
    ``multi_label``}. Scores are in %."""
    for split in (train, valid):
        if split not in features:
            raise ValueError(f"fit_probe: no features for the {split!r} split")
    if not multi_label and len(np.unique(targets[train])) < 2:
        raise ValueError(f"the {train!r} split has a single class: a classifier cannot be fitted")
    best, valid_by_C = None, {}
    for C in sorted(float(c) for c in c_grid):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.filterwarnings("ignore", message="Label .* is present in all training examples")
            model = make_probe(C, multi_label, max_iter).fit(features[train], targets[train])
        valid_by_C[C] = probe_score(model, features[valid], targets[valid], multi_label)
        if best is None or valid_by_C[C] > valid_by_C[best[0]]:
            best = (C, model)
    C, model = best
    scores = {split: probe_score(model, x, targets[split], multi_label) for split, x in features.items()}
    return ProbeScores(C, "mAP" if multi_label else "accuracy", scores, valid_by_C, model)
