"""Fixed-length audio clips from a fairseq manifest, with optional labels."""
from __future__ import annotations

import logging
import os

import numpy as np
import torch
from fairseq.data import FairseqDataset, data_utils

from ..core.audio import AudioFileError, open_audio, read_open_mono, resample
from ..core.fbank import FbankSettings, batch_fbank, require_one_frame
from ..core.manifest import Manifest

logger = logging.getLogger(__name__)

# Targets of an unlabelled clip (semi-supervised pretraining, task.allow_unlabeled=true).
UNLABELLED_INDEX = -100  # single-label: cross-entropy's ignore_index
UNLABELLED_ROW_VALUE = -1.0  # multi-label: the whole multi-hot row
# With skip_unreadable, the share of bad clips is judged over at least this many reads, so that
# the first bad file of a run does not stop it.
MIN_READS_FOR_FRACTION = 1000


class TooManyUnreadable(AudioFileError):
    """More unreadable clips than ``max_unreadable_fraction`` allows; the message says how many."""


class UnreadableClips:
    """The skip policy of one data loader process: counts the clips it read and the bad ones,
    appends each bad one to ``list_path`` (tab-separated: manifest line, path, reason; appends are
    atomic across loader processes) and stops the run with :class:`TooManyUnreadable` once more than
    ``max_fraction`` of max(reads, MIN_READS_FOR_FRACTION) is bad. Each loader process judges its
    own share of the clips."""

    def __init__(self, max_fraction: float, list_path: str | None):
        self.max_fraction = max_fraction
        self.list_path = list_path
        self.read = self.bad = 0

    def count_read(self) -> None:
        self.read += 1

    def record(self, where: str, path: str, reason: str) -> None:
        self.bad += 1
        logger.warning(f"skipping unreadable clip ({self.bad} of {self.read} read): {reason}")
        if self.list_path:
            os.makedirs(os.path.dirname(os.path.abspath(self.list_path)), exist_ok=True)
            with open(self.list_path, "a", encoding="utf-8") as f:
                f.write(f"{where}\t{path}\t{' '.join(reason.split())}\n")
        if self.bad > self.max_fraction * max(self.read, MIN_READS_FOR_FRACTION):
            listed = f"; they are listed in {self.list_path}" if self.list_path else ""
            raise TooManyUnreadable(
                f"{self.bad} of the {self.read} clips read are unreadable, more than "
                f"task.max_unreadable_fraction={self.max_fraction:g}{listed}. Fix or remove them "
                "(supmam-validate-manifest DATA SPLIT --workers N lists every problem), or raise the fraction"
            )


class AudioClipDataset(FairseqDataset):
    """One item per manifest line: a crop of ``clip_seconds`` at ``sample_rate`` (random in
    training, from the start otherwise; only the crop is read from the file) and its labels. A
    teacher's input is added by :class:`~supmam_plugin.data.teacher_input_dataset.TeacherInputDataset`,
    which reads the same span (each item says where it starts: ``start_seconds``).

    Batches (``collater``); waveforms and the loader's fbank are float64 so that fairseq's
    ``common.bf16`` / ``fp16`` cast (of float32 tensors only) leaves them at full precision (see
    :func:`~supmam_plugin.core.fbank.model_input_fbank`):
      net_input.source         (B, N) float64, zero-padded waveforms at ``sample_rate``
      net_input.source_lengths (B,)   valid samples per clip
      net_input.clip_ids       (B,)   manifest line index of each clip (keys the masks)
      net_input.fbank          (B, target_frames, 128) float64, only if ``fbank_in_dataloader``
      target                   (B,) class index, or (B, C) multi-hot float (multi-label);
                               an unlabelled clip is -100, or a row of -1 (see ``_target``)

    With ``skip_unreadable`` (an :class:`UnreadableClips`), a clip that cannot be read (corrupt, NaN
    or infinite samples, too short) is left out of its batch instead of stopping the run: its item is
    ``{"id", "unreadable": reason}``, the collater drops it and says how many it dropped
    (``batch["unreadable"]``); a batch of only such clips is empty (fairseq skips it).

    With ``sample_weights`` (one per clip, e.g. ``class_balanced_weights``), an epoch is
    ``epoch_length`` clips (0: the manifest's size) drawn WITH replacement with probability
    proportional to the weights, anew for each epoch (seeded by ``seed`` and the epoch, so a
    rerun draws the same clips); ``len()`` stays the manifest's size.
    """

    def __init__(
        self,
        manifest: Manifest,
        labels: list[list[int]] | None = None,
        num_classes: int = 0,
        multi_label: bool = False,
        sample_rate: int = 16000,
        target_frames: int = 1024,
        random_crop: bool = False,
        fbank_in_dataloader: bool = False,
        shuffle: bool = False,
        seed: int = 1,
        sample_weights: np.ndarray | None = None,
        epoch_length: int = 0,
        skip_unreadable: UnreadableClips | None = None,
    ):
        super().__init__()
        self.manifest = manifest
        self.labels = labels
        self.num_classes = num_classes
        self.multi_label = multi_label
        self.sample_rate = sample_rate
        self.fbank_settings = FbankSettings(sample_rate=sample_rate)
        self.target_frames = target_frames
        self.clip_samples = self.fbank_settings.num_samples_for(target_frames)
        self.clip_seconds = self.clip_samples / sample_rate
        self.random_crop = random_crop
        self.fbank_in_dataloader = fbank_in_dataloader
        self.skip_unreadable = skip_unreadable
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 1
        self.sample_probs = None
        if sample_weights is not None:
            self.sample_probs = self._probabilities(sample_weights, len(manifest))
        if epoch_length < 0:
            raise ValueError(f"epoch_length must be >= 0 (0: the manifest's size), got {epoch_length}")
        self.epoch_length = epoch_length
        # Manifest lengths are at each file's own rate; crops never exceed clip_samples.
        self._sizes = np.minimum(
            np.array([e.num_samples for e in manifest.entries], dtype=np.int64), self.clip_samples
        )

    @staticmethod
    def _probabilities(weights: np.ndarray, num_clips: int) -> np.ndarray:
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != (num_clips,):
            raise ValueError(f"sample_weights has shape {weights.shape}, expected one weight per clip ({num_clips},)")
        if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
            raise ValueError("sample_weights must be finite, non-negative and not all zero")
        return weights / weights.sum()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def can_reuse_epoch_itr_across_epochs(self) -> bool:
        return False  # crops change every epoch

    def _crop_start_seconds(self, index: int, duration: float) -> float:
        spare = duration - self.clip_seconds
        if not self.random_crop or spare <= 0:
            return 0.0
        with data_utils.numpy_seed(self.seed, self.epoch, index):
            return float(np.random.uniform(0.0, spare))

    def __getitem__(self, index: int) -> dict:
        if self.skip_unreadable is None:
            return self._read_item(index)
        self.skip_unreadable.count_read()
        try:
            return self._read_item(index)
        except (AudioFileError, ValueError) as e:
            self.skip_unreadable.record(self.manifest.where(index), self.manifest.audio_path(index), str(e))
            return {"id": index, "unreadable": str(e)}

    def _read_item(self, index: int) -> dict:
        path, where = self.manifest.audio_path(index), self.manifest.where(index)
        with open_audio(path, where) as audio:  # opened once: a file, or its bytes in a packed shard
            start = self._crop_start_seconds(index, audio.frames / audio.samplerate)
            native, native_rate = read_open_mono(audio, start, self.clip_seconds, f"{where}: {path}")  # the crop only
        source = resample(native, native_rate, self.sample_rate)[: self.clip_samples]
        require_one_frame(len(source), self.fbank_settings, f"{where}: {path}", "remove the line")
        item = {"id": index, "source": torch.from_numpy(source), "start_seconds": start}
        if self.labels is not None:
            item["label"] = self.labels[index]
        return item

    def __len__(self) -> int:
        return len(self.manifest)

    def num_tokens(self, index: int) -> int:
        return int(self._sizes[index])

    def size(self, index: int) -> int:
        return int(self._sizes[index])

    @property
    def sizes(self) -> np.ndarray:
        return self._sizes

    def ordered_indices(self) -> np.ndarray:
        if self.sample_probs is not None:
            draws = self.epoch_length or len(self)
            with data_utils.numpy_seed(self.seed, self.epoch):
                return np.random.choice(len(self), size=draws, replace=True, p=self.sample_probs)
        if self.shuffle:
            with data_utils.numpy_seed(self.seed, self.epoch):
                return np.random.permutation(len(self))
        return np.arange(len(self))

    def batch_by_size(self, indices, max_tokens=None, max_sentences=None, required_batch_size_multiple=1):
        """fairseq's batching, with ``required_batch_size_multiple`` forced to 1: its default (8)
        silently DROPS the tail batch when it exceeds the batch size (e.g. fairseq-validate
        --batch-size 3 on 7 clips scores 6), and every clip must count."""
        return super().batch_by_size(indices, max_tokens, max_sentences, required_batch_size_multiple=1)

    def _target(self, samples: list[dict]) -> torch.Tensor:
        """(B,) long class indices, or (B, C) float multi-hot rows (multi-label).

        An unlabelled clip (empty label list, semi-supervised pretraining) is
        ``UNLABELLED_INDEX`` (-100, cross-entropy's ignore index) in the single-label target
        and a row of ``UNLABELLED_ROW_VALUE`` (-1) in the multi-label one; the ``supmam``
        criterion leaves such clips out of the classification loss and accuracy."""
        if self.multi_label:
            target = torch.zeros(len(samples), self.num_classes)
            for row, s in enumerate(samples):
                if s["label"]:
                    target[row, s["label"]] = 1.0
                else:
                    target[row] = UNLABELLED_ROW_VALUE
            return target
        return torch.tensor([s["label"][0] if s["label"] else UNLABELLED_INDEX for s in samples], dtype=torch.long)

    @staticmethod
    def pad(waves: list[torch.Tensor], length: int) -> torch.Tensor:
        """(B, length) float64 (kept out of fairseq's half-precision cast), zero-padded."""
        batch = torch.zeros(len(waves), length, dtype=torch.float64)
        for row, w in enumerate(waves):
            batch[row, : len(w)] = w
        return batch

    @staticmethod
    def readable(samples: list[dict]) -> list[dict]:
        """The samples a batch holds: those read (an unreadable clip is ``{"id", "unreadable"}``)."""
        return [s for s in samples if s is not None and "unreadable" not in s]

    def collater(self, samples: list[dict]) -> dict:
        unreadable = sum(1 for s in samples if s is not None and "unreadable" in s)
        samples = self.readable(samples)
        if not samples:
            return {}
        lengths = torch.tensor([len(s["source"]) for s in samples], dtype=torch.long)
        ids = torch.tensor([s["id"] for s in samples], dtype=torch.long)
        net_input = {
            "source": self.pad([s["source"] for s in samples], int(lengths.max())),
            "source_lengths": lengths,
            "clip_ids": ids,
        }
        if self.fbank_in_dataloader:
            net_input["fbank"] = batch_fbank(
                net_input["source"], lengths, self.target_frames, self.fbank_settings
            ).double()
        batch = {
            "id": ids,
            "nsentences": len(samples),
            "ntokens": int(lengths.sum()),
            "net_input": net_input,
        }
        if self.labels is not None:
            batch["target"] = self._target(samples)
        if self.skip_unreadable is not None:
            batch["unreadable"] = unreadable
        return batch
