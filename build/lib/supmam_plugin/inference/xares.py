"""An X-ARES audio encoder (github.com/jimbozhang/xares) for any encoder this plugin loads.

X-ARES builds the encoder with no arguments, so the checkpoint comes from the environment:

    SUPMAM_CHECKPOINT=checkpoint_best.pt python -m xares.run supmam_plugin/inference/xares.py \\
        src/tasks/*.py                                 # from the root of this repository

In Python: ``SupmamEncoder("checkpoint_best.pt")``. It maps (B, T) waveforms at 16 kHz to
(B, T', D) frame embeddings, one every 160 ms (:meth:`AudioEncoder.embed_frames`, the same frames
as HEAR's timestamp embeddings), with ``output_dim``, ``sampling_rate`` and ``hop_size_in_ms``.
"""
from __future__ import annotations

import os

import torch
from torch import nn

from . import export  # the module, not its classes: X-ARES wants exactly one name ending in "Encoder" here

CHECKPOINT_VARIABLE = "SUPMAM_CHECKPOINT"


class SupmamEncoder(nn.Module):
    """``checkpoint``: a .pt of this plugin, an AudioMAE .pth or an export folder (``supmam-export``)
    (default: $SUPMAM_CHECKPOINT);
    ``layer``: frames from block ``layer`` instead of the final outputs."""

    def __init__(self, checkpoint: str | None = None, layer: int | None = None, batch_size: int = 16):
        super().__init__()
        checkpoint = checkpoint or os.environ.get(CHECKPOINT_VARIABLE)
        if not checkpoint:
            raise ValueError(f"SupmamEncoder needs a checkpoint: set {CHECKPOINT_VARIABLE}=/path/to/checkpoint.pt "
                             "(a .pt of this plugin or an AudioMAE .pth)")
        self.embedder = export.load_encoder_or_export(checkpoint)
        self.encoder = self.embedder.encoder  # registered, so .to(device) moves it
        self.layer = layer
        self.batch_size = batch_size
        self.output_dim = int(self.embedder.embed_dim)
        self.sampling_rate = self.embedder.sample_rate
        self.hop_size_in_ms = self.embedder.frame_hop_ms

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, T) waveforms at 16 kHz -> (B, T', D) float32 on the audio's device."""
        return self.embedder.embed_frames_batch(audio, self.layer, self.batch_size)[0]
