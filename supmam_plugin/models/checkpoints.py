"""Reading checkpoints, in one place: this plugin's fairseq ``.pt`` files and AudioMAE's ``.pth`` files.

Kinds of files:

* fairseq checkpoints of model ``supmam`` (pretraining) or ``supmam_classifier`` (fine-tuned):
  ``{"cfg": {"model": {...}, "task": {...}}, "model": state_dict, ...}``. Since the AudioMAE
  layout (issue 11) they hold the fixed position tables (``encoder.pos_embed``,
  ``decoder.pos_embed``). Older ones (commit 458ab0c and before) do not: their tables were the
  "grid" layout, rebuilt at load time. For those, the ENCODER keeps loading everywhere (the grid
  table is inserted: :func:`upgrade_legacy_encoder`); a legacy ``supmam`` DECODER (timm's Swin V1
  block, a LayerNorm after the spectrogram head) does not fit the current model and is refused
  with :data:`LEGACY_PRETRAINING` (resuming such a run is not supported).
* AudioMAE (facebookresearch/AudioMAE) ``pretrained.pth`` (``models_mae.MaskedAutoencoderViT``:
  encoder + decoder) and ``finetuned.pth`` (``models_vit.VisionTransformer`` with global pooling:
  encoder without ``norm``, plus ``fc_norm`` and ``head``): ``{"model": state_dict}`` (AudioMAE's
  scripts may add ``optimizer``, ``epoch``, ``scaler``, ``args``) with timm's key names.

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
import os
import re
from dataclasses import dataclass
from typing import Optional

import torch

from .positions import POSITION_LAYOUTS, identify_layout, position_table

logger = logging.getLogger(__name__)

__all__ = [
    "CheckpointError", "EncoderCheckpoint", "ENCODER_FIELDS", "LEGACY_PRETRAINING", "read_checkpoint",
    "is_fairseq_checkpoint", "fairseq_configs", "read_encoder", "load_strict", "apply_architecture",
    "upgrade_legacy_encoder", "legacy_pretraining_reason", "positions_for_frames", "audiomae_state_dict", "encoder_from_audiomae_state",
    "supmam_from_audiomae_state", "audiomae_head", "encoder_to_audiomae_state", "recognise_positions",
    "upgrade_teacher_fields",
]

ENCODER_FIELDS = ("encoder_layers", "encoder_embed_dim", "encoder_heads", "mlp_ratio", "patch_size",
                  "input_frames", "num_mel_bins", "cls_token", "position_layout")
FAIRSEQ_MODELS = ("supmam", "supmam_classifier")
NUM_MEL_BINS = 128  # every AudioMAE checkpoint: 128-bin Kaldi fbank
POSITION_TOLERANCE = 1e-4
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

LEGACY_PRETRAINING = (
    "{path}: a supmam pretraining checkpoint from before the AudioMAE decoder (plugin commit 458ab0c and "
    "earlier: timm Swin V1 decoder blocks, a LayerNorm after the spectrogram head, no saved position "
    "tables). Its decoder does not fit this version, so pretraining cannot resume from it and "
    "supmam-plot-reconstruction cannot use it. Its ENCODER still loads: fine-tune with "
    "model.pretrained={path}, or take features with supmam_plugin.embeddings.load_encoder / "
    "supmam-extract-embeddings. To pretrain further, start a new run (or use the plugin at commit 458ab0c)."
)


class CheckpointError(ValueError):
    """A checkpoint that cannot be used as asked; the message names the file, the keys and the fix."""


@dataclass
class EncoderCheckpoint:
    """What :func:`read_encoder` finds: the encoder's state dict in our key layout (the keys of
    ``VitEncoder.state_dict()``), its architecture (``ENCODER_FIELDS``), the audio rate of the
    checkpoint's task, and its kind ("supmam", "supmam_classifier" or "audiomae")."""

    weights: dict
    architecture: dict
    sample_rate: int
    kind: str


# ----------------------------------------------------------------------------- files


def read_checkpoint(path: str):
    """``torch.load`` on the CPU; a missing file is a FileNotFoundError, an unreadable one a
    CheckpointError, both naming the path."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise CheckpointError(f"{path}: cannot be read as a torch checkpoint ({e})") from None


def _plain(obj):
    """An omegaconf container as plain Python (fairseq stores cfg as a dict or a DictConfig)."""
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(obj, DictConfig):
            try:
                return OmegaConf.to_container(obj, resolve=True)
            except Exception:  # an interpolation that cannot resolve here (e.g. a missing env var)
                return OmegaConf.to_container(obj, resolve=False)
    except ImportError:  # pragma: no cover
        pass
    return obj


def is_fairseq_checkpoint(state) -> bool:
    return isinstance(state, dict) and "cfg" in state and "model" in state


def fairseq_configs(state, path: str, models=FAIRSEQ_MODELS) -> tuple[str, dict, dict]:
    """(model name, model cfg, task cfg) of a fairseq checkpoint whose model is one of ``models``."""
    cfg = _plain(state.get("cfg")) or {}
    model_cfg = _plain(cfg.get("model")) or {}
    name = model_cfg.get("_name") if isinstance(model_cfg, dict) else None
    if name not in models:
        raise CheckpointError(
            f"{path}: a fairseq checkpoint of model {name!r}, not one of {list(models)}; give a supmam "
            "pretraining or supmam_classifier fine-tuning checkpoint, or an AudioMAE .pth"
        )
    return name, model_cfg, _plain(cfg.get("task")) or {}


# ----------------------------------------------------------------------------- positions


def position_tolerance(table: torch.Tensor, trained_in: Optional[torch.dtype] = None) -> float:
    """How far a stored table may be from its layout's: POSITION_TOLERANCE, or the rounding of the
    half precision the table was kept in (a run with common.bf16/fp16 holds its buffers in bf16/fp16,
    and fairseq may save them back as float32)."""
    half = trained_in if trained_in in (torch.bfloat16, torch.float16) else table.dtype
    if half in (torch.bfloat16, torch.float16):
        return max(POSITION_TOLERANCE, torch.finfo(half).eps)
    return POSITION_TOLERANCE


def recognise_positions(table: torch.Tensor, grid: tuple, path: str, key: str,
                        trained_in: Optional[torch.dtype] = None) -> str:
    """The layout ("audiomae" or "grid") of a (L, D) position table of a (T, F) ``grid``.

    Raises:
        CheckpointError: the table is neither layout (another grid or patching, learned or
            interpolated positions): our models cannot reproduce what it was trained with.
    """
    tolerance = position_tolerance(table, trained_in)
    layout = identify_layout(table, grid, tolerance)
    if layout is None:
        expected = {name: (table.float() - position_table(table.size(-1), grid, name)).abs().max().item()
                    for name in POSITION_LAYOUTS} if table.dim() == 2 and table.size(0) == grid[0] * grid[1] else {}
        detail = ", ".join(f"{name}: max |difference| {error:.3g}" for name, error in expected.items())
        raise CheckpointError(
            f"{path}: its position table {key} {tuple(table.shape)} is neither AudioMAE's layout (sin-cos built for "
            f"a (freq x time) = {(grid[1], grid[0])} grid, read in time-major token order) nor the (time x freq) "
            f"grid layout for {grid[0]} x {grid[1]} patches ({detail or 'wrong number of rows'}; tolerance "
            f"{tolerance:.3g}): the checkpoint used another grid or patching (e.g. AudioMAE's overlapping "
            "patches) or learned positions, which these models do not support"
        )
    return layout


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


# ----------------------------------------------------------------------------- strict loading


def load_strict(module: torch.nn.Module, weights: dict, path: str, what: str = "encoder",
                fix: str = "the size options (model.*) must match the checkpoint") -> None:
    """``module.load_state_dict(weights)``; any missing, unexpected or differently shaped key is
    a CheckpointError naming the file and up to 8 keys of each kind."""
    wanted = module.state_dict()
    missing = [k for k in wanted if k not in weights]
    unexpected = [k for k in weights if k not in wanted]
    mismatched = [f"{k}: checkpoint {tuple(weights[k].shape)} != model {tuple(wanted[k].shape)}"
                  for k in wanted if k in weights and weights[k].shape != wanted[k].shape]
    if missing or unexpected or mismatched:
        raise CheckpointError(
            f"{path}: {what} weights do not fit: {len(missing)} missing {missing[:8]}, "
            f"{len(unexpected)} unexpected {unexpected[:8]}, {len(mismatched)} of another shape "
            f"{mismatched[:8]}; {fix}"
        )
    module.load_state_dict(weights)


def apply_architecture(cfg, architecture: dict, path: str) -> None:
    """Take the checkpoint's architecture fields into ``cfg`` (logging what changed)."""
    for name, value in architecture.items():
        if getattr(cfg, name) != value:
            logger.info(f"model.{name} = {value} (from {path}; the config said {getattr(cfg, name)})")
            setattr(cfg, name, value)


def upgrade_teacher_fields(model_cfg: dict) -> dict:
    """A ``supmam`` model config written before teachers were chosen by name (``target: clap``,
    ``clap_checkpoint``, ``clap_interpolation``) in today's names (``target: teacher``,
    ``teacher: laion_clap``, ``teacher_checkpoint``, ``teacher_interpolation``); others as they are."""
    cfg = dict(model_cfg)
    if str(cfg.get("target")) == "clap":
        cfg.update(target="teacher", teacher="laion_clap")
    for old, new in (("clap_checkpoint", "teacher_checkpoint"), ("clap_interpolation", "teacher_interpolation")):
        if old in cfg:
            value = cfg.pop(old)
            cfg.setdefault(new, value)
    return cfg


# ----------------------------------------------------------------------------- encoders


def read_encoder(path: str, state=None) -> EncoderCheckpoint:
    """The encoder of any checkpoint we read: a ``supmam`` or ``supmam_classifier`` fairseq
    checkpoint (legacy ones included) or an AudioMAE ``pretrained.pth`` / ``finetuned.pth``.
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
    weights = {k[len("encoder."):]: v for k, v in state["model"].items() if k.startswith("encoder.")}
    if "patch_embed.proj.weight" not in weights:
        raise CheckpointError(f"{path}: holds no encoder weights (no 'encoder.*' keys)")
    architecture = {f: model_cfg[f] for f in ENCODER_FIELDS if f in model_cfg}
    architecture["cls_token"] = "cls_token" in weights  # the weights say (cfgs before the field had none)
    if name == "supmam_classifier" and task_cfg.get("target_frames"):
        architecture["input_frames"] = task_cfg["target_frames"]  # as SupmamClassifier.build_model does
    patch = int(weights["patch_embed.proj.weight"].size(-1))
    dim = int(weights["patch_embed.proj.weight"].size(0))
    frames = int(architecture.get("input_frames", 1024))
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


# ----------------------------------------------------------------------------- AudioMAE


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
