"""Audio-text retrieval over the WHOLE validation subset in fairseq's logging: each batch's
embeddings are collected by a custom meter and scored once (core.retrieval)."""
from __future__ import annotations

import numpy as np
from fairseq.logging import meters
from fairseq.logging.meters import Meter

from ..core.retrieval import audio_text_retrieval
from .logged_batch import LoggedBatch


class BatchEmbeddings(LoggedBatch):
    """Audio embeddings (B, E), each clip's captions and the embedding of each of those captions
    (in the order of the captions, flattened) of one batch."""

    fields = ("audio", "captions", "text")


class RetrievalMeter(Meter):
    """Collects BatchEmbeddings; ``scores()`` are the retrieval scores of all of them (computed once
    per new batch); ``smoothed_value`` is a2t_R10."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.audio, self.captions, self.text_by_string = [], [], {}
        self._scores = None

    def update(self, batch: BatchEmbeddings):
        self.audio.append(np.asarray(batch.audio, dtype=np.float32))
        self.captions += [tuple(clip) for clip in batch.captions]
        strings = [text for clip in batch.captions for text in clip]
        self.text_by_string.update(zip(strings, np.asarray(batch.text, dtype=np.float32)))
        self._scores = None

    def state_dict(self):
        return {}  # embeddings are not checkpointed

    def load_state_dict(self, state_dict):
        self.reset()

    def scores(self) -> dict[str, float]:
        if self._scores is None:
            self._scores = audio_text_retrieval(np.concatenate(self.audio), self.text_by_string, self.captions)
        return self._scores

    @property
    def smoothed_value(self) -> float:
        return round(self.scores()["a2t_R10"], 3) if self.audio else float("nan")


meters.RetrievalMeter = RetrievalMeter  # fairseq restores checkpointed meters by name from its module
