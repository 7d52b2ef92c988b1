"""Model ``clap``: an audio tower and a caption tower projected into one space (CLAP), trained by
the ``clap_contrastive`` criterion; once trained, its audio tower is a teacher for SupMAM-CLAP.

Audio tower (``model.audio_tower``): ``vit``, the plugin's ViT encoder (the ``supmam`` model's sizes
and keys), its patch outputs mean-pooled; or ``htsat``, LAION-CLAP's HTS-AT from the ``laion_clap``
package (the paper's teacher: 48 kHz waveforms, 10 s, its own log-mel; its pooled ``embedding``),
kept under LAION-CLAP's own names (``audio_branch``, ``audio_projection``) so that
``supmam-export-clap`` writes a release-layout file the ``laion_clap`` teacher reads.

Caption tower: sentencepiece pieces, learned positions and pre-norm transformer layers
(``torch.nn.TransformerEncoder``, with a padding mask), mean-pooled over the caption's pieces.
Each tower has LAION-CLAP's projection (Linear, ReLU, Linear) to ``embed_dim``; the
embeddings are L2-normalised; the temperature is learned (CLIP's initial 0.07).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.models import BaseFairseqModel, register_model
from omegaconf import II

from ..core.captions import PAD_ID
from ..core.checkpoints import CheckpointError, load_strict, positions_for_frames, read_encoder
from ..core.contrastive import INITIAL_LOGIT_SCALE
from ..core.fbank import FbankSettings, model_input_fbank
from ..core.vit import VitEncoder, VitEncoderConfig
from ..teachers.laion_clap import build_htsat, front_end_to_float32, htsat_input, read_clap_model_config
from .linked_settings import CLIP_LENGTH, follow_task, link_help, settle_alone

logger = logging.getLogger(__name__)

AUDIO_TOWERS = ("vit", "htsat")


@dataclass
class ClapConfig(FairseqDataclass, VitEncoderConfig):
    audio_tower: ChoiceEnum(AUDIO_TOWERS) = field(
        default="vit", metadata={"help": "vit: the plugin's ViT (the encoder_* keys); htsat: LAION-CLAP's HTS-AT "
                                 "(model.htsat_model; needs task.sample_rate=48000)"})
    input_frames: int = field(
        default=II("task.target_frames"), metadata={"help": link_help(CLIP_LENGTH, "fbank frames per clip (vit tower)")})
    htsat_model: str = field(
        default="HTSAT-tiny", metadata={"help": "laion-clap's model config of the HTS-AT tower (HTSAT-tiny, HTSAT-base)"})
    text_layers: int = field(default=4, metadata={"help": "transformer layers of the caption tower"})
    text_embed_dim: int = field(default=256, metadata={"help": "width of the caption tower"})
    text_heads: int = field(default=4, metadata={"help": "attention heads of the caption tower"})
    max_text_tokens: int = field(
        default=64, metadata={"help": "pieces per caption, BOS and EOS included (longer captions are cut)"})
    embed_dim: int = field(default=512, metadata={"help": "joint audio-text space (LAION-CLAP: 512)"})
    audio_init: str = field(
        default="", metadata={"help": "vit tower: start the audio tower from the encoder of this checkpoint (a "
                              "supmam_classifier or supmam pretraining .pt of this plugin, or an AudioMAE .pth), as "
                              "LAION-CLAP's HTS-AT started from a classifier trained on AudioSet's labels; its "
                              "architecture must equal model.encoder_* (refused otherwise); '' = random init"})
    caption_tokenizer_sha256: str = field(
        default="", metadata={"help": "set by task clap_pretraining when the CLAP is built: the SHA-256 of the "
                              "caption tokenizer its text tower learns (a trained CLAP loaded with another one is "
                              "refused); not an option to set"})
    caption_tokenizer_path: str = field(
        default="", metadata={"help": "set with caption_tokenizer_sha256: where that tokenizer was"})
    init_logit_scale: float = field(
        default=INITIAL_LOGIT_SCALE, metadata={"help": "initial log inverse temperature (CLIP, CLAP: log(1/0.07))"})


def load_audio_init_encoder(encoder: VitEncoder, cfg: ClapConfig) -> None:
    """Load the encoder of ``cfg.audio_init`` (read by the one checkpoint reader) into ``encoder``,
    strictly: an architecture other than ``model.encoder_*`` is refused, naming both."""
    found = read_encoder(cfg.audio_init)
    theirs = {k: v for k, v in found.architecture.items() if k != "input_frames"}
    ours = {k: getattr(cfg, k) for k in theirs}
    differ = [k for k in theirs if ours[k] != theirs[k]]
    if differ:
        raise CheckpointError(
            f"model.audio_init={cfg.audio_init}: its encoder is " + ", ".join(f"{k}={theirs[k]}" for k in differ)
            + "; this CLAP's audio tower is " + ", ".join(f"{k}={ours[k]}" for k in differ)
            + ": set " + " ".join(f"model.{k}={theirs[k]}" for k in differ) + " to start from it")
    load_strict(encoder, positions_for_frames(found, cfg.input_frames, cfg.audio_init), cfg.audio_init,
                what="audio tower encoder", fix="model.audio_init: the encoder options (model.encoder_*) must match it")
    logger.info(f"audio tower initialised from the encoder of {cfg.audio_init} ({found.kind})")


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
        settle_alone(cfg)  # a config built in Python without a task: the default clip length
        self.cfg = cfg
        if cfg.audio_tower == "htsat":
            htsat = read_clap_model_config(cfg.htsat_model)["audio_cfg"]
            if sample_rate != htsat["sample_rate"]:
                raise ValueError(f"model.audio_tower=htsat hears {htsat['sample_rate']} Hz audio (as LAION-CLAP), but "
                                 f"task.sample_rate={sample_rate}: set task.sample_rate={htsat['sample_rate']} (clips "
                                 "are resampled when read)")
            self.clip_samples = htsat["clip_samples"]
            self.audio_branch = build_htsat(htsat)
            self.audio_projection = projection(self.audio_branch.num_features, cfg.embed_dim)
        else:
            self.fbank_settings = FbankSettings(sample_rate=sample_rate)
            self.encoder = VitEncoder(cfg)
            self.encoder.apply(self.encoder.init_module_weights)
            if cfg.audio_init:
                load_audio_init_encoder(self.encoder, cfg)
            self.audio_projection = projection(cfg.encoder_embed_dim, cfg.embed_dim)
        self.caption_encoder = CaptionEncoder(vocab_size, cfg)
        self.text_projection = projection(cfg.text_embed_dim, cfg.embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(float(cfg.init_logit_scale)))

    @classmethod
    def build_model(cls, cfg: ClapConfig, task, from_checkpoint: bool = False):
        follow_task(cfg, task)  # a config made in Python: its clip length follows this task
        cfg.max_text_tokens = task.cfg.max_text_tokens
        if cfg.audio_init and cfg.audio_tower != "vit":
            raise ValueError(f"model.audio_init={cfg.audio_init}: only the vit audio tower starts from a plugin "
                             "encoder (model.audio_tower=vit)")
        return cls(cfg, task.tokenizer.vocab_size, sample_rate=task.cfg.sample_rate)

    def embed_audio(self, source=None, source_lengths=None, fbank=None) -> torch.Tensor:
        """(B, E) unit audio embeddings of waveforms (B, N) or, for the ViT, a normalised fbank (B, frames, mel)."""
        if self.cfg.audio_tower == "htsat":
            if source is None:
                raise ValueError("model.audio_tower=htsat hears waveforms: set task.fbank_in_dataloader=false")
            pooled = self.audio_branch(htsat_input(source, self.clip_samples), device=source.device)["embedding"]
        else:
            fbank = model_input_fbank(source, source_lengths, fbank, self.cfg.input_frames, self.fbank_settings)
            pooled = self.encoder.encode(self.encoder.embed_patches(fbank)).mean(dim=1)  # (B, D)
        projection_dtype = self.audio_projection[0].weight.dtype
        return F.normalize(self.audio_projection(pooled.to(projection_dtype)).float(), dim=-1)

    def embed_text(self, text_tokens: torch.Tensor) -> torch.Tensor:
        """(B, N) piece ids -> (B, E) unit caption embeddings."""
        return F.normalize(self.text_projection(self.caption_encoder(text_tokens)).float(), dim=-1)

    def _apply(self, fn, recurse=True):
        # fairseq's --fp16 / --bf16 halve the whole model: HTS-AT's front end stays float32
        super()._apply(fn, recurse)
        if self.cfg.audio_tower == "htsat":
            front_end_to_float32(self.audio_branch)
        return self

    def forward(self, source=None, source_lengths=None, fbank=None, text_tokens=None, **unused) -> dict:
        return {"audio": self.embed_audio(source, source_lengths, fbank), "text": self.embed_text(text_tokens),
                "logit_scale": self.logit_scale}
