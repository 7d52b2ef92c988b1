"""Recognising a checkpoint's fixed position table: which layout ("audiomae" or "grid") it is.

AudioMAE's ``pos_embed`` / ``decoder_pos_embed`` are sin-cos tables built for ``patch_hw = (8, 64)``
(freq x time) while its tokens are time-major (the "audiomae" layout of
:func:`~supmam_plugin.core.positions.position_table`). A table is data: it is loaded as it is, but it
must be recognisably one of the layouts our models can rebuild for another input length.
"""
from __future__ import annotations

from typing import Optional

import torch

from ..positions import POSITION_LAYOUTS, identify_layout, position_table
from .read import CheckpointError

POSITION_TOLERANCE = 1e-4


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
