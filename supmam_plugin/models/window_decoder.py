"""SupMAM / AudioMAE decoder: AudioMAE's shifted-window blocks over the patch grid."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from .audiomae_swin_block import AudioMAESwinBlock, window_and_shift
from ..core.masking import gather_patches
from ..core.positions import position_table
from ..core.vit import VitEncoder

__all__ = ["WindowDecoder"]


class WindowDecoder(nn.Module):
    """Decoder that fills masked patches from the visible encoder tokens (AudioMAE's
    ``forward_decoder`` with ``decoder_mode=1``).

    visible tokens -> Linear(in_dim, width) -> append mask tokens -> unshuffle to patch
    order -> + fixed sin-cos positions (``pos_embed``, a persistent buffer: a checkpoint's
    table is loaded, not rebuilt) -> ``depth`` :class:`AudioMAESwinBlock` over the (T, F) grid
    (window ``window``; blocks with an odd index are shifted by ``shift``, so depth 1 is one
    unshifted block, as AudioMAE alternates no-shift / shift) -> LayerNorm (eps 1e-6).

    AudioMAE also embeds its encoder's [CLS] output and adds ``decoder_pos_embed[:, :1]`` to it,
    then drops it before the windowed blocks: it never reaches a patch, so this decoder takes
    the patch tokens only and its table has no [CLS] row.

    Args:
        in_dim: width of the visible (encoder) tokens.
        width: decoder width.
        depth: number of blocks (0 = none: embed, positions and norm only).
        heads: attention heads per block.
        grid: (T, F) patch grid; L = T * F.
        window: (window rows, window columns) in patches, clipped to a smaller grid side as AudioMAE
            does; a grid that is no multiple of it is padded, the padding kept out of the
            attention (:mod:`audiomae_swin_block`).
        shift: cyclic shift of the odd-indexed blocks.
        mlp_ratio: hidden width of the blocks' MLP over ``width``.
        drop_path: stochastic depth rate of every block.
        position_layout: "audiomae" or "grid" (see :func:`positions.position_table`).
    """

    def __init__(
        self,
        in_dim: int,
        grid: Sequence[int],
        width: int = 512,
        depth: int = 1,
        heads: int = 16,
        window: Sequence[int] = (4, 4),
        shift: Sequence[int] = (2, 0),
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
        position_layout: str = "audiomae",
    ):
        super().__init__()
        self.grid = (int(grid[0]), int(grid[1]))
        self.num_patches = self.grid[0] * self.grid[1]
        self.width = width

        self.embed = nn.Linear(in_dim, width)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width))
        self.register_buffer("pos_embed", position_table(width, self.grid, position_layout).unsqueeze(0))  # (1, L, W)
        self.blocks = nn.ModuleList(
            AudioMAESwinBlock(
                width, heads, self.grid, window=window, shift=tuple(shift) if i % 2 == 1 else (0, 0),
                mlp_ratio=mlp_ratio, drop_path=drop_path,
            )
            for i in range(depth)
        )
        window_and_shift(self.grid, window, shift)  # a bad window fails at any depth, 0 included
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """MAE's init: xavier-uniform Linear weights (the position-bias MLPs' too, as AudioMAE's
        ``self.apply(_init_weights)`` does), zero biases, unit LayerNorms, mask token N(0, 0.02);
        the blocks' temperatures start at 1."""
        self.apply(VitEncoder.init_module_weights)
        nn.init.normal_(self.mask_token, std=0.02)

    def forward(self, visible_tokens: torch.Tensor, restore_index: torch.Tensor) -> torch.Tensor:
        """
        Args:
            visible_tokens: (B, K, in_dim) encoder outputs of the visible patches (no cls).
            restore_index: (B, L) long, from :func:`masking.random_masking` /
                :func:`masking.split_by_mask`.

        Returns:
            (B, L, width) in patch order (index t * F + f).
        """
        batch, num_visible, _ = visible_tokens.shape
        if restore_index.shape != (batch, self.num_patches):
            raise ValueError(
                f"restore_index must be (B, L) = ({batch}, {self.num_patches}), got {tuple(restore_index.shape)}"
            )
        x = self.embed(visible_tokens)  # (B, K, W)
        mask_tokens = self.mask_token.to(x.dtype).expand(batch, self.num_patches - num_visible, -1)
        x = torch.cat([x, mask_tokens], dim=1)  # (B, L, W): visible first, then masked
        x = gather_patches(x, restore_index)  # (B, L, W) in patch order
        x = x + self.pos_embed.to(x.dtype)
        for block in self.blocks:
            x = block(x)  # (B, L, W)
        return self.norm(x)  # (B, L, W)
