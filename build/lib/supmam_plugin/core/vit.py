"""The ViT encoder over fbank patches: AudioMAE's layout, timm's parameter names, plain torch.

One implementation serves training (models ``supmam`` / ``supmam_classifier``), the teachers and
the portable export. It is written in plain torch rather than with timm's ``Block`` so that an
exported encoder loads where neither fairseq nor timm is installed, and because importing timm
costs every process (each fairseq command) about 2 s; its parameter names are timm's
(``blocks.{i}.norm1``, ``attn.qkv``, ``mlp.fc1``, ...), so AudioMAE's released weights load as they
are, and the tests check it against timm's own block on the same weights.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .masking import gather_patches
from .positions import POSITION_LAYOUTS, position_table


@dataclass
class VitEncoderConfig:
    """The encoder's architecture (fields of the ``supmam`` and ``supmam_classifier`` model configs)."""

    encoder_layers: int = field(default=12, metadata={"help": "transformer blocks (ViT-B: 12; tiny: 2)"})
    encoder_embed_dim: int = field(default=768, metadata={"help": "encoder width (ViT-B: 768; tiny: 192)"})
    encoder_heads: int = field(default=12, metadata={"help": "attention heads (ViT-B: 12; tiny: 3)"})
    mlp_ratio: float = field(default=4.0, metadata={"help": "MLP hidden width / model width"})
    patch_size: int = field(default=16, metadata={"help": "square patch side, in frames and mel bins"})
    input_frames: int = field(
        default=1024, metadata={"help": "fbank frames per clip (1024 = 10.24 s; = task.target_frames)"}
    )
    num_mel_bins: int = field(default=128, metadata={"help": "mel bins of the fbank"})
    drop_path: float = field(default=0.0, metadata={"help": "stochastic depth rate (last block)"})
    cls_token: bool = field(
        default=True,
        metadata={"help": "prepend a learned [CLS] token that attends with the patches (AudioMAE has one, "
                  "and the paper takes AudioMAE as its backbone; it is dropped before the decoder and "
                  "from pooled features, which mean the patches)"},
    )
    position_layout: str = field(
        default="audiomae",
        metadata={"help": "layout of the fixed sin-cos position table built for a fresh model: 'audiomae' "
                  "(AudioMAE's table, made for a (freq x time) = (8 x 64) grid while its tokens are "
                  "time-major; the table of every released AudioMAE checkpoint) or 'grid' (the true (time, "
                  "freq) of each patch; checkpoints of this plugin before the AudioMAE layout). A table in a "
                  "checkpoint is loaded as it is, whatever this says"},
    )


class PatchEmbed(nn.Module):
    """(B, 1, frames, mel) -> (B, L, D) tokens of non-overlapping p x p patches, time-major."""

    def __init__(self, dim: int, patch: int):
        super().__init__()
        self.patch_size = (patch, patch)
        self.proj = nn.Conv2d(1, dim, kernel_size=patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention through ``scaled_dot_product_attention`` (the fused kernels)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        q, k, v = self.qkv(x).reshape(batch, tokens, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(batch, tokens, dim))


class Mlp(nn.Module):
    """fc1 -> activation -> dropout -> fc2 -> dropout (timm's ``Mlp``, the same parameter names)."""

    def __init__(self, dim: int, hidden: int, out: Optional[int] = None, activation: Callable = F.gelu,
                 dropout: float = 0.0):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, out or dim)
        self.activation, self.dropout = activation, dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.dropout(self.activation(self.fc1(x)), self.dropout, self.training)
        return F.dropout(self.fc2(x), self.dropout, self.training)


def drop_path(branch: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Stochastic depth: in training each sample's residual ``branch`` (B, ...) is dropped with
    probability ``rate`` and the kept ones are scaled by 1 / (1 - rate) (timm's ``drop_path``)."""
    if not training or rate == 0.0:
        return branch
    keep = 1.0 - rate
    mask = branch.new_empty(branch.size(0), *([1] * (branch.dim() - 1))).bernoulli_(keep)
    return branch * mask.div_(keep)


class Block(nn.Module):
    """A pre-norm ViT block with stochastic depth (:func:`drop_path` of rate ``drop_path``)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, drop_path: float = 0.0):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path_rate = drop_path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + drop_path(self.attn(self.norm1(x)), self.drop_path_rate, self.training)
        return x + drop_path(self.mlp(self.norm2(x)), self.drop_path_rate, self.training)


class VitEncoder(nn.Module):
    """Patch embedding + fixed 2-D sin-cos positions + ViT blocks + LayerNorm (AudioMAE's encoder).

    The (frames x mel) fbank is cut into a (frames/p x mel/p) grid of patches, numbered
    row-major over (time, freq); for 1024 x 128 and p = 16: a 64 x 8 grid, 512 patches.
    ``pos_embed`` (1, L, D) is a persistent buffer (saved and loaded with the weights; built
    from ``cfg.position_layout`` for a fresh model). The [CLS] token, if any, has no position
    of its own: AudioMAE's ``cls_token + pos_embed[:, :1]`` is folded into ``cls_token`` when an
    AudioMAE file is read. ``cfg``: a :class:`VitEncoderConfig` or any object with its fields.
    """

    def __init__(self, cfg: VitEncoderConfig):
        super().__init__()
        p = cfg.patch_size
        if cfg.input_frames % p or cfg.num_mel_bins % p:
            raise ValueError(
                f"input of {cfg.input_frames} frames x {cfg.num_mel_bins} mel bins does not split into "
                f"{p}x{p} patches: make task.target_frames and model.num_mel_bins multiples of {p}"
            )
        if cfg.position_layout not in POSITION_LAYOUTS:
            raise ValueError(f"model.position_layout={cfg.position_layout!r}: choose one of {list(POSITION_LAYOUTS)}")
        self.grid = (cfg.input_frames // p, cfg.num_mel_bins // p)
        self.num_patches = self.grid[0] * self.grid[1]
        self.patch_embed = PatchEmbed(cfg.encoder_embed_dim, p)
        self.register_buffer(
            "pos_embed", position_table(cfg.encoder_embed_dim, self.grid, cfg.position_layout).unsqueeze(0)
        )  # (1, L, D)
        rates = torch.linspace(0, cfg.drop_path, cfg.encoder_layers).tolist()
        self.blocks = nn.ModuleList(
            Block(cfg.encoder_embed_dim, cfg.encoder_heads, cfg.mlp_ratio, drop_path=rate) for rate in rates
        )
        self.norm = nn.LayerNorm(cfg.encoder_embed_dim, eps=1e-6)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.encoder_embed_dim)) if cfg.cls_token else None
        if self.cls_token is not None:
            nn.init.normal_(self.cls_token, std=0.02)

    @staticmethod
    def init_module_weights(module: nn.Module) -> None:
        """MAE's initialisation: xavier-uniform linears (and the patch projection seen as one),
        zero biases, unit LayerNorms."""
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, PatchEmbed):
            nn.init.xavier_uniform_(module.proj.weight.view(module.proj.weight.size(0), -1))

    def embed_patches(self, fbank: torch.Tensor) -> torch.Tensor:
        """(B, frames, mel) -> (B, L, D) patch tokens with positions, in the model's dtype (the
        fbank is float32; under fairseq's bf16/fp16 the weights are not)."""
        tokens = self.patch_embed(fbank.unsqueeze(1).to(self.patch_embed.proj.weight.dtype))
        return tokens + self.pos_embed.to(tokens.dtype)

    def encode(
        self, tokens: torch.Tensor, visible_index: Optional[torch.Tensor] = None, final_norm: bool = True
    ) -> torch.Tensor:
        """(B, L, D) tokens -> (B, K, D) outputs for the patches in ``visible_index`` (B, K)
        (all patches when None); the blocks never see the others. With a [CLS] token it runs
        through the blocks too and is dropped from the output."""
        x = self._with_cls(tokens if visible_index is None else gather_patches(tokens, visible_index))
        for x in self._block_outputs(x):
            pass
        if final_norm:
            x = self.norm(x)
        return self._without_cls(x)

    def features(self, fbank: torch.Tensor, layers: Sequence[int] = ()) -> dict[str, torch.Tensor]:
        """Inference features of all patches of a (B, frames, mel) fbank:
        {"patches": (B, L, D) final normed outputs, "clip": (B, D) their mean over the patches,
        "layer_{i}": (B, L, D) output of block i (0-based, before the final norm) for i in layers}.
        The [CLS] token, if any, is dropped everywhere (it still attends in the blocks)."""
        wanted = set()
        for i in layers:
            if not 0 <= int(i) < len(self.blocks):
                raise ValueError(f"layer {i} does not exist: the encoder has blocks 0..{len(self.blocks) - 1}")
            wanted.add(int(i))
        out = {}
        x = self._with_cls(self.embed_patches(fbank))
        for i, x in enumerate(self._block_outputs(x)):
            if i in wanted:
                out[f"layer_{i}"] = self._without_cls(x)
        patches = self._without_cls(self.norm(x))
        return {"patches": patches, "clip": patches.mean(dim=1), **out}

    def _with_cls(self, x: torch.Tensor) -> torch.Tensor:
        if self.cls_token is None:
            return x
        return torch.cat([self.cls_token.expand(x.size(0), -1, -1).to(x.dtype), x], dim=1)

    def _without_cls(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.cls_token is None else x[:, 1:]

    def _block_outputs(self, x: torch.Tensor) -> Iterator[torch.Tensor]:
        """Each block's output in turn (x: tokens with the [CLS] token, if any, first)."""
        for block in self.blocks:
            x = block(x)
            yield x
