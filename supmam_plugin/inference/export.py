"""The portable export format, written and read here: ``model.safetensors`` + ``config.json``.

    from supmam_plugin.inference.export import load_export

    model = load_export("exports/as20k")                   # model.safetensors + config.json
    out = model.embed(waveform, sample_rate=44100)         # {"clip": (1, D)}
    frames, times_ms = model.embed_frames(waveform)        # [(T, D)], [(T,)]: one frame every 160 ms
    scores = model.scores(waveform)                        # (1, C) class probabilities, if it has a head

Reading needs torch, numpy and safetensors only (soundfile / soxr only to read files or resample);
importing this module imports no fairseq, timm or omegaconf. The encoder is the plugin's own
:class:`~supmam_plugin.core.vit.VitEncoder`; audio goes through the plugin's Kaldi fbank and the same
input handling, windows and frames as :class:`~supmam_plugin.inference.encoder.AudioEncoder` (this is
one). :func:`write_export` (``supmam-export``) writes it from any checkpoint the plugin reads.
"""
from __future__ import annotations

import json
import os

import numpy as np
import torch
from torch import nn

from ..core.checkpoints.read import CheckpointError, load_strict
from ..core.fbank import AUDIOSET_MEAN, AUDIOSET_STD, FbankSettings
from ..core.file_hash import file_sha256
from ..core.vit import VitEncoder, VitEncoderConfig
from .encoder import AudioEncoder, load_encoder

FORMAT = "supmam-encoder/1"
# config.json's "encoder" keys -> (the VitEncoderConfig field, its JSON type), in the file's order
EXPORT_FIELDS = {"embed_dim": ("encoder_embed_dim", int), "layers": ("encoder_layers", int),
                 "heads": ("encoder_heads", int), "mlp_ratio": ("mlp_ratio", float), "patch_size": ("patch_size", int),
                 "input_frames": ("input_frames", int), "num_mel_bins": ("num_mel_bins", int),
                 "cls_token": ("cls_token", bool), "position_layout": ("position_layout", str)}
# every key but position_layout must be there (the table itself comes with the weights)
ENCODER_KEYS = tuple(key for key in EXPORT_FIELDS if key != "position_layout")


class ExportError(CheckpointError):
    """An export that cannot be used: the message names the file and what is wrong."""


def fbank_description(settings: FbankSettings = FbankSettings()) -> dict:
    """What an export records of the model's input: the fbank settings and the normalisation."""
    import dataclasses

    return {**dataclasses.asdict(settings), "kind": "kaldi", "normalisation": {"mean": AUDIOSET_MEAN,
            "std": AUDIOSET_STD, "formula": "(fbank - mean) / (2 * std)"}}


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

    def __init__(self, encoder: VitEncoder, config: dict, head: _Head | None, device="cpu"):
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
        from ..core.audio import read_mono

        read = [read_mono(path) for path in ([paths] if isinstance(paths, str) else paths)]
        return np.concatenate([self.scores(samples, rate, batch_size=batch_size) for samples, rate in read])


def load_encoder_or_export(path: str, device: str | torch.device = "cpu") -> AudioEncoder:
    """An export folder (:func:`load_export`) or a checkpoint file (:func:`load_encoder`): what the
    HEAR and X-ARES wrappers take."""
    if os.path.isdir(path):
        return load_export(path, device)
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
    encoder = VitEncoder(_encoder_config(config["encoder"]))
    head = _Head(encoder.norm.normalized_shape[0], int(config["head"]["num_classes"])) if config["head"] else None
    for prefix, module in (("encoder.", encoder), ("classifier.", head)):
        if module is not None:
            load_strict(module, {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}, weights_path,
                        what=prefix.rstrip("."), fix=f"the export does not fit the model {config_path} describes; "
                        "export again", error=ExportError)
    return PortableModel(encoder, config, head, device)


def _encoder_config(encoder: dict) -> VitEncoderConfig:
    """The encoder architecture an export's ``config.json`` describes."""
    return VitEncoderConfig(**{field: kind(encoder[key]) for key, (field, kind) in EXPORT_FIELDS.items() if key in encoder})


def _class_names(path: str | None, task_cfg: dict, num_classes: int, checkpoint: str) -> list[str]:
    """The head's class names: from ``path`` (one per line, the first word), else the fairseq run's
    ``dict.{labels}.txt`` (``task_cfg``: its task config; empty for AudioMAE files), else "0", "1",
    ... (with a warning)."""
    import logging

    from ..core.manifest import read_class_list

    if path is None and task_cfg.get("data"):
        guess = os.path.join(str(task_cfg["data"]), f"dict.{task_cfg.get('labels') or 'label'}.txt")
        path = guess if os.path.isfile(guess) else None
    if path is None:
        logging.getLogger(__name__).warning(
            f"{checkpoint}: no class names (give --class-names FILE); the export numbers its classes")
        return [str(i) for i in range(num_classes)]
    names = read_class_list(path)
    if len(names) != num_classes:
        raise ValueError(f"{path}: {len(names)} class names for a head of {num_classes} classes")
    return names


def write_export(checkpoint: str, out_dir: str, class_names: str | None = None) -> dict[str, str]:
    """Write ``out_dir/model.safetensors`` and ``out_dir/config.json`` of any checkpoint the plugin
    reads (a classifier's head too, with its class names); returns their paths."""
    from safetensors.torch import save_file

    from ..core.checkpoints import audiomae_head, fairseq_configs, read_checkpoint, read_encoder

    state = read_checkpoint(checkpoint)
    found = read_encoder(checkpoint, state)
    arch = VitEncoderConfig(**found.architecture)
    tensors = {f"encoder.{k}": v.float().contiguous() for k, v in found.weights.items()}
    head, multi_label, task_cfg = None, False, {}
    if found.kind == "supmam_classifier":
        head = {k: v for k, v in state["model"].items() if k.startswith(("fc_norm.", "head."))}
        task_cfg = fairseq_configs(state, checkpoint)[2]
        multi_label = bool(task_cfg.get("multi_label", False))
    elif found.kind == "audiomae":
        head = audiomae_head(state, checkpoint)
        multi_label = True  # AudioMAE's fine-tuning is AudioSet's (BCE)
    head_config = None
    if head:
        tensors.update({f"classifier.{k}": v.float().contiguous() for k, v in head.items()})
        num_classes = int(head["head.weight"].shape[0])
        head_config = {"num_classes": num_classes, "multi_label": multi_label,
                       "class_names": _class_names(class_names, task_cfg, num_classes, checkpoint)}
    os.makedirs(out_dir, exist_ok=True)
    weights_path, config_path = os.path.join(out_dir, "model.safetensors"), os.path.join(out_dir, "config.json")
    save_file(tensors, weights_path, metadata={"format": FORMAT})
    config = {
        "format": FORMAT,
        "encoder": {**{key: kind(getattr(arch, field)) for key, (field, kind) in EXPORT_FIELDS.items()},
                    "positions": "encoder.pos_embed (1, L, D), time-major"},
        "fbank": fbank_description(FbankSettings(sample_rate=found.sample_rate)),
        "head": head_config,
        "source": {"path": os.path.abspath(checkpoint), "sha256": file_sha256(checkpoint), "kind": found.kind},
        "weights_sha256": file_sha256(weights_path),
    }
    with open(config_path, "w", encoding="utf-8") as f:
        json.dump(config, f, indent=1)
    return {"weights": weights_path, "config": config_path}
