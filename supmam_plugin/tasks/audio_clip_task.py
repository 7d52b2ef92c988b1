"""Shared config and split loading for the two tasks (classification and pretraining)."""

import logging
import os
from dataclasses import dataclass, field
from typing import Optional

from fairseq.dataclass import FairseqDataclass
from fairseq.logging import metrics
from fairseq.tasks import FairseqTask
from omegaconf import II

from ..core.audio import audio_exists, audio_info
from ..core.host_memory import keep_freed_memory
from ..data.audio_clip_dataset import AudioClipDataset, UnreadableClips
from ..data.class_balanced_weights import class_balanced_weights
from ..core.fbank import FbankSettings
from ..core.manifest import ManifestError, read_class_list, read_labels, read_manifest, require_one_label_per_clip
from ..models.linked_settings import SEED, TASK_LINKS, link_help, refuse_conflicts, settle_alone

logger = logging.getLogger(__name__)


@dataclass
class AudioClipTaskConfig(FairseqDataclass):
    data: str = field(
        default="???", metadata={"help": "folder holding {split}.tsv manifests, labels and dict.{labels}.txt"}
    )
    labels: Optional[str] = field(
        default="label",
        metadata={"help": "extension of the label files ({split}.{labels}, dict.{labels}.txt); null: no labels"},
    )
    multi_label: bool = field(
        default=False,
        metadata={"help": "clips carry several classes (AudioSet): multi-hot targets and BCE"},
    )
    sample_rate: int = field(default=16000, metadata={"help": "rate of the student's input (paper: 16 kHz)"})
    target_frames: int = field(
        default=1024, metadata={"help": "fbank frames per clip, 10 ms each (AudioMAE: 1024 = 10.24 s)"}
    )
    random_crop: bool = field(
        default=True,
        metadata={"help": "random crop of long clips in training splits (names containing 'train'); "
                  "other splits are cropped from the start"},
    )
    fbank_in_dataloader: bool = field(
        default=False,
        metadata={"help": "compute fbank in the data loader workers (net_input.fbank) instead of on "
                  "the model's device"},
    )
    check_files: bool = field(
        default=True,
        metadata={"help": "at load time, check every file of a manifest exists (stat only; run "
                  "supmam-validate-manifest for a full check)"},
    )
    seed: int = field(default=II("common.seed"), metadata={"help": link_help(SEED, "seed of crops and shuffling")})
    weighted_sampling: bool = field(
        default=False,
        metadata={"help": "training splits: draw each epoch's clips WITH replacement, weighted so that "
                  "classes are balanced (clip weight = sum over its classes of 1000 / (class count + 0.01), "
                  "AudioMAE's AS-2M fine-tuning sampler); needs labels"},
    )
    skip_unreadable: bool = field(
        default=False,
        metadata={"help": "leave unreadable clips (corrupt, NaN/inf samples, too short) out of their batch instead "
                  "of stopping: counted in the logged metric 'unreadable', listed in task.unreadable_list; "
                  "in validation the metric is then over the readable clips (logged). false: fail fast"},
    )
    max_unreadable_fraction: float = field(
        default=0.01,
        metadata={"help": "with skip_unreadable: stop once more than this share of the clips read (judged over "
                  "at least 1000 reads) is unreadable"},
    )
    unreadable_list: Optional[str] = field(
        default=None,
        metadata={"help": "with skip_unreadable: file the unreadable clips are appended to (manifest line, path, "
                  "reason); the recipes use ${checkpoint.save_dir}/unreadable.tsv"},
    )
    epoch_length: int = field(
        default=0,
        metadata={"help": "with weighted_sampling: clips drawn per epoch (AudioMAE AS-2M: 200000); "
                  "0 = the training split's size"},
    )
    keep_freed_memory: bool = field(
        default=True,
        metadata={"help": "glibc: keep freed host memory (blocks up to 32 MiB) for reuse instead of unmapping and "
                  "re-faulting it every step (30-45 k page faults a ViT-B CPU step -> none; the step about 2% faster, "
                  "peak RSS the same; core/host_memory.py). Set once per process, at task setup"},
    )


class AudioClipTask(FairseqTask):
    """Loads ``{split}.tsv`` (+ labels) from ``cfg.data`` into ``AudioClipDataset``s."""

    cfg: AudioClipTaskConfig

    def __init__(self, cfg: AudioClipTaskConfig, classes: list[str] | None):
        settle_alone(cfg, TASK_LINKS)  # a task config made alone, without common.seed: the default seed
        super().__init__(cfg)
        self.classes = classes

    @classmethod
    def setup_task(cls, cfg: AudioClipTaskConfig, **kwargs):
        if cfg.keep_freed_memory:
            keep_freed_memory()
        if not os.path.isdir(cfg.data):
            raise ManifestError(f"task.data={cfg.data!r} is not a folder; point it at your manifests")
        if cfg.epoch_length < 0:
            raise ValueError(f"task.epoch_length={cfg.epoch_length}: use 0 (the split's size) or a positive count")
        if cfg.epoch_length and not cfg.weighted_sampling:
            raise ValueError("task.epoch_length is only used with task.weighted_sampling=true; set both or neither")
        if cfg.weighted_sampling and not cfg.labels:
            raise ValueError("task.weighted_sampling=true weights clips by their classes: set task.labels")
        classes = None
        if cfg.labels:
            classes = read_class_list(os.path.join(cfg.data, f"dict.{cfg.labels}.txt"))
            logger.info(f"{len(classes)} classes from dict.{cfg.labels}.txt")
        return cls(cfg, classes)

    def build_model(self, cfg, from_checkpoint=False):
        """A model config whose linked settings (``model.input_frames``, ``model.seed``; and this task's
        ``seed``) disagree with their owners (``task.target_frames``, ``common.seed``) is refused here,
        before anything is built. A checkpoint being loaded is not refused: it is built as it was trained."""
        if not from_checkpoint:
            refuse_conflicts(cfg, self)
        return super().build_model(cfg, from_checkpoint)

    @property
    def allow_unlabeled(self) -> bool:
        """Whether an empty label line marks an unlabelled clip: never here (fine-tuning needs
        every label); ``supmam_pretraining`` returns its ``task.allow_unlabeled``."""
        return False

    @property
    def num_classes(self) -> int:
        return len(self.classes) if self.classes else 0

    def load_dataset(self, split: str, combine: bool = False, epoch: int = 1, **kwargs):
        manifest_path = os.path.join(self.cfg.data, f"{split}.tsv")
        manifest = read_manifest(manifest_path, min_samples=FbankSettings().window_size)
        if self.cfg.check_files:
            missing = [i for i in range(len(manifest)) if not audio_exists(manifest.audio_path(i))]
            if missing:
                first = missing[0]
                raise ManifestError(
                    f"{manifest.where(first)}: {manifest.audio_path(first)} not found "
                    f"({len(missing)} of {len(manifest)} files missing); fix the root line "
                    f"{manifest.root!r} or rebuild the manifest"
                )
            audio_info(manifest.audio_path(0), manifest.where(0))  # a readable first file
        is_train = "train" in split
        labels = None
        if self.cfg.labels:
            label_path = os.path.join(self.cfg.data, f"{split}.{self.cfg.labels}")
            labels = read_labels(label_path, self.classes, manifest, allow_unlabeled=self.allow_unlabeled)
            unlabelled = sum(1 for clip_labels in labels if not clip_labels)
            if unlabelled:
                logger.info(f"{split}: {len(labels) - unlabelled} labelled and {unlabelled} unlabelled clips "
                            "(unlabelled clips train the target only)")
                if self.cfg.weighted_sampling and is_train:
                    raise ManifestError(
                        f"{label_path}: {unlabelled} unlabelled clips would never be drawn by "
                        "task.weighted_sampling=true (class-balanced weights); set task.weighted_sampling=false"
                    )
            if not self.cfg.multi_label:
                require_one_label_per_clip(label_path, labels)
        sample_weights = None
        if self.cfg.weighted_sampling and is_train:
            sample_weights = class_balanced_weights(labels, self.num_classes)
            draws = self.cfg.epoch_length or len(manifest)
            logger.info(f"{split}: class-balanced sampling, {draws} clips drawn with replacement per epoch")
        self.datasets[split] = AudioClipDataset(
            manifest,
            labels=labels,
            num_classes=self.num_classes,
            multi_label=self.cfg.multi_label,
            sample_rate=self.cfg.sample_rate,
            target_frames=self.cfg.target_frames,
            random_crop=self.cfg.random_crop and is_train,
            fbank_in_dataloader=self.cfg.fbank_in_dataloader,
            shuffle=is_train,
            seed=self.cfg.seed,
            sample_weights=sample_weights,
            epoch_length=self.cfg.epoch_length if sample_weights is not None else 0,
            skip_unreadable=(UnreadableClips(self.cfg.max_unreadable_fraction, self.cfg.unreadable_list)
                             if self.cfg.skip_unreadable else None),
        )
        logger.info(f"{split}: {len(manifest)} clips from {manifest_path}")
        return self.datasets[split]

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        unreadable = sample.pop("unreadable", 0)
        loss, sample_size, logging_output = super().train_step(sample, model, criterion, optimizer, update_num,
                                                               ignore_grad)
        logging_output["unreadable"] = unreadable
        return loss, sample_size, logging_output

    def valid_step(self, sample, model, criterion):
        unreadable = sample.pop("unreadable", 0)
        if unreadable:
            logger.warning(f"{unreadable} unreadable clip(s) left out of this validation batch (task.skip_unreadable): "
                           "the metric is computed without them")
        loss, sample_size, logging_output = super().valid_step(sample, model, criterion)
        logging_output["unreadable"] = unreadable
        return loss, sample_size, logging_output

    def reduce_metrics(self, logging_outputs, criterion):
        super().reduce_metrics(logging_outputs, criterion)
        if self.cfg.skip_unreadable:
            metrics.log_scalar_sum("unreadable", sum(log.get("unreadable", 0) for log in logging_outputs), round=0)

    @property
    def source_dictionary(self):
        return None

    @property
    def target_dictionary(self):
        return None

    def max_positions(self):
        return None
