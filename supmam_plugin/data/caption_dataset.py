"""Captions beside each clip, as the tokenizer's pieces, for CLAP training."""
from __future__ import annotations

import numpy as np
import torch
from fairseq.data import BaseWrapperDataset

from ..core.captions import PAD_ID, CaptionTokenizer
from ..core.keyword_captions import keyword_captions
from .audio_clip_dataset import AudioClipDataset


class CaptionDataset(BaseWrapperDataset):
    """An :class:`AudioClipDataset` whose batches also carry captions:

        net_input.text_tokens  (B, N) piece ids of one caption per clip, PAD_ID-padded (training: one
                               of the clip's captions drawn by seed, epoch and clip; else the first)
        captions               B tuples of the clips' caption strings (whole-split retrieval)
        caption_tokens         (M, N) every caption of the batch, in the order of ``captions``
        zero_shot_target       (B, C) multi-hot classes, given ``zero_shot_labels`` (zero-shot scoring)

    captions: one tuple of strings per manifest line (``core.captions.read_captions``);
    zero_shot_labels: class indices per manifest line (``core.manifest.read_labels``);
    keywords: class names per manifest line: a clip with some draws, in ``keyword_share`` of its
    draws, a caption made from them (``core.keyword_captions``, template and order drawn by seed,
    epoch and clip) instead of one of its captions (training only)."""

    def __init__(self, dataset: AudioClipDataset, captions: list[tuple[str, ...]], tokenizer: CaptionTokenizer,
                 max_tokens: int, draw_caption: bool, seed: int = 1, zero_shot_labels: list | None = None,
                 num_classes: int = 0, keywords: list[list[str]] | None = None, keyword_share: float = 0.5):
        super().__init__(dataset)
        if len(captions) != len(dataset):
            raise ValueError(f"{len(captions)} caption lines for {len(dataset)} clips")
        self.captions = captions
        if keywords is not None and len(keywords) != len(dataset):
            raise ValueError(f"{len(keywords)} label lines for {len(dataset)} clips")
        self.tokens = [[tokenizer.encode(text, max_tokens) for text in clip] for clip in captions]
        self.tokenizer, self.max_tokens = tokenizer, max_tokens
        self.keywords, self.keyword_share = keywords, keyword_share
        self.draw_caption = draw_caption
        self.zero_shot_labels, self.num_classes = zero_shot_labels, num_classes
        self.seed = seed
        self.epoch = 1

    def set_epoch(self, epoch: int):
        super().set_epoch(epoch)
        self.epoch = epoch

    @property
    def manifest(self):
        return self.dataset.manifest

    def __getitem__(self, index: int) -> dict:
        item = self.dataset[index]
        item["text_tokens"] = torch.tensor(self.caption_tokens(index))
        item["caption_index"] = index
        return item

    def caption_tokens(self, index: int) -> list[int]:
        """The pieces of the caption clip ``index`` is paired with this epoch (the first one outside training)."""
        choices = self.tokens[index]
        if not self.draw_caption:
            return choices[0]
        rng = np.random.default_rng((self.seed, self.epoch, index))
        if self.keywords is not None and self.keywords[index] and rng.random() < self.keyword_share:
            text = keyword_captions(self.keywords[index], 1, rng)[0]
            return self.tokenizer.encode(text, self.max_tokens)
        return choices[int(rng.integers(len(choices)))]

    @staticmethod
    def pad_tokens(rows: list) -> torch.Tensor:
        out = torch.full((len(rows), max(len(r) for r in rows)), PAD_ID, dtype=torch.long)
        for i, row in enumerate(rows):
            out[i, :len(row)] = torch.as_tensor(row)
        return out

    def collater(self, samples: list[dict]) -> dict:
        batch = self.dataset.collater(samples)
        samples = AudioClipDataset.readable(samples)
        if not batch:
            return batch
        batch["net_input"]["text_tokens"] = self.pad_tokens([s["text_tokens"] for s in samples])
        batch["captions"] = [self.captions[s["caption_index"]] for s in samples]
        batch["caption_tokens"] = self.pad_tokens([t for s in samples for t in self.tokens[s["caption_index"]]])
        if self.zero_shot_labels is not None:
            target = torch.zeros(len(samples), self.num_classes)
            for row, s in enumerate(samples):
                target[row, self.zero_shot_labels[s["caption_index"]]] = 1.0
            batch["zero_shot_target"] = target
        return batch
