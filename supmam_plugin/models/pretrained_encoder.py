"""Encoder weights from a checkpoint: our ``supmam`` pretraining checkpoints (fairseq ``.pt``)
or AudioMAE's released ``pretrained.pth`` / ``finetuned.pth`` (timm key names)."""
from __future__ import annotations

import logging
import os

import torch

from .vit_encoder import VitEncoderConfig

logger = logging.getLogger(__name__)

ENCODER_FIELDS = ("encoder_layers", "encoder_embed_dim", "encoder_heads", "mlp_ratio", "patch_size",
                  "input_frames", "num_mel_bins", "cls_token")


class CheckpointError(ValueError):
    """A checkpoint that cannot initialise the encoder; the message names it and the keys."""


def read_checkpoint(path: str):
    """``torch.load`` on the CPU; a missing file is a FileNotFoundError, an unreadable one a
    CheckpointError, both naming the path."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise CheckpointError(f"{path}: cannot be read as a torch checkpoint ({e})") from None


def encoder_from_supmam_checkpoint(state: dict, path: str) -> tuple[dict, dict]:
    """(encoder state dict without the ``encoder.`` prefix, encoder architecture fields)."""
    model_cfg = (state.get("cfg") or {}).get("model") or {}
    name = model_cfg.get("_name") if hasattr(model_cfg, "get") else None
    if name != "supmam":
        raise CheckpointError(
            f"{path}: not a supmam pretraining checkpoint (its model is {name!r}); give a checkpoint "
            "written by fairseq-hydra-train with model=supmam, or an AudioMAE .pth"
        )
    weights = {k[len("encoder."):]: v for k, v in state["model"].items() if k.startswith("encoder.")}
    architecture = {f: model_cfg[f] for f in ENCODER_FIELDS if f in model_cfg}
    return weights, architecture


def load_encoder_weights(path: str) -> tuple[dict, dict]:
    """Read ``path`` and return (encoder state dict in our key layout, architecture fields)."""
    state = read_checkpoint(path)
    if isinstance(state, dict) and "cfg" in state and "model" in state:
        return encoder_from_supmam_checkpoint(state, path)
    from .audiomae_checkpoint import encoder_from_audiomae_state

    return encoder_from_audiomae_state(state, path)


def check_and_load(encoder: torch.nn.Module, weights: dict, path: str) -> None:
    """Load ``weights`` into ``encoder``; a mismatch is a CheckpointError naming the keys."""
    wanted = encoder.state_dict()
    missing = [k for k in wanted if k not in weights]
    unexpected = [k for k in weights if k not in wanted]
    mismatched = [f"{k}: checkpoint {tuple(weights[k].shape)} != model {tuple(wanted[k].shape)}"
                  for k in wanted if k in weights and weights[k].shape != wanted[k].shape]
    if missing or unexpected or mismatched:
        raise CheckpointError(
            f"{path}: encoder weights do not fit: {len(missing)} missing {missing[:8]}, "
            f"{len(unexpected)} unexpected {unexpected[:8]}, {len(mismatched)} of another shape "
            f"{mismatched[:8]}; the encoder size options (model.encoder_*) must match the checkpoint"
        )
    encoder.load_state_dict(weights)


def apply_architecture(cfg: VitEncoderConfig, architecture: dict, path: str) -> None:
    """Take the checkpoint's encoder architecture into ``cfg`` (logging what changed)."""
    for name, value in architecture.items():
        if getattr(cfg, name) != value:
            logger.info(f"model.{name} = {value} (from {path}; the config said {getattr(cfg, name)})")
            setattr(cfg, name, value)
