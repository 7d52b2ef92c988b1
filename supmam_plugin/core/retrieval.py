"""Audio-text retrieval scores over a whole split: R@1/5/10 and mAP@10 in both directions.

A clip may have several captions, and different clips may share a caption string (templated
captions do): captions are compared as strings, so a retrieved caption is a hit for a clip when
its text is one of the clip's captions, and a caption query is answered by every clip that has it.
Each distinct string is ranked once.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

RANKS = (1, 5, 10)


def caption_relevance(captions: Sequence[Sequence[str]]) -> tuple[list[str], np.ndarray]:
    """(the distinct caption strings, relevance (clips, strings) bool: clip has that caption)."""
    strings = sorted({text for clip in captions for text in clip})
    column = {text: j for j, text in enumerate(strings)}
    relevance = np.zeros((len(captions), len(strings)), dtype=bool)
    for i, clip in enumerate(captions):
        relevance[i, [column[text] for text in clip]] = True
    return strings, relevance


def ranked_hits(similarity: np.ndarray, relevance: np.ndarray) -> np.ndarray:
    """(queries, candidates) bool: whether each candidate in each query's ranking (most similar
    first; ties broken by candidate order) is relevant."""
    order = np.argsort(-similarity, axis=1, kind="stable")
    return np.take_along_axis(relevance, order, axis=1)


def retrieval_scores(similarity: np.ndarray, relevance: np.ndarray, prefix: str) -> dict[str, float]:
    """{prefix}R{k}: R@k (% of queries with a hit in the first k); {prefix}mAP10: mAP@10 (%: the
    average precision over the first 10, divided by min(relevant, 10)). similarity, relevance: (queries, candidates)."""
    hits = ranked_hits(similarity, relevance)
    scores = {f"{prefix}R{k}": 100.0 * float(hits[:, :k].any(axis=1).mean()) for k in RANKS}
    top = hits[:, :10].astype(float)
    precision = np.cumsum(top, axis=1) / np.arange(1, top.shape[1] + 1)
    relevant = np.minimum(relevance.sum(axis=1), 10)
    scores[f"{prefix}mAP10"] = 100.0 * float(np.mean((precision * top).sum(axis=1) / np.maximum(relevant, 1)))
    return scores


def audio_text_retrieval(audio: np.ndarray, text_by_string: dict[str, np.ndarray],
                         captions: Sequence[Sequence[str]]) -> dict[str, float]:
    """Retrieval both ways. audio: (clips, D) embeddings; text_by_string: caption -> (D,) embedding;
    captions: each clip's captions. Keys a2t_R1, a2t_R5, a2t_R10, a2t_mAP10 (R@k, mAP@10), the same
    for t2a_ (names without '@', which a hydra override such as checkpoint.best_checkpoint_metric=a2t_R10
    takes as they are)."""
    strings, relevance = caption_relevance(captions)
    text = np.stack([text_by_string[s] for s in strings])
    similarity = audio @ text.T  # (clips, strings)
    return {**retrieval_scores(similarity, relevance, "a2t_"), **retrieval_scores(similarity.T, relevance.T, "t2a_")}
