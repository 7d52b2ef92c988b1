"""Model ``clap``: an audio tower and a caption tower projected into one space (CLAP), trained by
the ``clap_contrastive`` criterion; once trained, its audio tower is a teacher for SupMAM-CLAP.

Audio tower: the plugin's ViT encoder (the ``supmam`` model's sizes and keys), its patch outputs
mean-pooled. Caption tower: sentencepiece pieces, learned positions and pre-norm transformer
layers (``torch.nn.TransformerEncoder``, with a padding mask), mean-pooled over the caption's
pieces. Each tower has LAION-CLAP's projection (Linear, ReLU, Linear) to ``embed_dim``; the
embeddings are L2-normalised; the temperature is learned (CLIP's initial 0.07).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
from fairseq.dataclass import FairseqDataclass
from fairseq.models import BaseFairseqModel, register_model

from ..core.captions import PAD_ID
from ..core.contrastive import INITIAL_LOGIT_SCALE
from ..core.fbank import FbankSettings, model_input_fbank
from ..core.vit import VitEncoder, VitEncoderConfig


@dataclass
class ClapConfig(FairseqDataclass, VitEncoderConfig):
    text_layers: int = field(default=4, metadata={"help": "transformer layers of the caption tower"})
    text_embed_dim: int = field(default=256, metadata={"help": "width of the caption tower"})
    text_heads: int = field(default=4, metadata={"help": "attention heads of the caption tower"})
    max_text_tokens: int = field(
        default=64, metadata={"help": "pieces per caption, BOS and EOS included (longer captions are cut)"})
    embed_dim: int = field(default=512, metadata={"help": "joint audio-text space (LAION-CLAP: 512)"})
    init_logit_scale: float = field(
        default=INITIAL_LOGIT_SCALE, metadata={"help": "initial log inverse temperature (CLIP, CLAP: log(1/0.07))"})


def projection(width: int, embed_dim: int) -> nn.Module:
    """LAION-CLAP's projection of each tower: Linear, ReLU, Linear."""
    return nn.Sequential(nn.Linear(width, embed_dim), nn.ReLU(), nn.Linear(embed_dim, embed_dim))


class CaptionEncoder(nn.Module):
    """(B, N) piece ids, PAD_ID-padded -> (B, D) mean of the caption's outputs (pads left out)."""

    def __init__(self, vocab_size: int, cfg: ClapConfig):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, cfg.text_embed_dim, padding_idx=PAD_ID)
        self.positions = nn.Parameter(torch.zeros(1, cfg.max_text_tokens, cfg.text_embed_dim))
        nn.init.normal_(self.positions, std=0.01)
        layer = nn.TransformerEncoderLayer(cfg.text_embed_dim, cfg.text_heads, int(cfg.text_embed_dim * cfg.mlp_ratio),
                                           dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
        self.layers = nn.TransformerEncoder(layer, cfg.text_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.text_embed_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        padding = tokens.eq(PAD_ID)  # (B, N)
        x = self.embed(tokens) + self.positions[:, :tokens.size(1)]
        x = self.norm(self.layers(x, src_key_padding_mask=padding))  # (B, N, D)
        keep = (~padding).unsqueeze(-1).to(x.dtype)
        return (x * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1)


@register_model("clap", dataclass=ClapConfig)
class ClapModel(BaseFairseqModel):
    """forward(source | fbank, text_tokens) -> {"audio": (B, E), "text": (B, E) unit vectors, "logit_scale": ()}."""

    def __init__(self, cfg: ClapConfig, vocab_size: int, sample_rate: int = 16000):
        super().__init__()
        self.cfg = cfg
        self.fbank_settings = FbankSettings(sample_rate=sample_rate)
        self.encoder = VitEncoder(cfg)
        self.encoder.apply(self.encoder.init_module_weights)
        self.audio_projection = projection(cfg.encoder_embed_dim, cfg.embed_dim)
        self.caption_encoder = CaptionEncoder(vocab_size, cfg)
        self.text_projection = projection(cfg.text_embed_dim, cfg.embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(float(cfg.init_logit_scale)))

    @classmethod
    def build_model(cls, cfg: ClapConfig, task, from_checkpoint: bool = False):
        if task.cfg.target_frames != cfg.input_frames:
            cfg.input_frames = task.cfg.target_frames
        cfg.max_text_tokens = task.cfg.max_text_tokens
        return cls(cfg, task.tokenizer.vocab_size, sample_rate=task.cfg.sample_rate)

    def embed_audio(self, source=None, source_lengths=None, fbank=None) -> torch.Tensor:
        """(B, E) unit audio embeddings of waveforms (B, N) or a normalised fbank (B, frames, mel)."""
        fbank = model_input_fbank(source, source_lengths, fbank, self.cfg.input_frames, self.fbank_settings)
        pooled = self.encoder.encode(self.encoder.embed_patches(fbank)).mean(dim=1)  # (B, D)
        return F.normalize(self.audio_projection(pooled).float(), dim=-1)

    def embed_text(self, text_tokens: torch.Tensor) -> torch.Tensor:
        """(B, N) piece ids -> (B, E) unit caption embeddings."""
        return F.normalize(self.text_projection(self.caption_encoder(text_tokens)).float(), dim=-1)

    def forward(self, source=None, source_lengths=None, fbank=None, text_tokens=None, **unused) -> dict:
        return {"audio": self.embed_audio(source, source_lengths, fbank), "text": self.embed_text(text_tokens),
                "logit_scale": self.logit_scale}
