"""Task ``supmam_pretraining``: clips for masked audio modelling, labels optional; with a teacher
target, each batch also carries what the model's teacher needs (its audio or its cached maps)."""

import copy
import logging
import time
from dataclasses import dataclass, field
from typing import Optional

import torch
from fairseq.logging import metrics
from fairseq.tasks import register_task

from ..data.teacher_cache import check_teacher, open_for_reading
from ..data.teacher_input_dataset import TeacherInputDataset
from .audio_clip_task import AudioClipTask, AudioClipTaskConfig

logger = logging.getLogger(__name__)


@dataclass
class SupmamPretrainingConfig(AudioClipTaskConfig):
    labels: Optional[str] = field(
        default=None,
        metadata={"help": "extension of label files for the supervised branch (SupMAM); null: none"},
    )
    allow_unlabeled: bool = field(
        default=False,
        metadata={"help": "semi-supervised SupMAM: an EMPTY line of the label file marks an unlabelled "
                  "clip, which trains the reconstruction / teacher target only; the classification "
                  "loss and cls_accuracy use the labelled clips only. false: every clip needs a label"},
    )
    teacher_cache: Optional[str] = field(
        default=None,
        metadata={"help": "folder of the model's teacher's precomputed maps ({split}.teacher.npy, made by "
                  "supmam-precompute-teacher); then no teacher audio is loaded or run, and clips are "
                  "cropped from their start (where the maps were computed)"},
    )
    probe_data: Optional[str] = field(
        default=None,
        metadata={"help": "a labelled manifest folder (train and valid splits, dict.{probe_labels}.txt): at each "
                  "validation the current encoder embeds its clips, a logistic regression is fit on train with C "
                  "chosen on valid (as supmam-linear-probe), and its valid score is logged as probe_accuracy (or "
                  "probe_map with probe_multi_label), which checkpoint.best_checkpoint_metric may pick; null: off"},
    )
    probe_labels: str = field(default="label", metadata={"help": "label extension of task.probe_data"})
    probe_multi_label: bool = field(
        default=False, metadata={"help": "probe_data is multi-label (AudioSet-style): one-vs-rest, scored by mAP"})
    probe_max_clips: int = field(
        default=1000, metadata={"help": "at most this many clips of each probe split, evenly spaced over its "
                                "manifest (bounds the probe's cost per validation); 0: all"})
    probe_batch_size: int = field(default=16, metadata={"help": "clips embedded at a time by the probe"})


@register_task("supmam_pretraining", dataclass=SupmamPretrainingConfig)
class SupmamPretrainingTask(AudioClipTask):
    """Loads clips (and labels if ``task.labels`` is set) for the ``supmam`` model. The model's
    teacher (``model.target=teacher``) says what it hears: datasets loaded after
    :meth:`build_model` carry it (:class:`TeacherInputDataset`)."""

    cfg: SupmamPretrainingConfig
    teacher = None  # the model's teacher, once build_model has run
    probe_splits = None  # task.probe_data's train and valid splits, read when the task is set up
    probe_score = None  # the linear probe of the current validation: (metric name, score), logged with it
    validation_loaded = False  # whether fairseq loaded a validation split (it does not with validation off)

    def __init__(self, cfg: SupmamPretrainingConfig, classes):
        super().__init__(cfg, classes)
        if cfg.probe_data:
            self.probe_splits = self.read_probe_splits()

    def read_probe_splits(self) -> dict:
        """task.probe_data's train and valid splits (at most probe_max_clips each), checked now, not at
        the first validation thousands of updates later: the folder, the class list, every label line
        (errors name the file, the line and the fix), and one label per clip unless probe_multi_label."""
        from ..evaluation.labelled_splits import read_labelled_splits

        from ..core.manifest import ManifestError

        try:
            splits = read_labelled_splits(self.cfg.probe_data, ("train", "valid"), self.cfg.probe_labels)
            splits = {name: split.spread(self.cfg.probe_max_clips) for name, split in splits.items()}
            for split in splits.values():
                split.targets(self.cfg.probe_multi_label)  # a clip with several labels needs probe_multi_label
        except (OSError, ValueError) as e:
            raise ManifestError(f"task.probe_data={self.cfg.probe_data} (checked before training): {e}"
                                + ("" if self.cfg.probe_multi_label else
                                   " (a multi-label probe folder needs task.probe_multi_label=true)")) from e
        logger.info(f"probe data {self.cfg.probe_data}: " + ", ".join(
            f"{name} {len(split.manifest)} clips" for name, split in splits.items()))
        return splits

    @property
    def allow_unlabeled(self) -> bool:
        return self.cfg.allow_unlabeled

    def build_model(self, cfg, from_checkpoint=False):
        model = super().build_model(cfg, from_checkpoint)
        self.teacher = getattr(model, "teacher", None)
        if self.teacher is not None:
            hears = f"{self.teacher.num_samples / self.teacher.sample_rate:.2f} s at {self.teacher.sample_rate} Hz"
            logger.info(f"teacher {self.teacher.name} ({self.teacher.checkpoint}): "
                        + (f"cached maps in {self.cfg.teacher_cache}" if self.cfg.teacher_cache else f"hears {hears}"))
            if self.cfg.teacher_cache:
                check_teacher(self.cfg.teacher_cache, self.teacher.identity())
        return model

    def load_dataset(self, split: str, combine: bool = False, epoch: int = 1, **kwargs):
        self.validation_loaded |= not combine  # fairseq loads its training split with combine=True
        dataset = super().load_dataset(split, combine, epoch, **kwargs)
        if self.teacher is None:
            return dataset
        if self.cfg.teacher_cache:
            maps, meta = open_for_reading(self.cfg.teacher_cache, split, dataset.manifest)
            logger.info(f"{split}: teacher maps from {self.cfg.teacher_cache} ({meta.get('teacher')}, "
                        f"{meta.get('variant')}, {meta.get('checkpoint')})")
            if dataset.random_crop:
                logger.info(f"{split}: the cached maps are of each clip's start: no random crop")
                dataset.random_crop = False
            wrapped = TeacherInputDataset(dataset, maps=maps)
        else:
            wrapped = TeacherInputDataset(dataset, self.teacher.sample_rate, self.teacher.num_samples)
        self.datasets[split] = wrapped
        return wrapped

    def begin_epoch(self, epoch, model):
        super().begin_epoch(epoch, model)
        if self.cfg.probe_data and not self.validation_loaded and epoch == 1:
            logger.warning(f"task.probe_data={self.cfg.probe_data} is set but validation is off: the probe only runs "
                           "at a validation; set dataset.disable_validation=false and dataset.validate_interval_updates=N "
                           "(and dataset.valid_subset) to probe every N updates")

    def begin_valid_epoch(self, epoch, model):
        """With ``task.probe_data``: probe a copy of the current encoder (the training model is left as it
        is) before the validation batches run; ``reduce_metrics`` logs the score with them. With several
        workers (fairseq calls this on each) only rank 0 probes, the same encoder on the same clips, and
        the others take its score, so N GPUs do not fit the same probe N times."""
        super().begin_valid_epoch(epoch, model)
        if self.cfg.probe_data:
            from fairseq.distributed import utils as distributed_utils

            score = self.probe_encoder(model) if distributed_utils.get_global_rank() == 0 else None
            if distributed_utils.get_global_world_size() > 1:
                score = distributed_utils.broadcast_object(score, src_rank=0, group=distributed_utils.get_global_group())
            self.probe_score = score

    def probe_encoder(self, model) -> tuple[str, float]:
        from ..evaluation.linear_probe import probe_encoder
        from ..inference.encoder import AudioEncoder

        start = time.time()
        device = next(model.parameters()).device
        encoder = AudioEncoder(copy.deepcopy(model.encoder), device=device, sample_rate=self.cfg.sample_rate,
                               source=f"the encoder at update {getattr(model, 'num_updates', 0)}")
        with torch.no_grad():
            row = probe_encoder(encoder, self.probe_splits, "probe", multi_label=self.cfg.probe_multi_label,
                                batch_size=self.cfg.probe_batch_size)
        name = "probe_map" if self.cfg.probe_multi_label else "probe_accuracy"
        logger.info(f"{name} {row['valid']:.2f} on {self.cfg.probe_data} valid (C {row['C']:g}, clips "
                    f"{row['clips']}, {time.time() - start:.1f} s)")
        return name, row["valid"]

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        self.probe_score = None  # a validation's probe belongs to that validation's metrics only
        return super().train_step(sample, model, criterion, optimizer, update_num, ignore_grad)

    def reduce_metrics(self, logging_outputs, criterion):
        super().reduce_metrics(logging_outputs, criterion)
        if self.probe_score is not None:
            name, score = self.probe_score
            metrics.log_scalar(name, score, round=2)
