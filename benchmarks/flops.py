"""FLOPs of a SupMAM pretraining step, counted analytically from the model's shapes, and a
cross-check with torch.utils.flop_counter.FlopCounterMode.

Method (1 multiply-add = 2 FLOPs; a matmul of (M x K) @ (K x N) = 2 M N K):
  fbank        the mel projection of the power spectrum, 2 B F (fft/2 + 1) mel (the FFT itself,
               windowing and log are not matmuls and are ignored); no gradient.
  patch_embed  the 16x16 conv over all L patches = 2 B L p^2 D.
  encoder      per block, on the K visible tokens (+1 with a [CLS] token), width D, MLP Dh:
               qkv 6 B K D^2, output projection 2 B K D^2, MLP 4 B K D Dh,
               attention scores Q K^T 2 B K^2 D and attention x V 2 B K^2 D.
  decoder      embed 2 B K D W; per Swin block on all L tokens, width W, MLP Wh:
               8 B L W^2 + 4 B L W Wh, windowed attention 4 B L w W (w = window tokens, 16).
  head         2 B L W D_target.
  cls branch   2 B (D H + H C) (BatchNorm, ReLU, pooling ignored).
  backward     2 x forward for every trainable matmul (gradients of the input and of the
               weight), except the patch embedding: its input (the fbank) needs no gradient,
               so only its weight gradient, 1 x forward.
  teacher      frozen, forward only, when it runs online; HTS-AT is counted with FlopCounterMode
               (a Swin with patch merging; not worth a hand formula).
Elementwise work (LayerNorm, GELU, softmax, residual adds, masking gathers, the loss,
grid_sample of the teacher map, AdamW's update) is ignored: it is not matmul work and is
small in FLOPs (not in time: see BENCHMARKS.md's profile).
"""
from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

from supmam_plugin.core.fbank import FbankSettings
from supmam_plugin.core.masking import _num_visible

aten = torch.ops.aten


def visible_count(num_patches: int, mask_ratio: float) -> int:
    return _num_visible(num_patches, mask_ratio)


def step_flops(cfg, batch: int, num_samples: int, num_classes: int, target_dim: int,
               teacher_forward: float = 0.0) -> dict:
    """Analytic FLOPs of one training step, by component: {name: (forward, backward)}."""
    B = batch
    p = cfg.patch_size
    T, F = cfg.input_frames // p, cfg.num_mel_bins // p
    L = T * F
    D = cfg.encoder_embed_dim
    Dh = int(D * cfg.mlp_ratio)
    K = visible_count(L, cfg.mask_ratio) + int(bool(getattr(cfg, "cls_token", False)))
    W = cfg.decoder_embed_dim
    Wh = int(W * cfg.mlp_ratio)
    w = min(T, cfg.decoder_window_time) * min(F, cfg.decoder_window_freq)
    N, depth = cfg.encoder_layers, cfg.decoder_layers
    settings = FbankSettings()
    frames = settings.num_frames(num_samples)

    parts = {}
    parts["fbank (mel matmul)"] = (2.0 * B * frames * (settings.fft_size // 2 + 1) * cfg.num_mel_bins, 0.0)
    fwd = 2.0 * B * L * p * p * D
    parts["patch_embed"] = (fwd, fwd)
    fwd = N * B * K * (6.0 * D * D + 2.0 * D * D + 4.0 * D * Dh)
    parts["encoder linear"] = (fwd, 2 * fwd)
    fwd = N * 4.0 * B * K * K * D
    parts["encoder attention"] = (fwd, 2 * fwd)
    fwd = 2.0 * B * K * D * W
    parts["decoder embed"] = (fwd, 2 * fwd)
    fwd = depth * B * L * (8.0 * W * W + 4.0 * W * Wh)
    parts["decoder linear"] = (fwd, 2 * fwd)
    fwd = depth * 4.0 * B * L * w * W
    parts["decoder attention"] = (fwd, 2 * fwd)
    fwd = 2.0 * B * L * W * target_dim
    parts["head"] = (fwd, 2 * fwd)
    if cfg.cls_branch:
        fwd = 2.0 * B * (D * cfg.cls_hidden_dim + cfg.cls_hidden_dim * num_classes)
        parts["cls branch"] = (fwd, 2 * fwd)
    if teacher_forward:
        parts["teacher (frozen, forward)"] = (teacher_forward, 0.0)
    return parts


def totals(parts: dict) -> dict:
    forward = sum(f for f, _ in parts.values())
    backward = sum(b for _, b in parts.values())
    return {"forward": forward, "backward": backward, "step": forward + backward}


def encoder_inference_flops(cfg, batch: int) -> float:
    """Forward FLOPs of the encoder on all L patches (embedding extraction), patch embed included."""
    p = cfg.patch_size
    L = (cfg.input_frames // p) * (cfg.num_mel_bins // p) + int(bool(getattr(cfg, "cls_token", False)))
    D = cfg.encoder_embed_dim
    Dh = int(D * cfg.mlp_ratio)
    per_block = batch * L * (8.0 * D * D + 4.0 * D * Dh) + 4.0 * batch * L * L * D
    return 2.0 * batch * L * p * p * D + cfg.encoder_layers * per_block


# torch's FlopCounterMode has formulas for the CUDA attention kernels but not for the CPU
# flash-attention op that F.scaled_dot_product_attention dispatches to on the CPU; without them
# it counts no attention at all there. Same formulas, registered for the CPU ops.
def _cpu_sdpa(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _cpu_sdpa_backward(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


CPU_SDPA_FORMULAS = {}
if hasattr(aten, "_scaled_dot_product_flash_attention_for_cpu"):
    CPU_SDPA_FORMULAS[aten._scaled_dot_product_flash_attention_for_cpu] = _cpu_sdpa
if hasattr(aten, "_scaled_dot_product_flash_attention_for_cpu_backward"):
    CPU_SDPA_FORMULAS[aten._scaled_dot_product_flash_attention_for_cpu_backward] = _cpu_sdpa_backward


def flop_counter(with_cpu_sdpa: bool = True) -> FlopCounterMode:
    return FlopCounterMode(display=False, custom_mapping=dict(CPU_SDPA_FORMULAS) if with_cpu_sdpa else None)


def counted_by_op(counter: FlopCounterMode) -> dict:
    return {str(op): int(n) for op, n in counter.get_flop_counts().get("Global", {}).items()}


def teacher_forward_flops(teacher, waveform_48k: torch.Tensor) -> float:
    """HTS-AT's forward FLOPs on a batch (up to the token map), by FlopCounterMode."""
    counter = flop_counter()
    with counter:
        teacher.token_map(waveform_48k)
    return float(counter.get_total_flops())


def fmt_flops(x: float) -> str:
    return f"{x / 1e9:.2f} G"
