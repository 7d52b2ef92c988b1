"""Task ``supmam_pretraining``: clips for masked audio modelling, labels optional."""

from dataclasses import dataclass, field
from typing import Optional

import logging

from fairseq.tasks import register_task

from ..data.teacher_cache import open_for_reading

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
    teacher_sample_rate: int = field(
        default=0,
        metadata={"help": "also load each clip at this rate for the CLAP teacher (48000 for "
                  "LAION-CLAP; read from the file, not up-sampled); 0: no teacher audio"},
    )
    teacher_seconds: float = field(
        default=10.0, metadata={"help": "teacher input length in seconds (LAION-CLAP: 10 s)"}
    )
    teacher_cache: Optional[str] = field(
        default=None,
        metadata={"help": "folder of precomputed teacher maps ({split}.teacher.npy, made by "
                  "supmam-precompute-teacher); then no teacher audio is loaded or run"},
    )


@register_task("supmam_pretraining", dataclass=SupmamPretrainingConfig)
class SupmamPretrainingTask(AudioClipTask):
    """Loads clips (and labels if ``task.labels`` is set) for the ``supmam`` model."""

    cfg: SupmamPretrainingConfig

    @property
    def allow_unlabeled(self) -> bool:
        return self.cfg.allow_unlabeled

    def teacher_sample_rate(self) -> int | None:
        if self.cfg.teacher_cache:
            return None  # the cache replaces the teacher's audio
        return self.cfg.teacher_sample_rate or None

    def teacher_maps(self, split: str, manifest):
        if not self.cfg.teacher_cache:
            return None
        maps, meta = open_for_reading(self.cfg.teacher_cache, split, manifest)
        logger.info(f"{split}: teacher targets from {self.cfg.teacher_cache} ({meta.get('clap_model')}, "
                    f"{meta.get('clap_checkpoint')})")
        return maps
