"""LAION-CLAP as transformers saves it, as the ``laion_clap`` teacher: a folder holding
``config.json`` (``model_type: clap``) and ``model.safetensors`` (transformers' ``ClapModel``:
``laion/clap-htsat-unfused``, ``laion/larger_clap_general``, ...), the way most users download CLAP now.

``model.teacher=laion_clap model.teacher_checkpoint=FOLDER`` builds transformers' own
``ClapAudioModelWithProjection`` from the folder, offline (``local_files_only``), reading
safetensors only, and takes the map its ``last_hidden_state`` gives: HTS-AT's last stage,
(C, 2 frequency rows, 32 time steps), the map the release teacher takes before ``tscam_conv``.

What the teacher hears (``front_end``) is a stated choice, because the two packages compute the
mel differently: laion-clap inside the model (torchlibrosa's STFT and mel bank, on the tensor),
transformers outside it (``ClapFeatureExtractor``, numpy). "checkpoint" (the default) is the mel
LAION-CLAP's checkpoints were trained with: laion-clap's, from the parameters of its model
config (for a fused model, ``laion/clap-htsat-fused``, the mel of laion-clap's data pipeline, as
its fusion releases). "transformers" is the folder's feature extractor. docs/pretraining.md gives how
far apart they are.
"""
from __future__ import annotations

import json
import logging
import os

import torch
from torch import nn

from ..core.checkpoints import CheckpointError
from .laion_clap import HTSAT_NAME_BY_EMBED_DIM, FusionMel, fusion_input, read_clap_model_config
from .teacher import Teacher, fit_to_length

logger = logging.getLogger(__name__)

FRONT_ENDS = ("checkpoint", "transformers")
WEIGHTS_FILE = "model.safetensors"


def is_transformers_folder(path: str) -> bool:
    """Whether ``path`` is a folder (a transformers model is a folder; a release is a file)."""
    return os.path.isdir(path)


def read_folder_config(folder: str):
    """transformers' ``ClapConfig`` of ``folder``, read offline. A folder that holds no CLAP, or no
    safetensors weights (a ``pytorch_model.bin`` is a pickle: it could run code), is refused."""
    config_path = os.path.join(folder, "config.json")
    expected = ("a transformers CLAP folder (config.json with model_type 'clap' and model.safetensors, e.g. "
                "laion/clap-htsat-unfused) or a LAION-CLAP release .pt")
    if not os.path.isfile(config_path):
        raise CheckpointError(f"{folder}: no config.json, so not a transformers model folder; "
                              f"model.teacher_checkpoint takes {expected}")
    with open(config_path, encoding="utf-8") as f:
        model_type = json.load(f).get("model_type")
    if model_type != "clap":
        raise CheckpointError(f"{folder}: its config.json says model_type {model_type!r}, not 'clap': not a CLAP; "
                              f"model.teacher_checkpoint takes {expected}")
    if not os.path.isfile(os.path.join(folder, WEIGHTS_FILE)):
        raise CheckpointError(f"{folder}: no {WEIGHTS_FILE}; only safetensors weights are read (a pytorch_model.bin "
                              "is a pickle that can run code): save the model with safe_serialization=True")
    try:
        from transformers import ClapConfig
    except ImportError as e:
        raise ImportError(f"{folder} is a transformers CLAP: install transformers (pip install 'transformers>=4.40') "
                          "to read it") from e
    return ClapConfig.from_pretrained(folder, local_files_only=True)


class LaionClapMel(nn.Module):
    """laion-clap's in-model front end, built here from its model config's ``audio_cfg``: a Hann
    STFT (centered, reflect-padded), power spectrum, Slaney mel bank, 10 log10(max(mel, 1e-10))
    (torchlibrosa's Spectrogram and LogmelFilterBank, as HTS-AT builds them).

    forward: (B, S) float32 waveform -> (B, 1, frames, mel_bins) log-mel."""

    def __init__(self, audio_cfg: dict):
        super().__init__()
        from torchlibrosa.stft import LogmelFilterBank, Spectrogram

        n_fft, hop = audio_cfg["window_size"], audio_cfg["hop_size"]
        self.spectrogram = Spectrogram(n_fft=n_fft, hop_length=hop, win_length=n_fft, window="hann", center=True,
                                       pad_mode="reflect", freeze_parameters=True)
        self.logmel = LogmelFilterBank(sr=audio_cfg["sample_rate"], n_fft=n_fft, n_mels=audio_cfg["mel_bins"],
                                       fmin=audio_cfg["fmin"], fmax=audio_cfg["fmax"], ref=1.0, amin=1e-10,
                                       top_db=None, freeze_parameters=True)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.logmel(self.spectrogram(waveform.float()))


class TransformersClapTeacher(Teacher):
    """The audio side of a transformers CLAP folder (see the module), frozen: one target per student patch.

    Args:
        folder: the transformers folder.
        feature: "tokens" (the last-stage map) or "projected" (each token through the folder's audio projection).
        grid, interpolation, student_seconds: as :class:`~supmam_plugin.teachers.laion_clap.ClapTeacher`.
        front_end: "checkpoint" (laion-clap's in-model mel, what the release was trained on) or
            "transformers" (the folder's ClapFeatureExtractor).
        build_now: False when the maps come from a cache (the model is built at the first token_map).
    """

    name = "laion_clap"

    def __init__(self, folder: str, feature: str = "tokens", grid=(64, 8), interpolation: str = "bilinear",
                 student_seconds: float | None = None, front_end: str = "checkpoint", build_now: bool = True):
        super().__init__(grid, student_seconds, interpolation)
        if front_end not in FRONT_ENDS:
            raise ValueError(f"front_end must be one of {FRONT_ENDS}, got {front_end!r}")
        self.checkpoint, self.feature, self.front_end = str(folder), feature, front_end
        config = read_folder_config(folder)
        audio = config.audio_config
        self.fusion = bool(audio.enable_fusion)  # laion/clap-htsat-fused: the fusion releases' model
        self.model_name = HTSAT_NAME_BY_EMBED_DIM.get(audio.patch_embeds_hidden_size)
        if self.model_name is None:
            raise CheckpointError(f"{folder}: an HTS-AT of width {audio.patch_embeds_hidden_size}, none of laion-clap's "
                                  f"({sorted(HTSAT_NAME_BY_EMBED_DIM)})")
        self.audio_cfg = read_clap_model_config(self.model_name)["audio_cfg"]
        if audio.num_mel_bins != self.audio_cfg["mel_bins"]:
            raise CheckpointError(f"{folder}: {audio.num_mel_bins} mel bins, laion-clap's {self.model_name} hears "
                                  f"{self.audio_cfg['mel_bins']}")
        self.sample_rate = self.audio_cfg["sample_rate"]
        self.clip_samples = self.audio_cfg["clip_samples"]
        self.seconds = self.clip_samples / self.sample_rate
        self.token_width = audio.patch_embeds_hidden_size * 2 ** (len(audio.depths) - 1)
        self.output_dim = config.projection_dim if feature == "projected" else self.token_width
        self.model = None
        self.mel = None  # "checkpoint": what the release was trained on (a fusion model: laion-clap's pipeline mel)
        self.extractor = None  # "transformers": the folder's ClapFeatureExtractor, read once
        if front_end == "checkpoint":
            self.mel = FusionMel(self.audio_cfg) if self.fusion else LaionClapMel(self.audio_cfg)
        else:
            from transformers import ClapFeatureExtractor

            self.extractor = ClapFeatureExtractor.from_pretrained(folder, local_files_only=True)
        if build_now:
            self.build()
        self.freeze()

    @classmethod
    def from_config(cls, cfg, grid, student_seconds: float | None = None, cached: bool = False):
        return cls(cfg.teacher_checkpoint, cfg.clap_feature, grid, cfg.teacher_interpolation, student_seconds,
                   front_end=getattr(cfg, "clap_front_end", "checkpoint"), build_now=not cached)

    def build(self) -> None:
        """transformers' ClapAudioModelWithProjection with the folder's weights (safetensors, offline)."""
        if self.model is not None:
            return
        from transformers import ClapAudioModelWithProjection

        model, info = ClapAudioModelWithProjection.from_pretrained(
            self.checkpoint, local_files_only=True, use_safetensors=True, output_loading_info=True)
        if info["missing_keys"]:
            raise CheckpointError(f"{self.checkpoint}: {WEIGHTS_FILE} lacks {len(info['missing_keys'])} weights of the "
                                  f"audio model, e.g. {sorted(info['missing_keys'])[:3]}: not a whole CLAP")
        self.model = model.float()
        self.freeze()
        if self.followed is not None:
            self.follow(self.followed, force=True)

    def _apply(self, fn, recurse=True):
        # `.half()` and `.to(dtype)` come here: the mel stays float32 (a float16 power spectrum overflows)
        super()._apply(fn, recurse)
        if self.mel is not None:
            self.mel.float()
        return self

    def features(self, waveform_48k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, S) waveform -> the model's input by ``front_end``: (input_features (B, 1, frames, mel), or
        (B, 4, frames, mel) for a fusion model: the mel four times, as laion-clap's pipeline gives a clip
        of at most 10 s; is_longer (B, 1) bool)."""
        if self.fusion and self.mel is not None:  # the release teacher's input, in transformers' names
            clips = fusion_input(waveform_48k, self.clip_samples, self.mel.to(waveform_48k.device))
            return clips["mel_fusion"], clips["longer"][:, None]
        waveform = fit_to_length(waveform_48k, self.clip_samples).float()
        if self.mel is not None:
            return self.mel.to(waveform.device)(waveform), torch.zeros(len(waveform), 1, dtype=torch.bool,
                                                                        device=waveform.device)
        found = self.extractor([w.cpu().numpy() for w in waveform], sampling_rate=self.sample_rate, return_tensors="pt")
        is_longer = found.get("is_longer", torch.zeros(len(waveform), 1, dtype=torch.bool))
        return found["input_features"].to(waveform.device), is_longer.to(waveform.device)

    @torch.no_grad()
    def token_map(self, waveform_48k: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(B, S) waveform at 48 kHz (zero-padded or cropped to the model's 10 s; ``lengths`` unused,
        as the release teacher) -> (B, C, 2, 32): transformers' ``last_hidden_state``."""
        if waveform_48k.dim() != 2:
            raise ValueError(f"expected a (batch, samples) waveform, got shape {tuple(waveform_48k.shape)}")
        self.build()
        device = next(self.model.parameters()).device
        features, is_longer = self.features(waveform_48k.to(device))
        dtype = next(self.model.parameters()).dtype
        return self.model.audio_model(input_features=features.to(dtype), is_longer=is_longer).last_hidden_state

    @torch.no_grad()
    def finish_targets(self, targets: torch.Tensor) -> torch.Tensor:
        """(B, L, C) sampled tokens -> the folder's audio projection (B, L, projection_dim) when
        ``feature == "projected"``."""
        if self.feature != "projected":
            return targets
        self.build()
        return self.model.audio_projection(targets.to(next(self.model.parameters()).dtype))

    def identity(self) -> dict:
        """The folder's config and weights (SHA-256 of each, not its path) and the front end: a cache
        made by another folder or another front end is refused."""
        from ..core.file_hash import file_sha256

        digest = "+".join(file_sha256(os.path.join(self.checkpoint, name)) for name in ("config.json", WEIGHTS_FILE))
        return {"teacher": "laion_clap", "variant": f"{self.model_name} transformers folder, {self.front_end} mel",
                "checkpoint_sha256": digest}
