"""Masking, 2-D sin-cos positions and the shifted-window decoder (AudioMAE's block)."""
from __future__ import annotations

import math
from typing import Optional, Tuple

import pytest
import torch
from supmam_plugin.models.audiomae_swin_block import AudioMAESwinBlock, padded_grid, window_and_shift, window_attention_mask
from supmam_plugin.core.masking import _uniform_noise, gather_patches, masking_from_noise, split_by_mask, structured_masking
from supmam_plugin.core.positions import sincos_2d_positions
from supmam_plugin.models.window_decoder import WindowDecoder

GRID = (64, 8)
L = GRID[0] * GRID[1]


def random_masking(
    batch_size: int,
    num_patches: int,
    mask_ratio: float,
    device=None,
    generator: Optional[torch.Generator] = None,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MAE-style per-sample uniform random masking (a test helper over :func:`masking_from_noise`).

    Each clip draws its own uniform noise over the ``L = num_patches`` patches; the
    ``K = int(L * (1 - mask_ratio))`` patches with the smallest noise stay visible.

    Args:
        batch_size: B.
        num_patches: L.
        mask_ratio: fraction of patches masked, ``0 <= mask_ratio < 1``.
        device: device of the returned tensors (default: the generator's, else CPU).
        generator: optional ``torch.Generator``; the same seed gives the same masks.

    Returns:
        visible_index: (B, K) long, the visible patch indices in ASCENDING patch
            order (unlike MAE, which keeps them in noise/argsort order).
        mask: (B, L) float, 1 = masked, 0 = visible.
        restore_index: (B, L) long: for ``tokens = cat([visible (B, K, D),
            masked (B, L - K, D)], 1)`` where the masked tokens stand for the masked
            patches in ascending patch order, ``gather_patches(tokens, restore_index)``
            puts every token back at its patch position.
    """
    if device is None and generator is not None:
        device = generator.device
    return masking_from_noise(_uniform_noise((batch_size, num_patches), device, generator), mask_ratio)


def gen(seed):
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- masking


@pytest.mark.parametrize("ratio, visible", [(0.2, 409), (0.4, 307), (0.8, 102)])
def test_random_masking_counts_and_consistency(ratio, visible):
    B = 6
    visible_index, mask, restore_index = random_masking(B, L, ratio, generator=gen(0))
    assert visible_index.shape == (B, visible) and visible_index.dtype == torch.long
    assert mask.shape == (B, L) and mask.dtype == torch.float32
    assert restore_index.shape == (B, L) and restore_index.dtype == torch.long
    assert (mask.sum(1) == L - visible).all()
    # visible_index is ascending
    assert (visible_index[:, 1:] > visible_index[:, :-1]).all()
    for b in range(B):
        vis = set(visible_index[b].tolist())
        masked = set(mask[b].nonzero().flatten().tolist())
        assert len(vis) == visible
        assert vis.isdisjoint(masked)
        assert vis | masked == set(range(L))
    # mask agrees with visible_index
    assert (torch.gather(mask, 1, visible_index) == 0).all()


def test_random_masking_repeatable_and_random():
    a = random_masking(4, L, 0.8, generator=gen(1))
    b = random_masking(4, L, 0.8, generator=gen(1))
    c = random_masking(4, L, 0.8, generator=gen(2))
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    assert not torch.equal(a[1], c[1])
    # every sample has its own mask
    masks = a[1]
    for i in range(4):
        for j in range(i + 1, 4):
            assert not torch.equal(masks[i], masks[j])


def test_random_masking_float_edge_and_bad_ratio():
    vis, mask, _ = random_masking(2, 10, 0.9, generator=gen(0))  # 10 * (1 - 0.9) = 0.999...
    assert vis.shape == (2, 1)
    vis, mask, restore = random_masking(2, 10, 0.0, generator=gen(0))
    assert vis.shape == (2, 10) and mask.sum() == 0 and torch.equal(restore, torch.arange(10).expand(2, 10))
    with pytest.raises(ValueError):
        random_masking(2, 10, 1.0)


def test_restore_index_restores_patch_order():
    B, D = 3, 5
    patches = torch.randn(B, L, D)
    visible_index, mask, restore_index = random_masking(B, L, 0.6, generator=gen(3))
    visible = gather_patches(patches, visible_index)  # (B, K, D)
    masked_index = torch.argsort(mask, dim=1, stable=True)[:, visible_index.shape[1]:]  # ascending masked
    assert torch.equal(torch.sort(masked_index, 1).values, masked_index)
    shuffled = torch.cat([visible, gather_patches(patches, masked_index)], dim=1)
    assert torch.equal(gather_patches(shuffled, restore_index), patches)
    # the arange form: gathering the shuffled index list with restore_index gives arange
    order = torch.cat([visible_index, masked_index], dim=1)
    assert torch.equal(torch.gather(order, 1, restore_index), torch.arange(L).expand(B, L))


def test_gather_patches_shapes():
    x = torch.arange(2 * 6 * 3).reshape(2, 6, 3)
    idx = torch.tensor([[5, 0], [1, 1]])
    out = gather_patches(x, idx)
    assert out.shape == (2, 2, 3)
    assert torch.equal(out[0, 0], x[0, 5]) and torch.equal(out[1, 1], x[1, 1])
    assert torch.equal(gather_patches(x[..., 0], idx), torch.stack([x[0, [5, 0], 0], x[1, [1, 1], 0]]))


@pytest.mark.parametrize("grid, tr, fr", [((64, 8), 0.2, 0.2), ((10, 6), 0.3, 0.5), ((64, 8), 0.0, 0.25)])
def test_structured_masking_whole_rows_and_columns(grid, tr, fr):
    T, F = grid
    B = 5
    mask = structured_masking(B, grid, tr, fr, generator=gen(4))
    assert mask.shape == (B, T * F)
    rows, cols = round(T * tr), round(F * fr)
    m = mask.bool().reshape(B, T, F)
    for b in range(B):
        full_rows = m[b].all(1)  # (T,) rows masked entirely
        full_cols = m[b].all(0)  # (F,)
        assert int(full_rows.sum()) == rows
        assert int(full_cols.sum()) == cols
        # nothing else is masked: a patch is masked iff its row or its column is
        expected = full_rows[:, None] | full_cols[None, :]
        assert torch.equal(m[b], expected)
        assert int(m[b].sum()) == rows * F + cols * T - rows * cols
    # per-sample different and repeatable
    assert not torch.equal(mask[0], mask[1])
    assert torch.equal(mask, structured_masking(B, grid, tr, fr, generator=gen(4)))
    # the visible tokens form a (B, K) index, same K per clip
    vis, restore = split_by_mask(mask)
    assert vis.shape == (B, (T - rows) * (F - cols))


def test_structured_masking_paper_defaults():
    mask = structured_masking(2, (64, 8), 0.2, 0.2, generator=gen(0))
    assert (mask.sum(1) == 13 * 8 + 2 * 64 - 13 * 2).all()


# ----------------------------------------------------------------------------- positions


def test_positions_shape_and_cls():
    pos = sincos_2d_positions(768, (64, 8))
    assert pos.shape == (512, 768) and pos.dtype == torch.float32
    with_cls = sincos_2d_positions(768, (64, 8), cls_token=True)
    assert with_cls.shape == (513, 768)
    assert (with_cls[0] == 0).all() and torch.equal(with_cls[1:], pos)
    assert torch.unique(pos, dim=0).shape[0] == 512  # distinct rows


def test_positions_hand_computed():
    pos = sincos_2d_positions(8, (64, 8))
    t, f = 3, 5
    row = pos[t * 8 + f]
    # D = 8: each half has 4 channels = sin(p w0), sin(p w1), cos(p w0), cos(p w1);
    # w_i = 1 / 10000 ** (i / 2) -> 1, 1/100. First half: freq f, second half: time t.
    expected = [
        math.sin(f), math.sin(f / 100), math.cos(f), math.cos(f / 100),
        math.sin(t), math.sin(t / 100), math.cos(t), math.cos(t / 100),
    ]
    assert torch.allclose(row, torch.tensor(expected), atol=1e-6)
    assert torch.allclose(pos[0], torch.tensor([0.0, 0, 1, 1, 0, 0, 1, 1]))


def test_positions_halves_follow_their_axis():
    D = 32
    pos = sincos_2d_positions(D, (6, 4)).reshape(6, 4, D)
    freq_half, time_half = pos[..., : D // 2], pos[..., D // 2:]
    # the time half depends on t only, the freq half on f only
    assert torch.equal(time_half, time_half[:, :1].expand_as(time_half))
    assert torch.equal(freq_half, freq_half[:1].expand_as(freq_half))
    assert not torch.equal(time_half[0, 0], time_half[1, 0])
    assert not torch.equal(freq_half[0, 0], freq_half[0, 1])


# ----------------------------------------------------------------------------- decoder


def small_decoder(depth=1, **kw):
    torch.manual_seed(0)
    return WindowDecoder(in_dim=24, **{"grid": GRID, **kw}, width=32, depth=depth, heads=4).eval()


def changed_positions(out_a, out_b, tol=1e-6):
    """Set of (t, f) whose output changed, for (1, L, W) outputs on the 64 x 8 grid."""
    diff = (out_a - out_b).abs().amax(-1)[0].reshape(GRID)
    return {tuple(p) for p in (diff > tol).nonzero().tolist()}


def unshifted_window(t, f, win=(4, 4), grid=GRID):
    """The window of patch (t, f): windows tile the grid from (0, 0), the last ones cut at its edge."""
    t0, f0 = t // win[0] * win[0], f // win[1] * win[1]
    return {(r, c) for r in range(t0, min(t0 + win[0], grid[0])) for c in range(f0, min(f0 + win[1], grid[1]))}


def shifted_window(t, f, grid=GRID, win=(4, 4), shift=(2, 0)):
    """timm's shifted window of patch (t, f), in grid coordinates: rolling by -shift and
    masking the wrapped part is the same as windows starting at shift - win, shift,
    shift + win, ... clipped to the grid (no wrap-around)."""

    def span(p, n, w, s):
        start = (p - s) // w * w + s if p >= s else 0
        stop = min(n, (p - s) // w * w + s + w) if p >= s else s
        return range(max(start, 0), stop)

    return {(r, c) for r in span(t, grid[0], win[0], shift[0]) for c in span(f, grid[1], win[1], shift[1])}


def test_decoder_output_shape_and_state_dict():
    dec = WindowDecoder(in_dim=768, grid=GRID)  # paper defaults: width 512, one block, 16 heads
    assert len(dec.blocks) == 1 and dec.blocks[0].shift_size == (0, 0)
    assert all(b.attn.attention == "auto" for b in dec.blocks)
    vis, mask, restore = random_masking(2, L, 0.4, generator=gen(0))
    out = dec(torch.randn(2, vis.shape[1], 768), restore)
    assert out.shape == (2, L, 512)
    keys = dec.state_dict().keys()
    assert "mask_token" in keys and "pos_embed" in keys  # the table is saved with the weights
    assert {"blocks.0.attn.tau", "blocks.0.attn.meta_mlp.fc1.weight", "blocks.0.attn.meta_mlp.fc2.bias"} <= set(keys)
    assert not any("relative_position_bias_table" in k for k in keys)
    assert WindowDecoder(in_dim=8, grid=GRID, width=16, depth=3, heads=2).blocks[1].shift_size == (2, 0)
    assert dec.norm.eps == 1e-6 and dec.blocks[0].norm1.eps == 1e-6


def test_decoder_depth_zero():
    dec = small_decoder(depth=0)
    vis, mask, restore = random_masking(2, L, 0.5, generator=gen(0))
    out = dec(torch.randn(2, vis.shape[1], 24), restore)
    assert out.shape == (2, L, 32) and torch.isfinite(out).all()


def test_decoder_rejects_a_window_under_one_patch():
    with pytest.raises(ValueError, match="decoder_window_time"):
        WindowDecoder(in_dim=8, width=16, heads=2, grid=(64, 8), window=(0, 4))
    WindowDecoder(in_dim=8, width=16, heads=2, grid=(8, 3))  # window clipped to 3 columns: fine


@pytest.mark.parametrize("t, f", [(0, 0), (13, 5), (63, 7), (30, 2)])
def test_decoder_unshifted_block_is_local(t, f):
    dec = small_decoder(depth=1)
    restore = torch.arange(L)[None]  # mask ratio 0: all patches visible, in order
    x = torch.randn(1, L, 24)
    x2 = x.clone()
    x2[0, t * 8 + f] += torch.randn(24)
    with torch.no_grad():
        changed = changed_positions(dec(x, restore), dec(x2, restore))
    assert changed == unshifted_window(t, f)


@pytest.mark.parametrize("t, f", [(0, 0), (1, 6), (2, 3), (13, 5), (61, 0), (62, 4), (63, 7)])
def test_shifted_block_is_local(t, f):
    torch.manual_seed(0)
    block = AudioMAESwinBlock(32, 4, GRID, window=(4, 4), shift=(2, 0)).eval()
    x = torch.randn(1, L, 32)
    x2 = x.clone()
    x2[0, t * 8 + f] += torch.randn(32)
    with torch.no_grad():
        out_a, out_b = block(x).reshape(1, L, 32), block(x2).reshape(1, L, 32)
    changed = changed_positions(out_a, out_b)
    expected = shifted_window(t, f)
    assert changed == expected
    assert (t, f) in changed and len(changed) <= 16


@pytest.mark.parametrize("t, f", [(0, 0), (13, 5), (63, 7)])
def test_two_block_decoder_reach(t, f):
    dec = small_decoder(depth=2)
    assert dec.blocks[1].shift_size == (2, 0)
    restore = torch.arange(L)[None]
    x = torch.randn(1, L, 24)
    x2 = x.clone()
    x2[0, t * 8 + f] += torch.randn(24)
    with torch.no_grad():
        changed = changed_positions(dec(x, restore), dec(x2, restore))
    expected = set().union(*(shifted_window(*p) for p in unshifted_window(t, f)))
    assert changed == expected


def test_decoder_uses_mask_tokens():
    dec = small_decoder(depth=1)
    B = 1
    patches = torch.randn(B, L, 24)  # stand-in for encoder outputs at every patch
    # visible set 1: rows 0-1 of window (0..3, 0..3) visible; set 2: rows 0-2.
    mask1 = torch.ones(B, 64, 8)
    mask1[:, 0:2, 0:4] = 0
    mask1[:, 8:9] = 0  # make both masks equally sized
    mask2 = torch.ones(B, 64, 8)
    mask2[:, 0:3, 0:4] = 0
    mask2[:, 8:9, 0:4] = 0
    mask1, mask2 = mask1.reshape(B, L), mask2.reshape(B, L)
    assert mask1.sum() == mask2.sum()
    with torch.no_grad():
        outs = []
        for mask in (mask1, mask2):
            vis, restore = split_by_mask(mask)
            outs.append(dec(gather_patches(patches, vis), restore))
        # patch (3, 0) is masked in both: its output sees different visible neighbours
        p = 3 * 8
        assert not torch.allclose(outs[0][0, p], outs[1][0, p])
        # masked patches' own content never reaches the decoder
        vis, restore = split_by_mask(mask1)
        other = patches.clone()
        other[mask1.bool()] = torch.randn(int(mask1.sum()), 24)
        assert torch.equal(dec(gather_patches(other, vis), restore), outs[0])
        # a window with no visible patch is made of mask tokens (+ positions) only
        far = 40 * 8 + 4
        before = outs[0][0, far].clone()
        dec.mask_token.add_(torch.randn_like(dec.mask_token))  # not a constant: LayerNorm removes those
        assert not torch.allclose(dec(gather_patches(patches, vis), restore)[0, far], before)


def test_mask_token_gets_gradient():
    dec = small_decoder(depth=1).train()
    vis, mask, restore = random_masking(2, L, 0.8, generator=gen(0))
    dec(torch.randn(2, vis.shape[1], 24), restore).pow(2).mean().backward()
    assert dec.mask_token.grad is not None and dec.mask_token.grad.abs().sum() > 0


def test_sdpa_path_matches_matmul_path():
    """The fused path (one scaled_dot_product_attention call) computes what the batched-matmul
    path does, unshifted and shifted blocks, within 1e-5."""
    dec = small_decoder(depth=2)  # block 0 unshifted, block 1 shifted (uses the attn mask)
    with torch.no_grad():  # temperatures away from 1 (logits up to 20x the cosine)
        for block in dec.blocks:
            block.attn.tau.copy_(torch.tensor([0.05, 0.5, 2.0, 0.2]))
            block.attn.meta_mlp.fc2.bias.normal_()
    vis, mask, restore = random_masking(3, L, 0.4, generator=gen(5))
    tokens = torch.randn(3, vis.shape[1], 24)
    outs = {}
    with torch.no_grad():
        for attention in ("sdpa", "matmul", "auto"):
            for block in dec.blocks:
                block.attn.attention = attention
            outs[attention] = dec(tokens, restore)
    assert torch.allclose(outs["sdpa"], outs["matmul"], atol=1e-5, rtol=0)
    assert torch.equal(outs["auto"], outs["matmul"])  # on the CPU


def audiomae_attention(attn_module, x, mask):
    """AudioMAE's WindowMultiHeadAttention._forward_batch arithmetic, written from its description
    on (B * nW, N, C) windows: cosine logits / max(tau, 0.01) (denominator |q||k| clamped at
    1e-6), + MLP position bias, + shift mask per window, softmax, @ v, proj."""
    bw, n, c = x.shape
    heads = attn_module.num_heads
    q, k, v = attn_module.qkv(x).view(bw, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4).unbind(0)
    denom = torch.norm(q, dim=-1, keepdim=True) @ torch.norm(k, dim=-1, keepdim=True).transpose(-2, -1)
    attn = q @ k.transpose(-2, -1) / denom.clamp(min=1e-6)
    attn = attn / attn_module.tau.clamp(min=0.01).reshape(1, heads, 1, 1)
    bias = attn_module.meta_mlp(attn_module.relative_coordinates_log).transpose(1, 0).reshape(heads, n, n)
    attn = attn + bias.unsqueeze(0)
    if mask is not None:
        windows = mask.shape[0]
        attn = (attn.view(bw // windows, windows, heads, n, n) + mask.unsqueeze(1).unsqueeze(0)).view(-1, heads, n, n)
    return attn_module.proj((attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(bw, n, -1))


@pytest.mark.parametrize("attention", ["matmul", "sdpa"])
def test_attention_is_audiomaes_formula(attention):
    torch.manual_seed(0)
    block = AudioMAESwinBlock(32, 4, GRID, window=(4, 4), shift=(2, 0)).eval()
    block.attn.attention = attention
    with torch.no_grad():
        block.attn.tau.copy_(torch.tensor([0.05, 0.5, 2.0, 0.2]))
        x = torch.randn(2, 32, 16, 32)  # (B, nW, N, C): 16 x 2 windows of 4 x 4 on the 64 x 8 grid
        ours = block.attn(x, block.attn_mask)
        reference = audiomae_attention(block.attn, x.reshape(64, 16, 32), block.attn_mask).view(2, 32, 16, 32)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=0)


# ----------------------------------------------------------------------------- AudioMAE's block details


def audiomae_region_mask(grid, window, shift):
    """The shifted-window mask as AudioMAE builds it: label the rolled grid by nine slices
    (per side: [0, -w), [-w, -s), [-s, end)), later slices overwriting earlier ones, then -100
    between patches of a window whose labels differ. Written here from its description."""
    rows, cols = grid
    label = torch.zeros(rows, cols)
    count = 0
    for r in (slice(0, -window[0]), slice(-window[0], -shift[0]), slice(-shift[0], None)):
        for c in (slice(0, -window[1]), slice(-window[1], -shift[1]), slice(-shift[1], None)):
            label[r, c] = count
            count += 1
    windows = label.view(rows // window[0], window[0], cols // window[1], window[1]).permute(0, 2, 1, 3)
    windows = windows.reshape(-1, window[0] * window[1])
    differ = windows[:, None, :] != windows[:, :, None]
    return torch.zeros(differ.shape).masked_fill(differ, -100.0)


@pytest.mark.parametrize("grid, window, shift", [((64, 8), (4, 4), (2, 0)), ((16, 8), (4, 4), (2, 2)),
                                                 ((8, 12), (4, 6), (1, 3))])
def test_shift_mask_is_audiomaes(grid, window, shift):
    win, sft = window_and_shift(grid, window, shift)
    assert torch.equal(window_attention_mask(grid, win, sft), audiomae_region_mask(grid, win, sft))
    assert window_attention_mask(grid, win, (0, 0)) is None


def test_window_and_shift_follow_audiomae():
    assert window_and_shift((64, 8), (4, 4), (2, 0)) == ((4, 4), (2, 0))
    assert window_and_shift((64, 4), (4, 8), (2, 2)) == ((4, 4), (2, 0))  # one window covers the side: no shift
    assert window_and_shift((13, 8), (4, 4), (2, 0)) == ((4, 4), (2, 0))  # no multiple of the window: padded
    assert padded_grid((13, 8), (4, 4)) == (16, 8) and padded_grid((13, 6), (4, 4)) == (16, 8)
    assert padded_grid((64, 8), (4, 4)) == (64, 8)


# ----------------------------------------------------------------------------- grids that are no multiple of the window
# (a 2.08-s clip: 13 x 8 patches). The reference is AudioMAE's exact (divisible) path: a window of
# the padded block holds the same patches as a block over just that piece of the grid, whose
# window is clipped to the piece (same weights: the position bias depends on offsets only).


def pieces(grid, window, shift):
    """(rows, cols) ranges of the windows of a block over ``grid``, in grid coordinates: from 0
    (unshifted) or from shift - window (shifted; AudioMAE keeps the wrapped start apart), cut at the
    grid's edges."""
    def spans(n, w, s):
        starts = [0] + list(range(s, n, w)) if s else list(range(0, n, w))
        return [(a, min(b, n)) for a, b in zip(starts, starts[1:] + [n]) if a < n]

    return [(r, c) for r in spans(grid[0], window[0], shift[0]) for c in spans(grid[1], window[1], shift[1])]


@pytest.mark.parametrize("attention", ["matmul", "sdpa"])
@pytest.mark.parametrize("grid, shift", [((13, 8), (0, 0)), ((13, 8), (2, 0)), ((13, 6), (0, 0)), ((14, 6), (2, 2))])
def test_padded_block_is_the_blocks_of_its_windows(grid, shift, attention):
    torch.manual_seed(0)
    block = AudioMAESwinBlock(32, 4, grid, window=(4, 4), shift=shift).eval()
    block.attn.attention = attention
    assert block.padded_grid != grid
    x = torch.randn(2, grid[0], grid[1], 32)
    with torch.no_grad():
        block.attn.tau.copy_(torch.tensor([0.05, 0.5, 2.0, 0.2]))  # sharp heads: a leak through -100 would show
        out = block(x.reshape(2, -1, 32)).view(2, grid[0], grid[1], 32)
        covered = torch.zeros(grid, dtype=torch.bool)
        for (r0, r1), (c0, c1) in pieces(grid, (4, 4), shift):
            alone = AudioMAESwinBlock(32, 4, (r1 - r0, c1 - c0), window=(4, 4)).eval()
            alone.load_state_dict(block.state_dict())
            alone.attn.attention = attention
            assert alone.padded_grid == alone.grid  # the reference pads nothing
            piece = alone(x[:, r0:r1, c0:c1].reshape(2, -1, 32)).view(2, r1 - r0, c1 - c0, 32)
            torch.testing.assert_close(out[:, r0:r1, c0:c1], piece, atol=1e-5, rtol=0)  # measured: <= 4e-6
            covered[r0:r1, c0:c1] = True
    assert covered.all()


def test_padded_block_trains_and_padding_gets_no_gradient():
    """Training mode (the bias MLP's dropout): finite outputs and gradients; the padded tokens are
    never attended, so changing what a real token would see as padding cannot matter."""
    torch.manual_seed(0)
    grid = (13, 6)
    block = AudioMAESwinBlock(32, 4, grid, window=(4, 4), shift=(2, 2)).train()
    x = torch.randn(2, 13 * 6, 32, requires_grad=True)
    block(x).square().mean().backward()
    assert torch.isfinite(x.grad).all() and all(torch.isfinite(p.grad).all() for p in block.parameters())
    mask = window_attention_mask(grid, (4, 4), (2, 2))
    assert mask.shape == (4 * 2, 16, 16) and torch.isinf(mask).any()
    assert not torch.isinf(mask).all(-1).any()  # every softmax row keeps a finite entry


@pytest.mark.parametrize("t, f", [(0, 0), (12, 5), (10, 7), (3, 2)])
def test_padded_decoder_is_local(t, f):
    grid = (13, 8)
    dec = small_decoder(depth=2, grid=grid)
    restore = torch.arange(13 * 8)[None]
    x = torch.randn(1, 13 * 8, 24)
    x2 = x.clone()
    x2[0, t * 8 + f] += torch.randn(24)
    with torch.no_grad():
        diff = (dec(x, restore) - dec(x2, restore)).abs().amax(-1)[0].reshape(grid)
    changed = {tuple(p) for p in (diff > 1e-6).nonzero().tolist()}
    assert changed == set().union(*(shifted_window(*p, grid=grid) for p in unshifted_window(t, f, grid=grid)))


def test_relative_coordinates_are_log_spaced_offsets():
    block = AudioMAESwinBlock(16, 2, GRID, window=(4, 4))
    coords = block.attn.relative_coordinates_log.view(16, 16, 2)  # (query, key, (row, col) offset)
    # query (0, 0) vs key (3, 2) -> offset (0 - 3, 0 - 2) = (-3, -2) -> -log(1 + 3), -log(1 + 2)
    torch.testing.assert_close(coords[0, 3 * 4 + 2], torch.tensor([-math.log(4.0), -math.log(3.0)]))
    torch.testing.assert_close(coords[3 * 4 + 2, 0], torch.tensor([math.log(4.0), math.log(3.0)]))
    assert torch.equal(coords[5, 5], torch.zeros(2))
    assert block.attn.position_bias().shape == (2, 16, 16)


def test_block_is_post_norm():
    """Each branch's output is normalised before it is added: with zero norm weights and biases
    the block is the identity, whatever the attention and MLP compute."""
    torch.manual_seed(0)
    block = AudioMAESwinBlock(16, 2, GRID, window=(4, 4), shift=(2, 0)).eval()
    with torch.no_grad():
        for norm in (block.norm1, block.norm2):
            norm.weight.zero_()
            norm.bias.zero_()
        x = torch.randn(2, L, 16)
        assert torch.equal(block(x), x)


@pytest.mark.parametrize("attention", ["matmul", "sdpa"])
def test_temperature_is_clamped_at_audiomaes_minimum(attention):
    dec = small_decoder(depth=2)
    vis, mask, restore = random_masking(2, L, 0.4, generator=gen(6))
    tokens = torch.randn(2, vis.shape[1], 24)
    outs = []
    with torch.no_grad():
        for tau in (0.01, 0.001, -1.0):  # all below the clamp act as 0.01
            for block in dec.blocks:
                block.attn.tau.fill_(tau)
                block.attn.attention = attention
            outs.append(dec(tokens, restore))
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])
