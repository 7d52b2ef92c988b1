"""AudioMAE's released checkpoints <-> our :class:`VitEncoder`.

AudioMAE (facebookresearch/AudioMAE) publishes two kinds of ``.pth`` files, both ``{"model": state_dict}``
with timm's key names:

* ``pretrained.pth``: the masked autoencoder. Encoder keys ``cls_token`` (1, 1, D), ``pos_embed``
  (1, 1 + L, D) (fixed 2-D sin-cos; row 0, the [CLS] position, is zero), ``patch_embed.proj.*``,
  ``blocks.{i}.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}.*``, ``norm.*``; the decoder
  (``decoder_*``, ``mask_token``) is ignored here.
* ``finetuned.pth``: the fine-tuned ViT with global pooling: the same encoder keys without ``norm.*``
  (deleted by AudioMAE's classifier), plus ``fc_norm.*`` and ``head.*``.

:func:`encoder_from_audiomae_state` turns either into our encoder's state dict plus the encoder
architecture read off the shapes, so ``model.pretrained=/path/pretrained.pth`` (or finetuned.pth)
just works. How the layouts differ:

* **[CLS] and positions.** AudioMAE adds ``pos_embed[:, 1:]`` to the patches and
  ``cls_token + pos_embed[:, :1]`` to the class token. Our encoder keeps the patch positions in a
  fixed buffer (:func:`sincos_2d_positions`, no [CLS] row) and adds nothing to its [CLS] token, so
  the loaded ``cls_token`` is AudioMAE's ``cls_token + pos_embed[:, :1]`` (the same token enters the
  blocks). AudioMAE's patch positions are not loaded but checked: they must equal ours for the
  inferred grid (within 1e-4), else the checkpoint used another grid or patching (e.g. overlapping
  patches) and is refused.
* **Final norm.** A ``finetuned.pth`` has no ``norm``; it is filled with an identity affine (weight
  ones, bias zeros; it still normalises) and logged. Our classifier pools the encoder's outputs
  *before* ``norm`` (like AudioMAE's global pooling), so this changes nothing there.
* **Head.** ``fc_norm`` and ``head`` are NOT part of the encoder and are not loaded by
  ``model.pretrained``: fine-tuning builds a new head for its own class count. Read them with
  :func:`audiomae_head` if you want them.

:func:`encoder_to_audiomae_state` writes the inverse (for AudioMAE-style tools, or to strip a
``pretrained.pth`` down to its encoder; see ``supmam-convert-audiomae``).
"""
from __future__ import annotations

import logging
import re
from typing import Optional

import torch

from .pretrained_encoder import CheckpointError
from .positions import sincos_2d_positions

logger = logging.getLogger(__name__)

__all__ = ["encoder_from_audiomae_state", "encoder_to_audiomae_state", "audiomae_head", "audiomae_state_dict",
           "BLOCK_KEYS", "NUM_MEL_BINS", "POSITION_TOLERANCE"]

NUM_MEL_BINS = 128  # every AudioMAE checkpoint: 128-bin Kaldi fbank
POSITION_TOLERANCE = 1e-4
BLOCK_KEYS = tuple(f"{module}.{param}" for module in ("norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2")
                   for param in ("weight", "bias"))
ENCODER_TOP_KEYS = ("cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias")
NORM_KEYS = ("norm.weight", "norm.bias")
HEAD_KEYS = ("fc_norm.weight", "fc_norm.bias", "head.weight", "head.bias")
# Known non-encoder parts: the MAE decoder and the fine-tuned classifier's head.
_IGNORED = re.compile(r"^(decoder_|mask_token$|fc_norm\.|head\.)")
_BLOCK = re.compile(r"^blocks\.(\d+)\.(.+)$")
# Heads of the standard ViT sizes (tiny, small, base, large, huge); other widths: D / 64.
_HEADS = {192: 3, 384: 6, 768: 12, 1024: 16, 1280: 16}


def audiomae_state_dict(state, path: str) -> dict:
    """The flat state dict inside a loaded AudioMAE file: ``{"model": sd}`` (AudioMAE's
    ``save_model`` may add ``optimizer``, ``epoch``, ... beside it) or a bare ``sd``; a
    ``module.`` (DistributedDataParallel) prefix on every key is dropped."""
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        sd = state["model"]
    elif isinstance(state, dict) and state and all(isinstance(v, torch.Tensor) for v in state.values()):
        sd = state
    else:
        found = sorted(map(str, state))[:8] if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(
            f"{path}: not an encoder checkpoint: expected a supmam pretraining checkpoint (fairseq .pt) or an "
            f"AudioMAE .pth ({{'model': state_dict}} or a bare state dict of tensors); found {found}"
        )
    not_tensors = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise CheckpointError(f"{path}: 'model' is not a state dict: {not_tensors[:8]} are not tensors")
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def _block_count(sd: dict, path: str) -> int:
    indices = {int(m.group(1)) for m in map(_BLOCK.match, sd) if m}
    if not indices:
        raise CheckpointError(f"{path}: no encoder blocks (blocks.0.*): not an AudioMAE / timm ViT state dict; "
                              f"its keys start {sorted(sd)[:8]}")
    return max(indices) + 1


def _infer_architecture(sd: dict, depth: int, path: str) -> dict:
    weight = sd["patch_embed.proj.weight"]
    if weight.dim() != 4 or weight.size(2) != weight.size(3):
        raise CheckpointError(f"{path}: patch_embed.proj.weight {tuple(weight.shape)} is not a square "
                              "(D, 1, p, p) patch projection")
    dim, patch = int(weight.size(0)), int(weight.size(2))
    if dim in _HEADS:
        heads = _HEADS[dim]
    elif dim % 64 == 0:
        heads = dim // 64
    else:
        raise CheckpointError(f"{path}: cannot tell the attention heads of a {dim}-wide encoder "
                              "(not a standard ViT width nor a multiple of 64)")
    hidden = int(sd["blocks.0.mlp.fc1.weight"].size(0))
    if NUM_MEL_BINS % patch:
        raise CheckpointError(f"{path}: {patch}x{patch} patches do not tile {NUM_MEL_BINS} mel bins")
    per_row = NUM_MEL_BINS // patch
    num_patches = int(sd["pos_embed"].size(1)) - 1
    if sd["pos_embed"].dim() != 3 or num_patches <= 0 or num_patches % per_row:
        raise CheckpointError(
            f"{path}: pos_embed {tuple(sd['pos_embed'].shape)} is not a [CLS] row plus a (time x {per_row}) grid "
            f"of {patch}x{patch} patches over {NUM_MEL_BINS} mel bins: the positions differ from ours (another "
            "grid or patching, e.g. AudioMAE's overlapping patches, is not supported)"
        )
    return {
        "encoder_layers": depth,
        "encoder_embed_dim": dim,
        "encoder_heads": heads,
        "mlp_ratio": hidden / dim,
        "patch_size": patch,
        "input_frames": num_patches // per_row * patch,
        "num_mel_bins": NUM_MEL_BINS,
        "cls_token": True,
    }


def encoder_from_audiomae_state(state, path: str) -> tuple[dict, dict]:
    """(our encoder's state dict, its architecture) from a loaded AudioMAE checkpoint.

    Args:
        state: what ``torch.load`` returned for ``pretrained.pth`` / ``finetuned.pth``.
        path: the file, for messages.

    Returns:
        ``weights``: exactly the keys of ``VitEncoder(cfg).state_dict()`` with ``cls_token=True``
        (``cls_token`` holds AudioMAE's ``cls_token + pos_embed[:, :1]``; ``norm`` has unit weight and
        zero bias when the file has none); ``architecture``: all of ``ENCODER_FIELDS``, read off the shapes.

    Raises:
        CheckpointError: not a state dict; encoder keys missing; keys that are neither encoder,
        decoder nor head keys; patch positions that differ from ours.
    """
    sd = audiomae_state_dict(state, path)
    depth = _block_count(sd, path)
    wanted = list(ENCODER_TOP_KEYS) + [f"blocks.{i}.{k}" for i in range(depth) for k in BLOCK_KEYS]
    has_norm = any(k in sd for k in NORM_KEYS)
    if has_norm:
        wanted += NORM_KEYS
    missing = [k for k in wanted if k not in sd]
    known = set(wanted)
    unknown = [k for k in sd if k not in known and not _IGNORED.match(k)]
    if missing or unknown:
        raise CheckpointError(
            f"{path}: not an AudioMAE encoder (a different model or key layout): {len(missing)} encoder keys "
            f"missing {missing[:8]}, {len(unknown)} keys that are neither AudioMAE encoder keys nor its decoder / "
            f"head keys {unknown[:8]}"
        )
    architecture = _infer_architecture(sd, depth, path)

    dim, patch = architecture["encoder_embed_dim"], architecture["patch_size"]
    grid = (architecture["input_frames"] // patch, NUM_MEL_BINS // patch)
    pos_embed = sd["pos_embed"].float()
    ours = sincos_2d_positions(dim, grid)
    if pos_embed.size(2) != dim:
        raise CheckpointError(f"{path}: pos_embed {tuple(pos_embed.shape)} is not {dim} wide like patch_embed")
    error = (pos_embed[0, 1:] - ours).abs().max().item()
    if not error <= POSITION_TOLERANCE:
        raise CheckpointError(
            f"{path}: its patch positions differ from ours (max |difference| {error:.3g} > {POSITION_TOLERANCE}) "
            f"for a {grid[0]} x {grid[1]} (time x freq) grid of {patch}x{patch} patches: the checkpoint used "
            "another grid or patching (or learned positions), which this encoder does not support"
        )

    weights = {"cls_token": sd["cls_token"] + sd["pos_embed"][:, :1].to(sd["cls_token"].dtype)}
    for key in wanted:
        if key not in ("cls_token", "pos_embed"):
            weights[key] = sd[key]
    if not has_norm:
        reference = sd["patch_embed.proj.bias"]
        weights["norm.weight"] = torch.ones(dim, dtype=reference.dtype)
        weights["norm.bias"] = torch.zeros(dim, dtype=reference.dtype)
        logger.info(f"{path} has no final norm (an AudioMAE fine-tuned model): encoder.norm gets unit weight "
                    "and zero bias; the classifier pools before it")
    if any(k in sd for k in HEAD_KEYS):
        logger.info(f"{path}: its classifier (fc_norm / head) is not loaded; fine-tuning builds a new head")
    logger.info(f"{path}: AudioMAE encoder, architecture {architecture}")
    return weights, architecture


def audiomae_head(state, path: str = "<checkpoint>") -> Optional[dict]:
    """A ``finetuned.pth``'s classifier: ``{"fc_norm.weight", "fc_norm.bias", "head.weight",
    "head.bias"}`` (the keys of :class:`SupmamClassifier`'s ``fc_norm`` / ``head``), or None when
    the file has no head (``pretrained.pth``)."""
    sd = audiomae_state_dict(state, path)
    if not any(k in sd for k in HEAD_KEYS):
        return None
    missing = [k for k in HEAD_KEYS if k not in sd]
    if missing:
        raise CheckpointError(f"{path}: incomplete classifier head: {missing} missing")
    return {k: sd[k] for k in HEAD_KEYS}


def encoder_to_audiomae_state(encoder) -> dict:
    """``{"model": state_dict}`` of ``encoder`` (a :class:`VitEncoder`) in AudioMAE's key layout.

    ``pos_embed`` is (1, 1 + L, D): a zero [CLS] row, then the encoder's fixed positions; the
    ``cls_token`` is stored as is, so AudioMAE's ``cls_token + pos_embed[:, :1]`` is our token
    (and reading the file back with :func:`encoder_from_audiomae_state` gives the same weights).

    Raises:
        ValueError: the encoder has no [CLS] token. AudioMAE's encoder always prepends one, and a
        made-up (e.g. zero) token would join the attention and change every output, so there is no
        faithful AudioMAE layout for such an encoder.
    """
    if getattr(encoder, "cls_token", None) is None:
        raise ValueError("AudioMAE's layout needs a [CLS] token but this encoder has none "
                         "(model.cls_token=false); it has no faithful AudioMAE equivalent")
    sd = {k: v.detach().cpu().clone() for k, v in encoder.state_dict().items()}
    positions = encoder.pos_embed.detach().cpu().float()
    zero = torch.zeros(1, 1, positions.size(2), dtype=positions.dtype)
    model = {"cls_token": sd.pop("cls_token"), "pos_embed": torch.cat([zero, positions], dim=1)}
    model.update(sd)
    return {"model": model}

