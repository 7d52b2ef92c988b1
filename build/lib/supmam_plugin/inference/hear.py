"""The HEAR 2021 API (hearbenchmark.com) for any encoder this plugin loads:

    import supmam_plugin.inference.hear as hear

    model = hear.load_model("checkpoint_best.pt")          # or pretraining .pt, AudioMAE .pth
    scene = hear.get_scene_embeddings(audio, model)       # (n, D) float32
    frames, times_ms = hear.get_timestamp_embeddings(audio, model)  # (n, T, D), (n, T)

``audio``: (n_sounds, n_samples) float tensor in [-1, 1] at ``model.sample_rate`` (16 kHz), on
the model's device. Scene embeddings are the clip embeddings of
:meth:`supmam_plugin.inference.encoder.AudioEncoder.embed` (mean over the patches, long sounds averaged
over 10.24 s windows); timestamp embeddings are its frame embeddings
(:meth:`~supmam_plugin.inference.encoder.AudioEncoder.embed_frames`): one every 160 ms (one column of
16 x 16 patches: the finest step the patch grid has), stamped at the centre of the 16 fbank frames
they describe, none past the end of the audio, any length (10 minutes and more: back-to-back
windows, ``batch_size`` at a time). Each sound is embedded on its own: the other sounds of a batch
change nothing.

With hear-eval-kit: ``python3 -m heareval.embeddings.runner supmam_plugin.inference.hear --model CHECKPOINT``.
"""
from __future__ import annotations

import torch
from torch import nn

from .export import load_encoder_or_export


class HearModel(nn.Module):
    """An encoder with the attributes HEAR asks for; ``.to(device)`` moves it."""

    def __init__(self, path: str, layer: int | None = None, batch_size: int = 16):
        super().__init__()
        self.embedder = load_encoder_or_export(path)  # not a Module: its encoder is registered below
        self.encoder = self.embedder.encoder
        self.layer = layer
        self.batch_size = batch_size
        self.sample_rate = self.embedder.sample_rate
        self.scene_embedding_size = int(self.embedder.embed_dim)
        self.timestamp_embedding_size = int(self.embedder.embed_dim)

    @property
    def hop_ms(self) -> float:
        return self.embedder.frame_hop_ms


def load_model(model_file_path: str = "", layer: int | None = None, batch_size: int = 16) -> HearModel:
    """HEAR's ``load_model``: a checkpoint this plugin reads (``supmam`` pretraining, fine-tuned
    ``supmam_classifier``, AudioMAE ``.pth``) or an export folder (``supmam-export``); ``layer``: frames from block ``layer`` instead of the
    final outputs."""
    if not model_file_path:
        raise ValueError("supmam_plugin.inference.hear.load_model needs a checkpoint (a .pt of this plugin or an AudioMAE .pth) "
                         "or an export folder (supmam-export)")
    return HearModel(model_file_path, layer, batch_size).eval()


def get_scene_embeddings(audio: torch.Tensor, model: HearModel) -> torch.Tensor:
    """(n_sounds, n_samples) at 16 kHz -> (n_sounds, D) float32, on the audio's device."""
    if audio.ndim != 2:
        raise ValueError(f"HEAR audio must be (n_sounds, n_samples), got shape {tuple(audio.shape)}")
    scene = model.embedder.embed(audio, model.sample_rate, batch_size=model.batch_size)["clip"]
    return torch.from_numpy(scene).to(audio.device)


def get_timestamp_embeddings(audio: torch.Tensor, model: HearModel) -> tuple[torch.Tensor, torch.Tensor]:
    """(n_sounds, n_samples) at 16 kHz -> ((n_sounds, T, D) float32 embeddings, (n_sounds, T)
    float32 timestamps in ms, the centres of the frames they describe), on the audio's device."""
    return model.embedder.embed_frames_batch(audio, model.layer, model.batch_size)
