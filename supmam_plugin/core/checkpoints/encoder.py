"""The encoder of any checkpoint the plugin reads, in :class:`~supmam_plugin.core.vit.VitEncoder`'s keys.

Kinds: fairseq checkpoints of model ``supmam`` (pretraining) or ``supmam_classifier`` (fine-tuned)
(``{"cfg": {"model": {...}, "task": {...}}, "model": state_dict, ...}``), legacy ones included, and
AudioMAE's ``pretrained.pth`` / ``finetuned.pth`` (:mod:`.audiomae`).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch

from ..positions import position_table
from .audiomae import NUM_MEL_BINS, encoder_from_audiomae_state
from .legacy import upgrade_legacy_encoder
from .positions import recognise_positions
from .read import CheckpointError, _plain, clip_frames, fairseq_configs, is_fairseq_checkpoint, load_strict, read_checkpoint

logger = logging.getLogger(__name__)

ENCODER_FIELDS = ("encoder_layers", "encoder_embed_dim", "encoder_heads", "mlp_ratio", "patch_size",
                  "input_frames", "num_mel_bins", "cls_token", "position_layout")


@dataclass
class EncoderCheckpoint:
    """What :func:`read_encoder` finds: the encoder's state dict in our key layout (the keys of
    ``VitEncoder.state_dict()``), its architecture (``ENCODER_FIELDS``), the audio rate of the
    checkpoint's task, and its kind ("supmam", "supmam_classifier", "clap": a CLAP's audio tower, or "audiomae")."""

    weights: dict
    architecture: dict
    sample_rate: int
    kind: str


def read_encoder(path: str, state=None) -> EncoderCheckpoint:
    """The encoder of any checkpoint we read: a ``supmam``, ``supmam_classifier`` or ``clap`` (its
    audio tower) fairseq checkpoint (legacy ones included) or an AudioMAE ``pretrained.pth`` / ``finetuned.pth``.
    ``state``: what :func:`read_checkpoint` returned for ``path``, when the caller has it already.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: anything else that is not such an encoder, with the reason.
    """
    path = os.fspath(path)
    state = read_checkpoint(path) if state is None else state
    if not is_fairseq_checkpoint(state):
        weights, architecture = encoder_from_audiomae_state(state, path)
        return EncoderCheckpoint(weights, architecture, 16000, "audiomae")
    name, model_cfg, task_cfg = fairseq_configs(state, path)
    if name == "clap" and model_cfg.get("audio_tower") == "htsat":
        raise CheckpointError(f"{path}: a CLAP whose audio tower is HTS-AT, not this plugin's ViT: as a teacher use "
                              "model.teacher=clap (it reads the HTS-AT tower), or write it in LAION-CLAP's layout "
                              f"(supmam-export-clap {path} OUT.pt) for model.teacher=laion_clap")
    weights = {k[len("encoder."):]: v for k, v in state["model"].items() if k.startswith("encoder.")}
    if "patch_embed.proj.weight" not in weights:
        raise CheckpointError(f"{path}: holds no encoder weights (no 'encoder.*' keys)")
    architecture = {f: model_cfg[f] for f in ENCODER_FIELDS if f in model_cfg}
    architecture["cls_token"] = "cls_token" in weights  # the weights say (cfgs before the field had none)
    architecture["input_frames"] = frames = clip_frames(name, model_cfg, task_cfg)
    patch = int(weights["patch_embed.proj.weight"].size(-1))
    dim = int(weights["patch_embed.proj.weight"].size(0))
    bins = int(architecture.get("num_mel_bins", NUM_MEL_BINS))
    grid = (frames // patch, bins // patch)
    if upgrade_legacy_encoder(weights, "", grid, dim):
        architecture["position_layout"] = "grid"
    else:
        common = _plain((_plain(state.get("cfg")) or {}).get("common")) or {}
        trained_in = torch.bfloat16 if common.get("bf16") else torch.float16 if common.get("fp16") else None
        table = weights["pos_embed"]
        architecture["position_layout"] = recognise_positions(table[0], grid, path, "encoder.pos_embed", trained_in)
        if trained_in is not None or table.dtype in (torch.bfloat16, torch.float16):
            # kept in half precision by a bf16/fp16 run: give the exact table of its layout
            weights["pos_embed"] = position_table(dim, grid, architecture["position_layout"]).unsqueeze(0)
    return EncoderCheckpoint(weights, architecture, int(task_cfg.get("sample_rate") or 16000), name)


def positions_for_frames(found: EncoderCheckpoint, input_frames: int, path: str) -> dict:
    """``found.weights`` for an encoder of ``input_frames`` frames (fine-tuning on shorter or longer
    clips than pretraining, e.g. ESC-50's 512 or Speech Commands' 128 frames after 1024).

    The position table is a fixed function of its layout and grid: the checkpoint's table (whose
    layout :func:`read_encoder` recognised) is replaced by the same layout's table for the new
    grid. For fewer frames this equals cropping the time axis of the table, which is what AudioMAE's
    fine-tuning does (``util/pos_embed.interpolate_pos_embed_audio`` keeps the first time columns
    of its (8, 64) table)."""
    architecture = found.architecture
    if int(input_frames) == int(architecture["input_frames"]):
        return found.weights
    patch = int(architecture["patch_size"])
    if input_frames % patch:
        raise CheckpointError(f"{path}: {input_frames} frames do not split into its {patch}x{patch} patches")
    grid = (int(input_frames) // patch, int(architecture["num_mel_bins"]) // patch)
    table = found.weights["pos_embed"]
    weights = dict(found.weights)
    weights["pos_embed"] = position_table(table.size(-1), grid, architecture["position_layout"]).unsqueeze(0).to(
        table.dtype)
    logger.info(f"{path}: position table ({architecture['position_layout']} layout) made for {input_frames} frames "
                f"(a {grid[0]} x {grid[1]} grid; the checkpoint's is for {architecture['input_frames']})")
    return weights


def build_encoder(found: EncoderCheckpoint, path: str, what: str = "encoder"):
    """The :class:`~supmam_plugin.core.vit.VitEncoder` that ``found`` (:func:`read_encoder` of ``path``)
    describes, its weights loaded strictly."""
    from ..vit import VitEncoder, VitEncoderConfig

    encoder = VitEncoder(VitEncoderConfig(**found.architecture))
    load_strict(encoder, found.weights, path, what=what)
    return encoder
