"""SupMAM / AudioMAE decoder: shifted-window local self-attention over the patch grid."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
from timm.models.swin_transformer import SwinTransformerBlock

from .masking import gather_patches
from .positions import sincos_2d_positions
from .vit_encoder import VitEncoder

__all__ = ["WindowDecoder"]


class WindowDecoder(nn.Module):
    """Decoder that fills masked patches from the visible encoder tokens.

    visible tokens -> Linear(in_dim, width) -> append mask tokens -> unshuffle to patch
    order -> + fixed 2-D sin-cos positions -> ``depth`` Swin blocks over the (T, F) grid
    (window ``window``; blocks with an odd index are shifted by ``shift``, so depth 1 is
    one unshifted block, as AudioMAE alternates no-shift / shift) -> LayerNorm.

    The grid must be divisible by the window (after timm clips a window to a grid side
    that is not larger than it): timm pads otherwise, and its padded tokens are not
    masked out of attention and its shifted-window mask is then misaligned with the roll
    (tokens from the two ends of the grid attend to each other).

    Args:
        in_dim: width of the visible (encoder) tokens.
        width: decoder width.
        depth: number of Swin blocks (0 = none: embed, positions and norm only).
        heads: attention heads per block.
        grid: (T, F) patch grid; L = T * F.
        window: (window rows, window columns) in patches.
        shift: cyclic shift of the odd-indexed blocks.
        mlp_ratio: hidden width of the blocks' MLP over ``width``.
        drop_path: stochastic depth rate of every block.
    """

    def __init__(
        self,
        in_dim: int,
        width: int = 512,
        depth: int = 1,
        heads: int = 16,
        grid: Sequence[int] = (64, 8),
        window: Sequence[int] = (4, 4),
        shift: Sequence[int] = (2, 0),
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
    ):
        super().__init__()
        self.grid = (int(grid[0]), int(grid[1]))
        self.num_patches = self.grid[0] * self.grid[1]
        self.width = width
        for side, win in zip(self.grid, window):
            if side % min(side, int(win)):
                raise ValueError(f"grid {tuple(self.grid)} must be divisible by the window {tuple(window)}")

        self.embed = nn.Linear(in_dim, width)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width))
        self.register_buffer(
            "positions", sincos_2d_positions(width, self.grid).unsqueeze(0), persistent=False
        )  # (1, L, width)
        self.blocks = nn.ModuleList(
            SwinTransformerBlock(
                dim=width,
                input_resolution=self.grid,
                num_heads=heads,
                window_size=tuple(window),
                shift_size=tuple(shift) if i % 2 == 1 else (0, 0),
                mlp_ratio=mlp_ratio,
                drop_path=drop_path,
            )
            for i in range(depth)
        )
        for block in self.blocks:
            # timm marks fused attention in WindowAttention "experimental" and leaves it
            # off unless TIMM_FUSED_ATTN=2; it matches the plain path (tested), so use it.
            block.attn.fused_attn = True
        self.norm = nn.LayerNorm(width)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """MAE's init: xavier-uniform Linear weights, zero biases, unit LayerNorms,
        mask token N(0, 0.02); the blocks' relative position bias keeps timm's init."""
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
        x = x + self.positions.to(x.dtype)
        x = x.reshape(batch, self.grid[0], self.grid[1], self.width)  # (B, T, F, W)
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return x.reshape(batch, self.num_patches, self.width)  # (B, L, W)
