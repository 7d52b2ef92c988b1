"""Task ``supmam_pretraining``: clips for masked audio modelling, labels optional; with a teacher
target, each batch also carries what the model's teacher needs (its audio or its cached maps)."""

import logging
from dataclasses import dataclass, field
from typing import Optional

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


@register_task("supmam_pretraining", dataclass=SupmamPretrainingConfig)
class SupmamPretrainingTask(AudioClipTask):
    """Loads clips (and labels if ``task.labels`` is set) for the ``supmam`` model. The model's
    teacher (``model.target=teacher``) says what it hears: datasets loaded after
    :meth:`build_model` carry it (:class:`TeacherInputDataset`)."""

    cfg: SupmamPretrainingConfig
    teacher = None  # the model's teacher, once build_model has run

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
