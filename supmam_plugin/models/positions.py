"""Fixed 2-D sine-cosine position embeddings for a (time x freq) patch grid (MAE's recipe)."""
from __future__ import annotations

from typing import Sequence

import torch

__all__ = ["sincos_1d_positions", "sincos_2d_positions"]


def sincos_1d_positions(embed_dim: int, positions: torch.Tensor) -> torch.Tensor:
    """1-D sin-cos embedding of positions.

    Args:
        embed_dim: D (even).
        positions: (M,) positions.

    Returns:
        (M, D) float64: ``[sin(p * omega), cos(p * omega)]`` with
        ``omega_i = 1 / 10000 ** (i / (D / 2))``, ``i = 0 .. D/2 - 1``.
    """
    if embed_dim % 2:
        raise ValueError(f"embed_dim must be even, got {embed_dim}")
    omega = torch.arange(embed_dim // 2, dtype=torch.float64) / (embed_dim / 2.0)
    omega = 1.0 / 10000.0 ** omega  # (D/2,)
    angles = positions.to(torch.float64)[:, None] * omega[None, :]  # (M, D/2)
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def sincos_2d_positions(embed_dim: int, grid: Sequence[int] = (64, 8), cls_token: bool = False) -> torch.Tensor:
    """Fixed 2-D sin-cos position embeddings for a ``(T, F)`` patch grid.

    Rows follow the row-major patch order: row ``t * F + f`` is patch (time t, freq f).
    As in MAE / AudioMAE (image x = width = frequency column, y = height = time row):
    the FIRST half of the channels encodes the FREQUENCY column ``f``, the SECOND half the
    TIME row ``t``; each half is ``[sin(pos * omega), cos(pos * omega)]`` with
    ``omega_i = 1 / 10000 ** (i / (D / 4))``, ``i = 0 .. D/4 - 1``.

    Args:
        embed_dim: D, a multiple of 4.
        grid: (T, F).
        cls_token: prepend a zero row for a class token.

    Returns:
        (T * F, D) float32, or (1 + T * F, D) with ``cls_token``.
    """
    if embed_dim % 4:
        raise ValueError(f"embed_dim must be a multiple of 4, got {embed_dim}")
    num_t, num_f = int(grid[0]), int(grid[1])
    time_pos = torch.arange(num_t).repeat_interleave(num_f)  # (T*F,) t of patch t*F+f
    freq_pos = torch.arange(num_f).repeat(num_t)  # (T*F,) f of patch t*F+f
    emb = torch.cat(
        [sincos_1d_positions(embed_dim // 2, freq_pos), sincos_1d_positions(embed_dim // 2, time_pos)],
        dim=1,
    )  # (T*F, D)
    if cls_token:
        emb = torch.cat([torch.zeros(1, embed_dim, dtype=emb.dtype), emb], dim=0)
    return emb.float()
