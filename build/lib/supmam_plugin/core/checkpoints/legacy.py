"""Checkpoints written by older versions of this plugin, read in today's layout and names.

* Encoders saved before the position tables were (no ``pos_embed``): their table was always the
  "grid" layout, rebuilt at load time; :func:`upgrade_legacy_encoder` inserts it.
* ``supmam`` pretraining models with timm's Swin V1 decoder blocks: their decoder does not fit the
  current model and is refused with :data:`LEGACY_PRETRAINING` (their encoder still loads).
* Model configs from before teachers were chosen by name, or with the encoder teacher's old name
  ``supmam``: :func:`upgrade_teacher_fields`.
"""
from __future__ import annotations

import logging
from typing import Optional

from ..positions import position_table

logger = logging.getLogger(__name__)

LEGACY_PRETRAINING = (
    "{path}: a supmam pretraining checkpoint from before the AudioMAE decoder (plugin commit 458ab0c and "
    "earlier: timm Swin V1 decoder blocks, a LayerNorm after the spectrogram head, no saved position "
    "tables). Its decoder does not fit this version, so pretraining cannot resume from it and "
    "supmam-plot-reconstruction cannot use it. Its ENCODER still loads: fine-tune with "
    "model.pretrained={path}, or take features with supmam_plugin.inference.encoder.load_encoder / "
    "supmam-extract-embeddings. To pretrain further, start a new run (or use the plugin at commit 458ab0c)."
)

# The encoder teacher was registered as 'supmam' (the model's and the criterion's name too).
TEACHER_ALIASES = {"supmam": "checkpoint_encoder"}


def upgrade_legacy_encoder(state_dict: dict, prefix: str, grid: tuple, embed_dim: int) -> bool:
    """Give a legacy encoder state dict (no ``{prefix}pos_embed``: written before the tables were
    saved, when they were always the "grid" layout) its grid table, in place. True if inserted."""
    key = f"{prefix}pos_embed"
    if key in state_dict or f"{prefix}patch_embed.proj.weight" not in state_dict:
        return False
    reference = state_dict[f"{prefix}patch_embed.proj.weight"]
    state_dict[key] = position_table(embed_dim, grid, "grid").unsqueeze(0).to(reference.dtype)
    logger.info(f"legacy checkpoint (no {key}): its encoder gets the 'grid' position table it was trained with")
    return True


def legacy_pretraining_reason(state_dict: dict) -> Optional[str]:
    """Why a ``supmam`` state dict is of the legacy layout (see :data:`LEGACY_PRETRAINING`), or None."""
    if any(k.endswith("relative_position_bias_table") for k in state_dict):
        return "timm Swin V1 decoder blocks (relative_position_bias_table)"
    for key in ("encoder.pos_embed", "decoder.pos_embed"):
        if key not in state_dict:
            return f"no {key}"
    return None


def upgrade_teacher_fields(model_cfg: dict) -> dict:
    """A ``supmam`` model config in today's teacher names: ``target: clap``, ``clap_checkpoint`` and
    ``clap_interpolation`` (before teachers were chosen by name) become ``target: teacher``,
    ``teacher: laion_clap``, ``teacher_checkpoint``, ``teacher_interpolation``; a teacher named by an
    old name (:data:`TEACHER_ALIASES`) gets its current one. Other configs are returned as they are."""
    cfg = dict(model_cfg)
    if str(cfg.get("target")) == "clap":
        cfg.update(target="teacher", teacher="laion_clap")
    for old, new in (("clap_checkpoint", "teacher_checkpoint"), ("clap_interpolation", "teacher_interpolation")):
        if old in cfg:
            value = cfg.pop(old)
            cfg.setdefault(new, value)
    if str(cfg.get("teacher")) in TEACHER_ALIASES:
        cfg["teacher"] = TEACHER_ALIASES[str(cfg["teacher"])]
    return cfg
