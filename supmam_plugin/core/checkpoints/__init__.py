"""Reading checkpoints, in one package: this plugin's fairseq ``.pt`` files and AudioMAE's ``.pth`` files.

* :mod:`.read`: opening a file safely (the only ``torch.load``), fairseq's layout, strict loading;
* :mod:`.encoder`: the encoder of any file we read, and its positions for another input length;
* :mod:`.audiomae`: AudioMAE's key layout, both directions;
* :mod:`.positions`: recognising a stored position table's layout;
* :mod:`.legacy`: files and configs of older versions of this plugin.
"""
from .audiomae import (
    audiomae_head, audiomae_state_dict, encoder_from_audiomae_state, encoder_to_audiomae_state,
    supmam_from_audiomae_state,
)
from .encoder import ENCODER_FIELDS, EncoderCheckpoint, build_encoder, positions_for_frames, read_encoder
from .legacy import (
    LEGACY_PRETRAINING, TEACHER_ALIASES, legacy_pretraining_reason, upgrade_legacy_encoder, upgrade_teacher_fields,
)
from .positions import recognise_positions
from .read import (
    TRUST_VARIABLE, CheckpointError, apply_architecture, clip_frames, fairseq_configs, is_fairseq_checkpoint,
    linked_fields, load_strict, read_checkpoint,
)

__all__ = [
    "CheckpointError", "EncoderCheckpoint", "ENCODER_FIELDS", "LEGACY_PRETRAINING", "TEACHER_ALIASES", "TRUST_VARIABLE",
    "read_checkpoint", "build_encoder", "is_fairseq_checkpoint", "fairseq_configs", "read_encoder", "load_strict", "apply_architecture",
    "upgrade_legacy_encoder", "legacy_pretraining_reason", "positions_for_frames", "audiomae_state_dict",
    "encoder_from_audiomae_state", "supmam_from_audiomae_state", "audiomae_head", "encoder_to_audiomae_state",
    "recognise_positions", "upgrade_teacher_fields", "clip_frames", "linked_fields",
]
