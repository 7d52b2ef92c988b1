"""Patch masking for masked audio modelling (pure, vectorised functions).

Patches of the (time x freq) spectrogram grid are flattened row-major: the patch at
time row ``t`` and frequency column ``f`` of a ``(T, F)`` grid has index ``t * F + f``
(for the 1024 x 128 fbank and 16 x 16 patches: ``T, F = 64, 8``, 512 patches).

Masks follow MAE: ``1`` (or ``True``) = masked, ``0`` = visible.

- :func:`masking_from_noise` - pretraining: the patches of least noise per clip stay visible
  (:func:`clip_noise`: noise that depends only on the clip id, the seed and the update).
- :func:`structured_masking` - fine-tuning (AudioMAE): whole time rows and whole
  frequency columns of patches.
- :func:`split_by_mask` - turn any mask with the same masked count in every row into
  ``(visible_index, restore_index)``.
- :func:`gather_patches` - pick patches by index.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch

__all__ = ["masking_from_noise", "clip_noise", "structured_masking", "split_by_mask", "gather_patches"]


def _uniform_noise(shape, device, generator: Optional[torch.Generator]) -> torch.Tensor:
    """Uniform [0, 1) noise drawn on the generator's device, then moved to ``device``."""
    if generator is not None:
        noise = torch.rand(shape, generator=generator, device=generator.device)
        return noise.to(device) if device is not None else noise
    return torch.rand(shape, device=device)


def _num_visible(num_patches: int, mask_ratio: float) -> int:
    """K = int(L * (1 - mask_ratio)), as MAE; the 1e-6 only absorbs float error
    (so L=10, ratio 0.9 gives 1, not 0 from 0.9999999)."""
    return int(num_patches * (1.0 - mask_ratio) + 1e-6)


def masking_from_noise(noise: torch.Tensor, mask_ratio: float) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MAE-style masking for given per-patch noise (B, L): the ``K = int(L * (1 - mask_ratio))``
    patches with the smallest noise stay visible.

    Returns:
        visible_index: (B, K) long, the visible patch indices in ASCENDING patch order (unlike
            MAE, which keeps them in noise/argsort order).
        mask: (B, L) float, 1 = masked, 0 = visible.
        restore_index: (B, L) long: for ``tokens = cat([visible (B, K, D), masked (B, L - K, D)], 1)``
            where the masked tokens stand for the masked patches in ascending patch order,
            ``gather_patches(tokens, restore_index)`` puts every token back at its patch position.
    """
    batch_size, num_patches = noise.shape
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
    num_visible = _num_visible(num_patches, mask_ratio)
    if num_visible < 1:
        raise ValueError(f"mask_ratio {mask_ratio} leaves no visible patch out of {num_patches}")
    ranks = torch.argsort(noise, dim=1, stable=True)  # (B, L): patch indices, smallest noise first
    mask = torch.ones(batch_size, num_patches, device=noise.device)
    mask.scatter_(1, ranks[:, :num_visible], 0.0)  # (B, L) 1 = masked
    visible_index, restore_index = split_by_mask(mask)
    return visible_index, mask, restore_index


def clip_noise(clip_ids: torch.Tensor, num_patches: int, salt: int) -> torch.Tensor:
    """Uniform-looking [0, 1) noise (B, L) that depends only on (clip id, patch, salt).

    Masks drawn from it are the same for a clip whatever batch or process it lands in, so one
    process and N data-parallel processes mask identically. Torch's generators cannot be
    keyed per sample without a loop over the batch, so we hash: a 32-bit integer mix
    (xor-shift / multiply rounds) of the key, computed in int64 without overflow.
    """
    mask32 = 0xFFFFFFFF
    patch = torch.arange(num_patches, device=clip_ids.device, dtype=torch.int64)
    key = (clip_ids.to(torch.int64).unsqueeze(1) * 0x9E3779B1 + patch * 0x85EBCA77 + salt) & mask32  # (B, L)
    for _ in range(3):
        key = ((key >> 16) ^ key) * 0x45D9F3B & mask32
    key = (key >> 16) ^ key
    return key.to(torch.float64).div(2.0**32).to(torch.float32)


def split_by_mask(mask: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Indices of the visible patches and the inverse permutation, from a mask.

    Args:
        mask: (B, L) bool or float, nonzero = masked; every row must mask the same number
            of patches (so the visible tokens form a (B, K, D) tensor).

    Returns:
        visible_index: (B, K) long, ascending.
        restore_index: (B, L) long, ``argsort`` of ``[visible_index; masked_index]``
            (both ascending), see :func:`masking_from_noise`.
    """
    masked = mask.bool()
    counts = masked.sum(dim=1)
    if counts.numel() and not bool((counts == counts[0]).all()):
        raise ValueError("every sample must mask the same number of patches")
    num_visible = mask.shape[1] - (int(counts[0]) if counts.numel() else 0)
    # A stable sort of the 0/1 mask lists visible patches first, masked second, each
    # in ascending patch order.
    order = torch.argsort(masked.to(torch.uint8), dim=1, stable=True)  # (B, L)
    restore_index = torch.argsort(order, dim=1)  # (B, L) inverse permutation
    return order[:, :num_visible], restore_index


def structured_masking(
    batch_size: int,
    grid: Sequence[int],
    time_ratio: float,
    freq_ratio: float,
    device=None,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """AudioMAE's fine-tuning masking: whole time rows and whole frequency columns.

    Per clip, ``round(T * time_ratio)`` random time rows and ``round(F * freq_ratio)``
    random frequency columns of the ``(T, F)`` patch grid are masked (Python's
    ``round``: 64 * 0.2 -> 13 rows, 8 * 0.2 -> 2 columns). A patch is masked if its row
    or its column is, so every clip masks ``rows * F + cols * T - rows * cols`` patches
    and keeps ``(T - rows) * (F - cols)`` (same count per clip, see :func:`split_by_mask`).

    Returns:
        mask: (B, T * F) float, 1 = masked, row-major (index ``t * F + f``).
    """
    num_t, num_f = int(grid[0]), int(grid[1])
    if not (0.0 <= time_ratio < 1.0 and 0.0 <= freq_ratio < 1.0):
        raise ValueError(f"time_ratio and freq_ratio must be in [0, 1), got {time_ratio}, {freq_ratio}")
    masked_rows = int(round(num_t * time_ratio))
    masked_cols = int(round(num_f * freq_ratio))
    if device is None and generator is not None:
        device = generator.device

    noise = _uniform_noise((batch_size, num_t + num_f), device, generator)
    row_rank = torch.argsort(torch.argsort(noise[:, :num_t], dim=1), dim=1)  # (B, T) rank of each row
    col_rank = torch.argsort(torch.argsort(noise[:, num_t:], dim=1), dim=1)  # (B, F)
    row_masked = row_rank < masked_rows  # (B, T) the rows with the smallest noise
    col_masked = col_rank < masked_cols  # (B, F)
    mask = row_masked[:, :, None] | col_masked[:, None, :]  # (B, T, F)
    return mask.reshape(batch_size, num_t * num_f).float()


def gather_patches(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Pick patches (tokens) by index along dim 1.

    Args:
        x: (B, L, D) (any trailing dims, or none: (B, L)).
        index: (B, K) long.

    Returns:
        (B, K, D): ``out[b, k] = x[b, index[b, k]]``.
    """
    trailing = x.shape[2:]
    flat = x.reshape(x.shape[0], x.shape[1], -1)  # (B, L, D')
    out = torch.gather(flat, 1, index.unsqueeze(-1).expand(-1, -1, flat.shape[-1]))
    return out.reshape(index.shape[0], index.shape[1], *trailing)
