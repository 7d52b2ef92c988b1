"""Teacher ``clap``: the audio tower of a CLAP trained with this plugin (``recipes/clap``: model
``clap``, from audio-caption pairs), as the SupMAM-CLAP target.

Its audio tower is the plugin's ViT, so it is read and run exactly as ``checkpoint_encoder`` runs
any encoder of this plugin: one block's tokens (``model.teacher_layer``, default the last), on the
student's patch grid, normalised per patch. What this name adds is the check that the checkpoint
IS a CLAP: a classifier or a MAE given by mistake would train the student on another target.
"""
from __future__ import annotations

from .checkpoint_encoder import CheckpointEncoderTeacher
from .teacher import register_teacher


@register_teacher("clap")
class TrainedClapTeacher(CheckpointEncoderTeacher):
    checkpoint_help = "a checkpoint of a CLAP trained with this plugin (fairseq-hydra-train --config-dir recipes/clap)"
    kinds = ("clap",)
