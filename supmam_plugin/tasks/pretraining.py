"""Task ``supmam_pretraining``: clips for masked audio modelling, labels optional."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from fairseq.tasks import register_task

from .audio_clip_task import AudioClipTask, AudioClipTaskConfig


@dataclass
class SupmamPretrainingConfig(AudioClipTaskConfig):
    labels: Optional[str] = field(
        default=None,
        metadata={"help": "extension of label files for the supervised branch (SupMAM); null: none"},
    )
    teacher_sample_rate: int = field(
        default=0,
        metadata={"help": "also load each clip at this rate for the CLAP teacher (48000 for "
                  "LAION-CLAP; read from the file, not up-sampled); 0: no teacher audio"},
    )
    teacher_seconds: float = field(
        default=10.0, metadata={"help": "teacher input length in seconds (LAION-CLAP: 10 s)"}
    )


@register_task("supmam_pretraining", dataclass=SupmamPretrainingConfig)
class SupmamPretrainingTask(AudioClipTask):
    """Loads clips (and labels if ``task.labels`` is set) for the ``supmam`` model."""

    cfg: SupmamPretrainingConfig

    def teacher_sample_rate(self) -> int | None:
        return self.cfg.teacher_sample_rate or None
