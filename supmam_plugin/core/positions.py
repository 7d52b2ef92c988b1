"""Fixed 2-D sine-cosine position embeddings for a (time x freq) patch grid (MAE's recipe)."""
from __future__ import annotations

from typing import Optional, Sequence

import torch

__all__ = ["sincos_1d_positions", "sincos_2d_positions", "position_table", "identify_layout", "POSITION_LAYOUTS"]


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


def sincos_2d_positions(embed_dim: int, grid: Sequence[int], cls_token: bool = False) -> torch.Tensor:
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


# The two layouts of a fixed position table over the time-major token order (token t * F + f):
# "grid": sin-cos of the true (time row, freq column) of each token;
# "audiomae": AudioMAE's table, built for patch_hw = (F, T) = (8, 64) although its tokens are
# time-major, i.e. sincos_2d_positions(D, (F, T)) read in token order (token i gets the
# "column" i % T and the "row" i // T). Every released AudioMAE checkpoint carries this one.
POSITION_LAYOUTS = ("audiomae", "grid")


def position_table(embed_dim: int, grid: Sequence[int], layout: str = "audiomae") -> torch.Tensor:
    """Fixed (T * F, D) float32 position table for the time-major tokens of a ``(T, F)`` grid.

    ``layout``: "grid" = :func:`sincos_2d_positions` of ``(T, F)``; "audiomae" = the same
    recipe for ``(F, T)`` (AudioMAE's ``get_2d_sincos_pos_embed_flexible(D, patch_hw)``)."""
    num_t, num_f = int(grid[0]), int(grid[1])
    if layout == "grid":
        return sincos_2d_positions(embed_dim, (num_t, num_f))
    if layout == "audiomae":
        return sincos_2d_positions(embed_dim, (num_f, num_t))
    raise ValueError(f"unknown position layout {layout!r}: choose one of {list(POSITION_LAYOUTS)}")


def identify_layout(table: torch.Tensor, grid: Sequence[int], tolerance: float = 1e-4) -> Optional[str]:
    """Which of :data:`POSITION_LAYOUTS` a (L, D) table (no [CLS] row) is, within ``tolerance``
    (max abs difference); None when it is neither (another grid, patching, or learned positions).
    On a square grid both layouts are the same table; "audiomae" is returned."""
    table = table.detach().float().cpu()
    num_t, num_f = int(grid[0]), int(grid[1])
    if table.dim() != 2 or table.size(0) != num_t * num_f or table.size(1) % 4:
        return None
    for layout in POSITION_LAYOUTS:
        if (table - position_table(table.size(1), grid, layout)).abs().max().item() <= tolerance:
            return layout
    return None
