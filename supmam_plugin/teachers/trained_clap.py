"""Teacher ``clap``: the audio tower of a CLAP trained with this plugin (``recipes/clap``: model
``clap``, from audio-caption pairs), as the SupMAM-CLAP target.

With the ViT tower (recipe ``vit``) it is read and run exactly as ``checkpoint_encoder`` runs any
encoder of this plugin: one block's tokens (``model.teacher_layer``, default the last), on the
student's patch grid, normalised per patch. With LAION-CLAP's HTS-AT tower (recipe ``htsat``) it is
run exactly as the ``laion_clap`` teacher runs a release (its last-stage token map,
``model.clap_feature``), from the checkpoint's audio side in the release layout. What this name
adds is the check that the checkpoint IS a CLAP: a classifier or a MAE given by mistake would
train the student on another target.
"""
from __future__ import annotations

from ..core.checkpoints import read_checkpoint
from .checkpoint_encoder import CheckpointEncoderTeacher
from .laion_clap import ClapTeacher, is_htsat_clap, release_state_of_trained_clap
from .teacher import register_teacher


@register_teacher("clap")
class TrainedClapTeacher(CheckpointEncoderTeacher):
    checkpoint_help = "a checkpoint of a CLAP trained with this plugin (fairseq-hydra-train --config-dir recipes/clap)"
    kinds = ("clap",)

    @classmethod
    def from_config(cls, cfg, grid, student_seconds: float | None = None, cached: bool = False):
        """The ViT-tower teacher, or :class:`HtsatClapTeacher` for a CLAP with the HTS-AT tower (its
        HTS-AT built only if asked when ``cached``)."""
        state = read_checkpoint(cfg.teacher_checkpoint)
        if is_htsat_clap(state):
            return HtsatClapTeacher(cfg.teacher_checkpoint, state, cfg.clap_feature, grid, cfg.teacher_interpolation,
                                    student_seconds, build_now=not cached)
        return cls(cfg.teacher_checkpoint, grid, cfg.teacher_layer, cfg.teacher_interpolation, student_seconds, state)


class HtsatClapTeacher(ClapTeacher):
    """``model.teacher=clap`` on a CLAP trained here with the HTS-AT tower: the ``laion_clap``
    teacher over the checkpoint's audio side (what ``supmam-export-clap`` would write)."""

    name = "clap"
    checkpoint_help = TrainedClapTeacher.checkpoint_help

    def __init__(self, checkpoint: str, state, feature: str, grid, interpolation: str = "bilinear",
                 student_seconds: float | None = None, build_now: bool = True):
        release, htsat_model = release_state_of_trained_clap(checkpoint, state)
        super().__init__(checkpoint, htsat_model, feature, grid, interpolation, student_seconds,
                         state=release["state_dict"], build_now=build_now)

    def identity(self) -> dict:
        from ..core.file_hash import file_sha256

        return {"teacher": self.name, "variant": self.model_name, "checkpoint_sha256": file_sha256(self.checkpoint)}
