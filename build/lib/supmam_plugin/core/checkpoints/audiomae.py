"""AudioMAE's checkpoints (facebookresearch/AudioMAE) in our key layout, and back.

``pretrained.pth`` (``models_mae.MaskedAutoencoderViT``: encoder + decoder) and ``finetuned.pth``
(``models_vit.VisionTransformer`` with global pooling: encoder without ``norm``, plus ``fc_norm``
and ``head``): ``{"model": state_dict}`` (AudioMAE's scripts may add ``optimizer``, ``epoch``,
``scaler``, ``args``) with timm's key names.

How AudioMAE's layout maps onto ours:

* **Positions.** AudioMAE's ``pos_embed`` / ``decoder_pos_embed`` are (1, 1 + L, D), row 0 (zero)
  for [CLS], built for ``patch_hw = (8, 64)`` (freq x time) while its tokens are time-major (the
  "audiomae" layout of :func:`positions.position_table`). The table is data: rows 1: are loaded
  as they are into our ``pos_embed`` buffers. It must be recognisably one of
  :data:`positions.POSITION_LAYOUTS` (within 1e-4); any other table (another grid, overlapping
  patches, learned positions) is refused with the reason.
* **[CLS].** AudioMAE adds ``pos_embed[:, :1]`` to its ``cls_token``; ours has no position row, so
  the loaded ``cls_token`` is ``cls_token + pos_embed[:, :1]`` (the same token enters the blocks).
  The decoder's [CLS] is dropped by AudioMAE before its windowed blocks: ``decoder_pos_embed[:, :1]``
  is not needed.
* **Decoder** (``pretrained.pth`` into model ``supmam``): ``decoder_embed`` -> ``decoder.embed``,
  ``mask_token`` -> ``decoder.mask_token``, ``decoder_blocks.{i}.*`` -> ``decoder.blocks.{i}.*``
  (same names: :class:`AudioMAESwinBlock`), ``decoder_norm`` -> ``decoder.norm``, ``decoder_pred``
  -> ``head.0`` (a plain Linear, the spectrogram target).
* **Final norm.** A ``finetuned.pth`` has no ``norm``; it gets unit weight and zero bias (our
  classifier pools before it, like AudioMAE's global pooling). ``fc_norm`` / ``head`` are read by
  :func:`audiomae_head` (``SupmamClassifier.from_audiomae`` loads them).
"""
from __future__ import annotations

import logging
import re
from typing import Optional

import torch

from .positions import recognise_positions
from .read import CheckpointError

logger = logging.getLogger(__name__)

NUM_MEL_BINS = 128  # every AudioMAE checkpoint: 128-bin Kaldi fbank
BLOCK_KEYS = tuple(f"{module}.{param}" for module in ("norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2")
                   for param in ("weight", "bias"))
DECODER_BLOCK_KEYS = BLOCK_KEYS + ("attn.tau",) + tuple(
    f"attn.meta_mlp.{fc}.{param}" for fc in ("fc1", "fc2") for param in ("weight", "bias"))
ENCODER_TOP_KEYS = ("cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias")
NORM_KEYS = ("norm.weight", "norm.bias")
HEAD_KEYS = ("fc_norm.weight", "fc_norm.bias", "head.weight", "head.bias")
DECODER_TOP_KEYS = ("mask_token", "decoder_pos_embed", "decoder_embed.weight", "decoder_embed.bias",
                    "decoder_norm.weight", "decoder_norm.bias", "decoder_pred.weight", "decoder_pred.bias")
# AudioMAE's decoder window and shift for its 16x16 patches (models_mae.py, decoder_mode=1).
AUDIOMAE_DECODER_WINDOW = {"decoder_window_time": 4, "decoder_window_freq": 4,
                           "decoder_shift_time": 2, "decoder_shift_freq": 0}
_IGNORED = re.compile(r"^(decoder_|mask_token$|fc_norm\.|head\.)")
_BLOCK = re.compile(r"^blocks\.(\d+)\.(.+)$")
_DECODER_BLOCK = re.compile(r"^decoder_blocks\.(\d+)\.(.+)$")
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
            f"{path}: not an encoder checkpoint: expected a supmam checkpoint (fairseq .pt) or an "
            f"AudioMAE .pth ({{'model': state_dict}} or a bare state dict of tensors); found {found}"
        )
    not_tensors = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise CheckpointError(f"{path}: 'model' is not a state dict: {not_tensors[:8]} are not tensors")
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def _block_count(sd: dict, pattern, path: str, what: str) -> int:
    indices = {int(m.group(1)) for m in map(pattern.match, sd) if m}
    if not indices:
        raise CheckpointError(f"{path}: no {what}: not an AudioMAE / timm ViT state dict; its keys start "
                              f"{sorted(sd)[:8]}")
    return max(indices) + 1


def _infer_architecture(sd: dict, depth: int, path: str) -> dict:
    weight = sd["patch_embed.proj.weight"]
    if weight.dim() != 4 or weight.size(1) != 1 or weight.size(2) != weight.size(3):
        raise CheckpointError(f"{path}: patch_embed.proj.weight {tuple(weight.shape)} is not a square one-channel "
                              "(D, 1, p, p) patch projection (an image model's patches do not fit an fbank)")
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
    pos = sd["pos_embed"]
    num_patches = int(pos.size(1)) - 1 if pos.dim() == 3 else -1
    if num_patches <= 0 or num_patches % per_row or pos.size(2) != dim:
        raise CheckpointError(
            f"{path}: pos_embed {tuple(pos.shape)} is not a [CLS] row plus a (time x {per_row}) grid of "
            f"{patch}x{patch} patches over {NUM_MEL_BINS} mel bins, {dim} wide: another grid or patching (e.g. "
            "AudioMAE's overlapping patches) is not supported"
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
        (``cls_token`` = AudioMAE's ``cls_token + pos_embed[:, :1]``; ``pos_embed`` = its rows 1:;
        ``norm`` of unit weight and zero bias when the file has none); ``architecture``: all of
        ``ENCODER_FIELDS``, read off the shapes and the position table.

    Raises:
        CheckpointError: not a state dict; encoder keys missing; keys that are neither encoder,
        decoder nor head keys; a position table of neither layout.
    """
    sd = audiomae_state_dict(state, path)
    depth = _block_count(sd, _BLOCK, path, "encoder blocks (blocks.0.*)")
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
    patch = architecture["patch_size"]
    grid = (architecture["input_frames"] // patch, NUM_MEL_BINS // patch)
    architecture["position_layout"] = recognise_positions(sd["pos_embed"][0, 1:], grid, path, "pos_embed[:, 1:]")

    weights = {"cls_token": sd["cls_token"] + sd["pos_embed"][:, :1].to(sd["cls_token"].dtype),
               "pos_embed": sd["pos_embed"][:, 1:].clone()}
    for key in wanted:
        if key not in ("cls_token", "pos_embed"):
            weights[key] = sd[key]
    if not has_norm:
        dim, reference = architecture["encoder_embed_dim"], sd["patch_embed.proj.bias"]
        weights["norm.weight"] = torch.ones(dim, dtype=reference.dtype)
        weights["norm.bias"] = torch.zeros(dim, dtype=reference.dtype)
        logger.info(f"{path} has no final norm (an AudioMAE fine-tuned model): encoder.norm gets unit weight "
                    "and zero bias; the classifier pools before it")
    logger.info(f"{path}: AudioMAE encoder, architecture {architecture}")
    return weights, architecture


def supmam_from_audiomae_state(state, path: str) -> tuple[dict, dict]:
    """(state dict of a ``supmam`` model, its config fields) from AudioMAE's full ``pretrained.pth``
    (``decoder_mode=1``: the Swin decoder; 16x16 patches).

    The fields are the encoder's (:func:`encoder_from_audiomae_state`) plus ``decoder_embed_dim``,
    ``decoder_layers``, ``decoder_heads`` (read off the shapes), AudioMAE's window (4, 4) and
    shift (2, 0), and ``target="spectrogram"``. The model also needs the loss settings AudioMAE
    trained with (``mask_ratio`` 0.8, ``norm_pix_loss`` true: the dataclass defaults).

    Raises:
        CheckpointError: no decoder (a fine-tuned file), a decoder of plain transformer blocks
        (``decoder_mode=0``), missing or unknown keys, a table of neither layout.
    """
    sd = audiomae_state_dict(state, path)
    encoder_weights, fields = encoder_from_audiomae_state(sd, path)
    if not any(k.startswith("decoder_") for k in sd):
        raise CheckpointError(f"{path}: has no decoder (an AudioMAE fine-tuned or encoder-only file): it cannot "
                              "build a pretraining model; its encoder loads with model.pretrained / load_encoder")
    depth = _block_count(sd, _DECODER_BLOCK, path, "decoder blocks (decoder_blocks.0.*)")
    if "decoder_blocks.0.attn.tau" not in sd:
        raise CheckpointError(
            f"{path}: its decoder blocks are plain transformer blocks (AudioMAE decoder_mode=0, or image MAE), not "
            "AudioMAE's Swin blocks (no decoder_blocks.0.attn.tau): only its encoder loads (model.pretrained)")
    wanted = list(DECODER_TOP_KEYS) + [f"decoder_blocks.{i}.{k}" for i in range(depth) for k in DECODER_BLOCK_KEYS]
    missing = [k for k in wanted if k not in sd]
    known = set(wanted)
    unknown = [k for k in sd if _IGNORED.match(k) and k not in known and not k.startswith(("fc_norm.", "head."))]
    if missing or unknown:
        raise CheckpointError(f"{path}: not AudioMAE's Swin decoder: {len(missing)} keys missing {missing[:8]}, "
                              f"{len(unknown)} unknown decoder keys {unknown[:8]}")
    width = int(sd["decoder_embed.weight"].size(0))
    hidden = int(sd["decoder_blocks.0.mlp.fc1.weight"].size(0))
    if hidden != fields["mlp_ratio"] * width:
        raise CheckpointError(f"{path}: decoder MLP ratio {hidden / width:g} differs from the encoder's "
                              f"{fields['mlp_ratio']:g}; model supmam uses one mlp_ratio for both")
    patch = fields["patch_size"]
    grid = (fields["input_frames"] // patch, NUM_MEL_BINS // patch)
    if int(sd["decoder_pred.weight"].size(0)) != patch * patch:
        raise CheckpointError(f"{path}: decoder_pred predicts {sd['decoder_pred.weight'].size(0)} values per patch, "
                              f"not the {patch}x{patch} spectrogram patch")
    if tuple(sd["decoder_pos_embed"].shape) != (1, 1 + grid[0] * grid[1], width):
        raise CheckpointError(f"{path}: decoder_pos_embed {tuple(sd['decoder_pos_embed'].shape)} is not "
                              f"(1, 1 + {grid[0] * grid[1]}, {width})")
    recognise_positions(sd["decoder_pos_embed"][0, 1:], grid, path, "decoder_pos_embed[:, 1:]")

    weights = {f"encoder.{k}": v for k, v in encoder_weights.items()}
    weights.update({
        "decoder.embed.weight": sd["decoder_embed.weight"], "decoder.embed.bias": sd["decoder_embed.bias"],
        "decoder.mask_token": sd["mask_token"], "decoder.pos_embed": sd["decoder_pos_embed"][:, 1:].clone(),
        "decoder.norm.weight": sd["decoder_norm.weight"], "decoder.norm.bias": sd["decoder_norm.bias"],
        "head.0.weight": sd["decoder_pred.weight"], "head.0.bias": sd["decoder_pred.bias"],
    })
    for i in range(depth):
        for key in DECODER_BLOCK_KEYS:
            weights[f"decoder.blocks.{i}.{key}"] = sd[f"decoder_blocks.{i}.{key}"]
    fields.update({"decoder_embed_dim": width, "decoder_layers": depth,
                   "decoder_heads": int(sd["decoder_blocks.0.attn.tau"].numel()), "target": "spectrogram",
                   **AUDIOMAE_DECODER_WINDOW})
    return weights, fields


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

    ``pos_embed`` is (1, 1 + L, D): a zero [CLS] row, then the encoder's table as it is; the
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
    positions = sd.pop("pos_embed").float()
    zero = torch.zeros(1, 1, positions.size(2), dtype=positions.dtype)
    model = {"cls_token": sd.pop("cls_token"), "pos_embed": torch.cat([zero, positions], dim=1)}
    model.update(sd)
    return {"model": model}
