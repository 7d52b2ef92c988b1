"""Task ``supmam_audio_classification``: fine-tuning and scoring on labelled clips."""

from dataclasses import dataclass

from fairseq.tasks import register_task

from ..data.manifest import ManifestError
from .audio_clip_task import AudioClipTask, AudioClipTaskConfig


@dataclass
class SupmamAudioClassificationConfig(AudioClipTaskConfig):
    pass


@register_task("supmam_audio_classification", dataclass=SupmamAudioClassificationConfig)
class SupmamAudioClassificationTask(AudioClipTask):
    """Single-label (ESC-50, Speech Commands) or multi-label (AudioSet) clip classification."""

    @classmethod
    def setup_task(cls, cfg: SupmamAudioClassificationConfig, **kwargs):
        if not cfg.labels:
            raise ManifestError("supmam_audio_classification needs labels: set task.labels (e.g. 'label')")
        return super().setup_task(cfg, **kwargs)
