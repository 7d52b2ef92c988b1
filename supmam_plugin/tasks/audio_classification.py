"""Task ``supmam_audio_classification``: fine-tuning and scoring on labelled clips."""

from dataclasses import dataclass

from fairseq.tasks import register_task
from omegaconf import OmegaConf, open_dict

from ..core.manifest import ManifestError
from ..criterions.classification_loss import SupmamClassificationCriterion, check_best_checkpoint_metric
from ..models.linked_settings import task_clip_length_wins
from .audio_clip_task import AudioClipTask, AudioClipTaskConfig


@dataclass
class SupmamAudioClassificationConfig(AudioClipTaskConfig):
    pass


def check_training_metric(cfg: SupmamAudioClassificationConfig) -> None:
    """Refuse, before training starts, a ``checkpoint.best_checkpoint_metric`` that
    ``supmam_classification`` will not log (accuracy on multi-label data, mAP on single-label
    data): fairseq would train a whole epoch and then stop in validate with a bare KeyError. The
    task is handed only ``cfg.task``, but under fairseq-train and fairseq-hydra-train it is a
    node of the whole config, whose root holds the checkpoint and criterion settings."""
    if not OmegaConf.is_config(cfg):
        return  # a task config built on its own: no run settings to compare with
    root = cfg._get_root()
    metric = OmegaConf.select(root, "checkpoint.best_checkpoint_metric")
    if (metric is None or OmegaConf.select(root, "criterion._name") != "supmam_classification"
            or OmegaConf.select(root, "dataset.disable_validation")):
        return
    check_best_checkpoint_metric(metric, cfg.multi_label, OmegaConf.select(root, "criterion.report_map", default=True))


@register_task("supmam_audio_classification", dataclass=SupmamAudioClassificationConfig)
class SupmamAudioClassificationTask(AudioClipTask):
    """Single-label (ESC-50, Speech Commands) or multi-label (AudioSet) clip classification."""

    @classmethod
    def setup_task(cls, cfg: SupmamAudioClassificationConfig, **kwargs):
        if not cfg.labels:
            raise ManifestError("supmam_audio_classification needs labels: set task.labels (e.g. 'label')")
        if not kwargs.get("from_checkpoint"):  # a checkpoint loaded to be scored (fairseq-validate) is not trained
            check_training_metric(cfg)
        return super().setup_task(cfg, **kwargs)

    def build_model(self, cfg, from_checkpoint=False):
        """fairseq's ``models.build_model`` does not hand ``from_checkpoint`` on to the model, so
        say it here: a checkpoint being loaded (fairseq-validate, ``load_model_ensemble``) holds
        the whole fine-tuned model, and ``model.pretrained`` (which may have moved since) is not
        read again. Its clip length is the task's ``target_frames``, as it always was (before
        ``model.input_frames`` followed it, the model took it from the task when built)."""
        if from_checkpoint:
            task_clip_length_wins(cfg, self)
        if from_checkpoint and getattr(cfg, "pretrained", ""):
            if OmegaConf.is_config(cfg):
                with open_dict(cfg):
                    cfg.pretrained = ""
            else:
                cfg.pretrained = ""
        return super().build_model(cfg, from_checkpoint)

    def reduce_metrics(self, logging_outputs, criterion):
        super().reduce_metrics(logging_outputs, criterion)
        if isinstance(criterion, SupmamClassificationCriterion):
            criterion.reduce_class_metrics(logging_outputs)
