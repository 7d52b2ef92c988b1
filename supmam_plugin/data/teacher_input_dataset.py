"""What a teacher needs beside each clip: its own audio, or its cached native map."""
from __future__ import annotations

import numpy as np
import torch
from fairseq.data import BaseWrapperDataset

from ..core.audio import read_mono, resample
from .audio_clip_dataset import AudioClipDataset
from .teacher_cache import check_finite


class TeacherInputDataset(BaseWrapperDataset):
    """An :class:`AudioClipDataset` whose batches also carry the teacher's input, either

    - the SAME span of each file as the student's crop, at the teacher's ``sample_rate`` and
      ``num_samples`` (read from the file: LAION-CLAP wants 48 kHz read from it, not up-sampled
      from 16 kHz; when the teacher hears the student's rate and no more than its crop, the crop
      itself):
        net_input.teacher_source         (B, num_samples) float64, zero-padded
        net_input.teacher_source_lengths (B,) valid samples
    - or, given ``maps`` (a cache's (N, C, rows, steps) float16 memmap, one row per manifest line),
      each clip's row:
        net_input.teacher_token_map      (B, C, rows, steps) float16

    Only numbers describe the teacher here (no model): the dataset is copied into loader workers.
    """

    def __init__(self, dataset: AudioClipDataset, sample_rate: int = 0, num_samples: int = 0,
                 maps: np.ndarray | None = None):
        super().__init__(dataset)
        if maps is None and not (sample_rate > 0 and num_samples > 0):
            raise ValueError("TeacherInputDataset needs the teacher's sample_rate and num_samples, or cached maps")
        if maps is not None and len(maps) != len(dataset):
            raise ValueError(f"{len(maps)} cached teacher maps for {len(dataset)} clips")
        self.sample_rate = sample_rate
        self.num_samples = num_samples
        self.maps = maps
        self.reuse_crop = (maps is None and sample_rate == dataset.sample_rate
                           and num_samples <= dataset.clip_samples)

    @property
    def manifest(self):
        return self.dataset.manifest

    def __getitem__(self, index: int) -> dict:
        item = self.dataset[index]
        if "unreadable" in item:  # left out of the batch by the collater
            return item
        if self.maps is not None:
            row = np.array(self.maps[index])
            check_finite(row, f"{self.manifest.where(index)} (cached teacher map)")
            item["teacher_token_map"] = torch.from_numpy(row)
        elif self.reuse_crop:
            item["teacher_source"] = item["source"][: self.num_samples]
        else:
            manifest = self.manifest
            native, native_rate = read_mono(manifest.audio_path(index), item["start_seconds"],
                                            self.num_samples / self.sample_rate, where=manifest.where(index))
            teacher = resample(native, native_rate, self.sample_rate)[: self.num_samples]
            item["teacher_source"] = torch.from_numpy(np.ascontiguousarray(teacher))
        return item

    def collater(self, samples: list[dict]) -> dict:
        batch = self.dataset.collater(samples)
        samples = AudioClipDataset.readable(samples)
        if not batch:
            return batch
        net_input = batch["net_input"]
        if self.maps is not None:
            net_input["teacher_token_map"] = torch.stack([s["teacher_token_map"] for s in samples])
        else:
            net_input["teacher_source"] = self.dataset.pad([s["teacher_source"] for s in samples], self.num_samples)
            net_input["teacher_source_lengths"] = torch.tensor([len(s["teacher_source"]) for s in samples])
        return batch
