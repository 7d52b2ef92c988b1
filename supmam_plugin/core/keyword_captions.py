"""Captions made from a clip's labels: LAION-CLAP's keyword-to-caption, in miniature.

LAION-CLAP trained on AudioSet with captions a T5 model wrote from each clip's label keywords
("keyword-to-caption"); its audio tower so learned the label vocabulary from text. No such
language model runs here, so a few sentence templates stand in for it: each caption names
exactly the clip's classes (``_`` read as a space), in an order shuffled per clip and template,
so that no class is tied to a position in the sentence.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

TEMPLATES = (
    "The sound of {}.",
    "A recording of {}.",
    "{} can be heard.",
    "{}.",  # the bare keywords, as AudioSet's own label lists read
)


def spoken_list(names: Sequence[str]) -> str:
    """['a', 'b', 'c'] -> 'a, b and c'."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def keyword_captions(class_names: Sequence[str], count: int, rng: np.random.Generator) -> list[str]:
    """``count`` captions (templates in turn, from a random first one) naming every class of
    ``class_names`` once, each in its own random order; [] for a clip with no label."""
    if not class_names or count <= 0:
        return []
    words = [name.replace("_", " ") for name in class_names]
    first = int(rng.integers(len(TEMPLATES)))
    captions = []
    for k in range(count):
        order = [words[i] for i in rng.permutation(len(words))]
        text = TEMPLATES[(first + k) % len(TEMPLATES)].format(spoken_list(order))
        captions.append(text[0].upper() + text[1:])
    return captions


def clip_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of clip ``index``'s keyword captions: the same captions for a seed whatever the split's size."""
    return np.random.default_rng([seed, index, 0x6B6579])  # 0x6B6579: "key", this module's stream


def captions_from_labels(labels: Sequence[Sequence[str]], seed: int = 1) -> list[tuple[str, ...]]:
    """Captions of clips that have labels and no caption (AudioSet, as LAION-CLAP met it): per clip,
    one caption per template naming exactly its classes (:func:`keyword_captions`, drawn by
    :func:`clip_rng`); () for a clip without labels."""
    return [tuple(keyword_captions(names, len(TEMPLATES), clip_rng(seed, index))) for index, names in enumerate(labels)]
