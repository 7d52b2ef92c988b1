"""Task ``supmam_audio_classification``: fine-tuning and scoring on labelled clips."""

from dataclasses import dataclass

from fairseq.tasks import register_task
from omegaconf import OmegaConf, open_dict

from ..core.manifest import ManifestError
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

    def build_model(self, cfg, from_checkpoint=False):
        """fairseq's ``models.build_model`` does not hand ``from_checkpoint`` on to the model, so
        say it here: a checkpoint being loaded (fairseq-validate, ``load_model_ensemble``) holds
        the whole fine-tuned model, and ``model.pretrained`` (which may have moved since) is not
        read again."""
        if from_checkpoint and getattr(cfg, "pretrained", ""):
            if OmegaConf.is_config(cfg):
                with open_dict(cfg):
                    cfg.pretrained = ""
            else:
                cfg.pretrained = ""
        return super().build_model(cfg, from_checkpoint)
