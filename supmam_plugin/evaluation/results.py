"""Results tables of studies: mean +- std over seeds, and the names people read for methods and teachers."""
from __future__ import annotations

import numpy as np

from ..recipes import recipe_names
from ..recipes.compose import method_facts

METHOD_NAMES = {"audiomae": "AudioMAE", "mam_clap": "MAM-CLAP", "supmam": "SupMAM", "supmam_clap": "SupMAM-CLAP",
                "scratch": "from scratch"}
ENCODER_TEACHER_NAMES = ("checkpoint_encoder", "supmam")  # today's name and the old one


def mean_std(values) -> dict:
    """{"mean", "std" (sample std, 0 for one value), "n"} of a list of accuracies."""
    values = np.asarray(list(values), dtype=float)
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return {"mean": float(values.mean()), "std": std, "n": int(len(values))}


def teacher_label(result: dict) -> str:
    """Which teacher made a study's targets, for people: 'random teacher', 'CLAP teacher' or
    'encoder teacher' (model.teacher=checkpoint_encoder)."""
    if result.get("teacher_name", "laion_clap") in ENCODER_TEACHER_NAMES:
        return "encoder teacher"
    return "random teacher" if result.get("teacher", "random") == "random" else "CLAP teacher"


def method_label(name: str, teacher: str) -> str:
    """A method's name for people; the CLAP methods say which teacher (``teacher``: teacher_label)
    made their targets."""
    if has_clap_target(name):
        return f"{METHOD_NAMES[name]} ({teacher})"
    return METHOD_NAMES[name]


def has_clap_target(name: str) -> bool:
    """Whether ``name`` is a pretraining recipe whose decoder predicts a teacher's features (read from
    the composed recipe: model.target=teacher)."""
    return name in recipe_names("pretraining") and method_facts(name)["clap_target"]
