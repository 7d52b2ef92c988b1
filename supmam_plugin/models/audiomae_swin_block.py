"""AudioMAE's decoder block: a post-norm shifted-window block with scaled cosine attention.

AudioMAE (Huang et al. 2022) decodes with its own patched Swin block
(``timm_patch/swin_transformer.py`` of facebookresearch/AudioMAE), not timm's Swin V1 block:

* post-norm branches: ``x = x + norm1(attn(x))``, ``x = x + norm2(mlp(x))`` (LayerNorm eps 1e-6
  in AudioMAE's models);
* scaled cosine attention: ``softmax(cos(q, k) / max(tau, 0.01) + bias + shift_mask) v`` with a
  learned temperature per head (``attn.tau``, initialised to 1);
* the relative position bias comes from a small MLP (``attn.meta_mlp``: 2 -> 384 -> heads, ReLU,
  dropout 0.1 in training) over the log-spaced relative coordinates
  ``sign(d) * log(1 + |d|)`` of every pair of patches in a window (raw patch offsets, not
  normalised by the window size);
* shifted windows: odd blocks roll the grid by ``-shift`` before partitioning and mask (-100)
  pairs of patches that come from different regions of the rolled grid.

AudioMAE's block does not pad: its grid must be divisible by the window (10.24 s clips: 64 x 8
patches). Ours takes any grid (a 2.08-s clip: 13 x 8) the way Swin pads, but with the padding
kept out of the attention: the grid is padded at its end to a multiple of the window, then rolled,
and no patch attends to a padded one (-inf); the padded outputs are cut off. So the windows tile
the grid from its start (a shifted block's from ``shift - window``) and the last one along a side
is cut short at the grid's edge. A divisible grid is not padded and computes exactly AudioMAE's.

This is our own implementation of that block; its parameter names are the official ones
(``attn.qkv``, ``attn.proj``, ``attn.tau``, ``attn.meta_mlp.fc1/fc2``, ``norm1``, ``norm2``,
``mlp.fc1/fc2``), so AudioMAE's ``decoder_blocks.{i}.*`` keys load as they are.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core.vit import Mlp, drop_path

__all__ = ["CosineWindowAttention", "AudioMAESwinBlock", "window_and_shift", "padded_grid", "window_attention_mask",
           "ATTENTION_CHOICES"]

MASK_VALUE = -100.0  # AudioMAE's value for pairs across shifted-window regions
PADDING_MASK_VALUE = float("-inf")  # a patch and a padded one: never attended (-100 is not exact at tau 0.01)
TAU_MIN = 0.01  # AudioMAE clamps the learned temperature from below
NORM_EPS = 1e-12  # smallest query / key norm (F.normalize's)
ATTENTION_CHOICES = ("auto", "matmul", "sdpa")


def window_and_shift(grid: Sequence[int], window: Sequence[int], shift: Sequence[int]) -> tuple:
    """AudioMAE's rule: a window no larger than the grid side, and no shift along a side that
    one window covers. Returns ((window rows, cols), (shift rows, cols)).

    Raises:
        ValueError: a window side under one patch or a negative shift.
    """
    if any(int(w) < 1 for w in window) or any(int(s) < 0 for s in shift):
        raise ValueError(f"decoder window {tuple(window)} and shift {tuple(shift)} (time x freq, patches): a window "
                         "side must be >= 1 and a shift >= 0: change model.decoder_window_time / decoder_window_freq "
                         "or model.decoder_shift_time / decoder_shift_freq")
    win = tuple(int(g) if int(g) <= int(w) else int(w) for g, w in zip(grid, window))
    sft = tuple(0 if int(g) <= int(w) else int(s) for g, w, s in zip(grid, win, shift))
    return win, sft


def padded_grid(grid: Sequence[int], window: Sequence[int]) -> tuple:
    """(rows, cols) of ``grid`` padded at its end to a multiple of ``window`` (the grid itself
    when it is one)."""
    return tuple(-(-int(g) // int(w)) * int(w) for g, w in zip(grid, window))


def _partition(x: torch.Tensor, window: tuple) -> torch.Tensor:
    """(B, T, F, C) -> (B, nW, wt * wf, C), windows in row-major order over the grid."""
    batch, rows, cols, channels = x.shape
    wt, wf = window
    x = x.view(batch, rows // wt, wt, cols // wf, wf, channels).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(batch, (rows // wt) * (cols // wf), wt * wf, channels)


def _merge(windows: torch.Tensor, window: tuple, grid: tuple) -> torch.Tensor:
    """Inverse of :func:`_partition`: (B, nW, wt * wf, C) -> (B, T, F, C)."""
    batch, _, _, channels = windows.shape
    (wt, wf), (rows, cols) = window, grid
    x = windows.view(batch, rows // wt, cols // wf, wt, wf, channels).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(batch, rows, cols, channels)


def window_attention_mask(grid: Sequence[int], window: tuple, shift: tuple) -> Optional[torch.Tensor]:
    """(nW, N, N) additive mask of a block over ``grid`` padded to a multiple of ``window``
    (:func:`padded_grid`), N = wt * wf, windows of the padded, rolled grid; None when the block is
    neither shifted nor padded.

    * shifted: -100 between patches of different regions, as AudioMAE: along a shifted side,
      [0, n - w), [n - w, n - s) and [n - s, n) of the rolled grid, n the padded side (a side
      with no shift is one region; AudioMAE's slices with shift 0 give the same);
    * padded: -inf between a patch and a padded one, so padding never joins the attention (a
      padded query still sees the padding: no row of the softmax is all -inf).
    """
    rows, cols = padded_grid(grid, window)
    padded = (rows, cols) != (int(grid[0]), int(grid[1]))
    if not any(shift) and not padded:
        return None

    def regions(n: int, w: int, s: int) -> torch.Tensor:
        label = torch.zeros(n)
        if s:
            label[n - w:n - s] = 1
            label[n - s:] = 2
        return label

    def per_window(values: torch.Tensor) -> torch.Tensor:  # (rows, cols) -> (nW, N)
        return _partition(values.view(1, rows, cols, 1), window)[0, :, :, 0]

    label = per_window(regions(rows, window[0], shift[0])[:, None] * 3 + regions(cols, window[1], shift[1])[None, :])
    mask = torch.zeros(label.shape[0], label.shape[1], label.shape[1])
    mask = mask.masked_fill(label[:, None, :] != label[:, :, None], MASK_VALUE)
    if padded:
        real = torch.zeros(rows, cols)
        real[:int(grid[0]), :int(grid[1])] = 1
        real = per_window(torch.roll(real, shifts=(-shift[0], -shift[1]), dims=(0, 1)))  # the rolled grid's
        mask = mask.masked_fill(real[:, None, :] != real[:, :, None], PADDING_MASK_VALUE)
    return mask


class CosineWindowAttention(nn.Module):
    """Scaled cosine self-attention inside windows, with AudioMAE's MLP position bias:
    ``softmax(cos(q_i, k_j) / max(tau, 0.01) + bias_ij + shift_mask_ij) v``.

    forward: x (B, nW, N, C) window tokens, mask (nW, N, N) or None -> (B, nW, N, C).

    Two exact ways to compute it (``attention``):

    * "matmul": AudioMAE's arithmetic with batched matmuls: ``q k^T`` scaled by
      ``1 / (|q_i| |k_j| tau)`` (the norms multiplied on the small N x N logits), plus the bias and
      shift mask, softmax, ``@ v``.
    * "sdpa": one ``F.scaled_dot_product_attention`` call, 1/tau folded into unit-norm queries,
      keys made unit-norm, bias plus shift mask as ``attn_mask``.

    "auto" (the default) takes "sdpa" on CUDA and "matmul" elsewhere: with 16-token windows the
    CPU's SDPA kernel is slower than the batched matmuls (ViT-B decoder block, fwd + bwd, batch 4:
    about 2.5% slower, BENCHMARKS.md). Both equal the official formula except where a query or key
    norm is below 1e-12 (AudioMAE clamps their product at 1e-6): a zero vector, never met in practice.
    """

    def __init__(self, dim: int, num_heads: int, window: Sequence[int], meta_hidden_dim: int = 384,
                 bias_dropout: float = 0.1, attention: str = "auto"):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"decoder width {dim} is not divisible by its {num_heads} heads")
        if attention not in ATTENTION_CHOICES:
            raise ValueError(f"attention must be one of {ATTENTION_CHOICES}, got {attention!r}")
        self.num_heads = num_heads
        self.window = (int(window[0]), int(window[1]))
        self.attention = attention
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.meta_mlp = Mlp(2, meta_hidden_dim, out=num_heads, activation=F.relu, dropout=bias_dropout)
        self.tau = nn.Parameter(torch.ones(num_heads))
        wt, wf = self.window
        coords = torch.stack(torch.meshgrid(torch.arange(wt), torch.arange(wf), indexing="ij")).flatten(1)  # (2, N)
        relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).reshape(-1, 2).float()  # (N*N, 2)
        self.register_buffer("relative_coordinates_log", torch.sign(relative) * torch.log1p(relative.abs()),
                             persistent=False)

    def position_bias(self) -> torch.Tensor:
        """(heads, N, N) relative position bias of a window."""
        n = self.window[0] * self.window[1]
        return self.meta_mlp(self.relative_coordinates_log).transpose(0, 1).reshape(self.num_heads, n, n)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        batch, num_windows, n, channels = x.shape
        heads = self.num_heads
        qkv = self.qkv(x).view(batch * num_windows, n, 3, heads, channels // heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # (B * nW, H, N, hd), window-major within each clip
        inverse_tau = (1.0 / self.tau.clamp(min=TAU_MIN)).view(1, heads, 1, 1).to(x.dtype)
        q_scale = inverse_tau / torch.linalg.vector_norm(q, dim=-1, keepdim=True).clamp_min(NORM_EPS)  # (BnW, H, N, 1)
        k_scale = 1.0 / torch.linalg.vector_norm(k, dim=-1, keepdim=True).clamp_min(NORM_EPS)
        bias = self.position_bias().to(x.dtype).unsqueeze(0)  # (1, H, N, N)
        if mask is not None:
            bias = bias + mask.to(x.dtype).unsqueeze(1)  # (nW, H, N, N)
        attention = self.attention
        if attention == "auto":
            attention = "sdpa" if x.is_cuda else "matmul"
        if attention == "sdpa":
            if mask is not None:  # one mask per window of every clip
                bias = bias.unsqueeze(0).expand(batch, -1, -1, -1, -1).reshape(batch * num_windows, heads, n, n)
            out = F.scaled_dot_product_attention(q * q_scale, k * k_scale, v, attn_mask=bias, scale=1.0)
        else:
            logits = (q @ k.transpose(-2, -1)) * (q_scale * k_scale.transpose(-2, -1))  # (BnW, H, N, N)
            logits = (logits.view(batch, num_windows, heads, n, n) + bias).view(-1, heads, n, n)
            out = logits.softmax(dim=-1) @ v
        out = out.transpose(1, 2).reshape(batch, num_windows, n, channels)
        return self.proj(out)


class AudioMAESwinBlock(nn.Module):
    """AudioMAE's post-norm Swin block over a (T, F) grid: (B, T * F, C) -> (B, T * F, C),
    tokens time-major (index t * F + f).

    Args:
        dim: width C.
        num_heads: attention heads.
        grid: (T, F) patch grid, any size (padded to a multiple of the window, see the module).
        window: (rows, cols) of a window (clipped to the grid as AudioMAE does).
        shift: cyclic shift (rows, cols); (0, 0) for an unshifted block.
        mlp_ratio: MLP hidden width / C.
        drop_path: stochastic depth of both branches.
        bias_dropout: dropout inside the position-bias MLP (AudioMAE: 0.1).
        norm_eps: LayerNorm eps (AudioMAE: 1e-6).
    """

    def __init__(self, dim: int, num_heads: int, grid: Sequence[int], window: Sequence[int] = (4, 4),
                 shift: Sequence[int] = (0, 0), mlp_ratio: float = 4.0, drop_path: float = 0.0,
                 bias_dropout: float = 0.1, norm_eps: float = 1e-6):
        super().__init__()
        self.grid = (int(grid[0]), int(grid[1]))
        self.window_size, self.shift_size = window_and_shift(self.grid, window, shift)
        self.padded_grid = padded_grid(self.grid, self.window_size)
        self.attn = CosineWindowAttention(dim, num_heads, self.window_size, bias_dropout=bias_dropout)
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.drop_path_rate = drop_path
        mask = window_attention_mask(self.grid, self.window_size, self.shift_size)
        self.register_buffer("attn_mask", mask, persistent=False)

    def _window_attention(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, channels = x.shape
        (rows, cols), (padded_rows, padded_cols) = self.grid, self.padded_grid
        x = x.view(batch, rows, cols, channels)  # (B, T, F, C)
        if (padded_rows, padded_cols) != self.grid:
            x = F.pad(x, (0, 0, 0, padded_cols - cols, 0, padded_rows - rows))  # (B, Tp, Fp, C), zeros at the end
        if any(self.shift_size):
            x = torch.roll(x, shifts=(-self.shift_size[0], -self.shift_size[1]), dims=(1, 2))
        windows = self.attn(_partition(x, self.window_size), self.attn_mask)  # (B, nW, N, C)
        x = _merge(windows, self.window_size, self.padded_grid)
        if any(self.shift_size):
            x = torch.roll(x, shifts=self.shift_size, dims=(1, 2))
        return x[:, :rows, :cols].reshape(batch, -1, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + drop_path(self.norm1(self._window_attention(x)), self.drop_path_rate, self.training)
        return x + drop_path(self.norm2(self.mlp(x)), self.drop_path_rate, self.training)
