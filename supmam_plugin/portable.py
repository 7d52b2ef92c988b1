"""A trained encoder without fairseq: load an export (``supmam-export``) and embed or score audio.

    from supmam_plugin.portable import load_export

    model = load_export("exports/as20k")                   # model.safetensors + config.json
    out = model.embed(waveform, sample_rate=44100)         # {"clip": (1, D)}
    frames, times_ms = model.embed_frames(waveform)        # [(T, D)], [(T,)]: one frame every 160 ms
    scores = model.scores(waveform)                        # (1, C) class probabilities, if it has a head

Needs torch, numpy and safetensors only (soundfile / soxr only to read files or resample); importing
it imports no fairseq, timm or omegaconf. The encoder here is written in plain torch with the same
parameter names as the plugin's (timm's ViT blocks): the same weights give the same outputs (tested
to 1e-5). Audio goes through the plugin's own Kaldi fbank and the same input handling, windows and
frames as :class:`supmam_plugin.embeddings.AudioEncoder` (this is one).
"""
from __future__ import annotations

import json
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data.fbank import AUDIOSET_MEAN, AUDIOSET_STD, FbankSettings
from .data.file_hash import file_sha256
from .embeddings import AudioEncoder

FORMAT = "supmam-encoder/1"
ENCODER_KEYS = ("embed_dim", "layers", "heads", "mlp_ratio", "patch_size", "input_frames", "num_mel_bins", "cls_token")


class ExportError(ValueError):
    """An export that cannot be used: the message names the file and what is wrong."""


def fbank_description(settings: FbankSettings = FbankSettings()) -> dict:
    """What an export records of the model's input: the fbank settings and the normalisation."""
    import dataclasses

    return {**dataclasses.asdict(settings), "kind": "kaldi", "normalisation": {"mean": AUDIOSET_MEAN,
            "std": AUDIOSET_STD, "formula": "(fbank - mean) / (2 * std)"}}


class _PatchEmbed(nn.Module):
    def __init__(self, dim: int, patch: int):
        super().__init__()
        self.patch_size = (patch, patch)
        self.proj = nn.Conv2d(1, dim, kernel_size=patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, frames, mel) -> (B, L, D), time-major
        return self.proj(x).flatten(2).transpose(1, 2)


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        q, k, v = self.qkv(x).reshape(batch, tokens, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(batch, tokens, dim))


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class _Block(nn.Module):
    """A pre-norm ViT block (timm's ``Block``: the same parameter names)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        self.attn = _Attention(dim, heads)
        self.mlp = _Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PortableVit(nn.Module):
    """The plugin's ViT encoder (``VitEncoder``) in plain torch: the same state-dict keys and the same
    ``features``; ``pos_embed`` comes with the weights."""

    def __init__(self, encoder: dict):
        super().__init__()
        dim, patch = int(encoder["embed_dim"]), int(encoder["patch_size"])
        self.grid = (int(encoder["input_frames"]) // patch, int(encoder["num_mel_bins"]) // patch)
        self.num_patches = self.grid[0] * self.grid[1]
        self.patch_embed = _PatchEmbed(dim, patch)
        self.register_buffer("pos_embed", torch.zeros(1, self.num_patches, dim))
        self.blocks = nn.ModuleList(_Block(dim, int(encoder["heads"]), float(encoder["mlp_ratio"]))
                                    for _ in range(int(encoder["layers"])))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if encoder["cls_token"] else None

    def features(self, fbank: torch.Tensor, layers=()) -> dict:
        """As ``VitEncoder.features``: {"patches" (B, L, D) final normed, "clip" (B, D), "layer_i" (B, L, D)}."""
        weight = self.patch_embed.proj.weight
        x = self.patch_embed(fbank.unsqueeze(1).to(weight.dtype)) + self.pos_embed.to(weight.dtype)
        first = 0 if self.cls_token is None else 1
        if first:
            x = torch.cat([self.cls_token.expand(len(x), -1, -1).to(x.dtype), x], dim=1)
        out = {}
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in layers:
                out[f"layer_{i}"] = x[:, first:]
        patches = self.norm(x)[:, first:]
        return {"patches": patches, "clip": patches.mean(dim=1), **out}

    def last_block_outputs(self, fbank: torch.Tensor) -> torch.Tensor:
        """(B, L, D) outputs of the last block, before the final norm (what a classifier pools)."""
        return self.features(fbank, layers=(len(self.blocks) - 1,))[f"layer_{len(self.blocks) - 1}"]


class _Head(nn.Module):
    """A classifier's head (``SupmamClassifier`` / AudioMAE's): LayerNorm then Linear on the mean
    of the last block's outputs."""

    def __init__(self, dim: int, num_classes: int):
        super().__init__()
        self.fc_norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.head(self.fc_norm(pooled))


class PortableModel(AudioEncoder):
    """An exported encoder (and head): :class:`AudioEncoder`'s ``embed`` / ``embed_frames``, plus
    ``scores`` and ``class_names`` when the export has a classifier head."""

    def __init__(self, encoder: PortableVit, config: dict, head: _Head | None, device="cpu"):
        super().__init__(encoder, device=device, sample_rate=int(config["fbank"]["sample_rate"]),
                         source=config["source"]["path"])
        self.config = config
        self.head = None if head is None else head.to(self.device).eval()
        self.class_names = config["head"]["class_names"] if config["head"] else None

    def scores(self, waveforms, sample_rate: int = 16000, channels: str | None = None,
               batch_size: int = 16) -> np.ndarray:
        """(B, C) class probabilities (softmax; sigmoid for a multi-label head) of each clip's first
        window (``input_frames`` frames, zero frames past its end), as ``fairseq-validate`` scores it."""
        if self.head is None:
            raise ExportError("this export has no classifier head (it was made from a pretraining checkpoint)")
        clips = self._prepare(waveforms, sample_rate, None, channels)
        jobs = [(c, 0, min(len(clip), self.window_samples)) for c, clip in enumerate(clips)]
        last = len(self.encoder.blocks) - 1
        rows = []
        for _, features in self._encode(clips, jobs, [last], batch_size):
            logits = self.head(features[f"layer_{last}"].mean(dim=1)).float()
            rows.append((torch.sigmoid(logits) if self.config["head"]["multi_label"] else logits.softmax(-1)).cpu())
        return torch.cat(rows).numpy()


    def scores_of_files(self, paths, batch_size: int = 16) -> np.ndarray:
        """``scores`` of audio files (any rate and channels soundfile reads): (N, C)."""
        from .data.audio import read_mono

        read = [read_mono(path) for path in ([paths] if isinstance(paths, str) else paths)]
        return np.concatenate([self.scores(samples, rate, batch_size=batch_size) for samples, rate in read])


def load_encoder_or_export(path: str, device: str | torch.device = "cpu") -> AudioEncoder:
    """An export folder (:func:`load_export`) or a checkpoint file (``embeddings.load_encoder``,
    which needs fairseq): what the HEAR and X-ARES wrappers take."""
    if os.path.isdir(path):
        return load_export(path, device)
    from .embeddings import load_encoder

    return load_encoder(path, device=device)


def load_export(folder: str, device: str | torch.device = "cpu") -> PortableModel:
    """The model of an export folder (``config.json`` + ``model.safetensors``), in eval mode on
    ``device``. A missing, tampered or mismatched export is an :class:`ExportError` naming the file."""
    from safetensors.torch import load_file

    config_path, weights_path = os.path.join(folder, "config.json"), os.path.join(folder, "model.safetensors")
    for path in (config_path, weights_path):
        if not os.path.isfile(path):
            raise ExportError(f"{path} not found: make the export with supmam-export CHECKPOINT {folder}")
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    if config.get("format") != FORMAT:
        raise ExportError(f"{config_path}: format {config.get('format')!r}, this runtime reads {FORMAT!r}")
    missing = [k for k in ENCODER_KEYS if k not in config.get("encoder", {})]
    if missing or "fbank" not in config or "head" not in config or "source" not in config:
        raise ExportError(f"{config_path}: incomplete config (missing {missing or 'fbank/head/source'}); export again")
    if file_sha256(weights_path) != config.get("weights_sha256"):
        raise ExportError(f"{weights_path}: its SHA-256 is not the one {config_path} records: the weights were "
                          "changed or come from another export")
    expected = fbank_description(FbankSettings(sample_rate=int(config["fbank"]["sample_rate"])))
    if config["fbank"] != json.loads(json.dumps(expected)):
        raise ExportError(f"{config_path}: its fbank settings differ from this runtime's {expected}")
    tensors = load_file(weights_path)
    encoder = PortableVit(config["encoder"])
    head = _Head(encoder.norm.normalized_shape[0], int(config["head"]["num_classes"])) if config["head"] else None
    for prefix, module in (("encoder.", encoder), ("classifier.", head)):
        if module is None:
            continue
        given = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        wanted = module.state_dict()
        wrong = [f"{k}: {tuple(given[k].shape)} != {tuple(v.shape)}" for k, v in wanted.items()
                 if k in given and given[k].shape != v.shape]
        absent, extra = sorted(set(wanted) - set(given)), sorted(set(given) - set(wanted))
        if wrong or absent or extra:
            raise ExportError(f"{weights_path}: does not fit the model {config_path} describes: shapes {wrong[:5]}, "
                              f"missing {absent[:5]}, unexpected {extra[:5]}")
        module.load_state_dict(given)
    return PortableModel(encoder, config, head, device)
