"""CLAP's contrastive objective: symmetric InfoNCE between audio and caption embeddings.

Each clip's own caption is its positive; every other caption of the batch, and with several
workers every caption of every worker's batch, is a negative (and the same for each caption
against the clips). The embeddings of the other workers are gathered WITH their gradients
(``torch.distributed.nn.all_gather``), so N workers x B clips give the loss and the gradients of
one worker with N x B clips: each worker sums the loss of its own rows, fairseq's trainer sums the
gradients and divides by the summed sample size (laion_clap's ``ClipLoss`` with ``local_loss`` and
``gather_with_grad`` computes the same thing; written here for fairseq's sample-size convention).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MAX_LOGIT_SCALE = math.log(100.0)  # CLIP and CLAP clamp the learned temperature at 1/100
INITIAL_LOGIT_SCALE = math.log(1 / 0.07)  # CLIP's and CLAP's initial temperature, 0.07


def gather_with_grad(features: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(every worker's ``features`` concatenated in rank order, this worker's first row in it);
    one worker: (``features``, 0). features: (B, D) -> (W x B, D); B must be equal on every worker."""
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_initialized() or dist.get_world_size() == 1:
        return features, 0
    import torch.distributed.nn

    gathered = torch.distributed.nn.all_gather(features)
    return torch.cat(gathered, dim=0), dist.get_rank() * features.size(0)


def contrastive_loss_sum(audio: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Summed symmetric InfoNCE of this worker's rows: (CE(audio -> all captions) + CE(caption ->
    all clips)) / 2, summed over the B local pairs; divide by the total pairs for the mean.

    audio, text: (B, D) L2-normalised embeddings, row i of both from clip i; logit_scale: () the
    log of the inverse temperature, clamped to [0, log 100]."""
    if audio.shape != text.shape:
        raise ValueError(f"audio embeddings {tuple(audio.shape)} and text embeddings {tuple(text.shape)} differ")
    scale = logit_scale.clamp(0, MAX_LOGIT_SCALE).exp()
    all_audio, first = gather_with_grad(audio)
    all_text, _ = gather_with_grad(text)
    targets = torch.arange(first, first + audio.size(0), device=audio.device)
    audio_to_text = scale * audio @ all_text.t()  # (B, W x B)
    text_to_audio = scale * text @ all_audio.t()
    return (F.cross_entropy(audio_to_text.float(), targets, reduction="sum")
            + F.cross_entropy(text_to_audio.float(), targets, reduction="sum")) / 2
