"""Model ``supmam_classifier``: a pretrained encoder, mean pooling and a linear head."""

import logging
from dataclasses import dataclass, field

import torch
import torch.nn as nn
from fairseq.dataclass import FairseqDataclass
from fairseq.models import BaseFairseqModel, register_model
from omegaconf import II

from ..core.fbank import FbankSettings, model_input_fbank, normalize_fbank
from .augment import freq_shift, freq_warp, mixup, spec_augment, time_roll
from ..core.masking import split_by_mask, structured_masking
from ..core.checkpoints import (
    CheckpointError, apply_architecture, audiomae_head, load_strict, positions_for_frames, read_checkpoint, read_encoder,
    upgrade_legacy_encoder,
)
from ..core.vit import VitEncoder, VitEncoderConfig
from .linked_settings import CLIP_LENGTH, follow_task, link_help, settle_alone

logger = logging.getLogger(__name__)


@dataclass
class SupmamClassifierConfig(FairseqDataclass, VitEncoderConfig):
    pretrained: str = field(
        default="",
        metadata={"help": "checkpoint whose encoder starts fine-tuning (its encoder architecture and position "
                  "table layout are taken from it; the input length stays the task's): a supmam pretraining or "
                  "supmam_classifier checkpoint (.pt; decoder, heads and teacher are dropped) or AudioMAE's "
                  "pretrained.pth / finetuned.pth; '' = random initialisation (from scratch)"},
    )
    input_frames: int = field(
        default=II("task.target_frames"), metadata={"help": link_help(CLIP_LENGTH, "fbank frames per clip")})
    num_classes: int = field(
        default=0, metadata={"help": "classes of the head; 0 = from the task's dict (else they must agree)"}
    )
    time_mask_ratio: float = field(
        default=0.2, metadata={"help": "training: fraction of time rows of patches dropped (paper: 0.2)"}
    )
    freq_mask_ratio: float = field(
        default=0.2, metadata={"help": "training: fraction of frequency columns of patches dropped (paper: 0.2)"}
    )
    specaug_time: int = field(
        default=0, metadata={"help": "training: widest SpecAugment time mask in frames (AudioMAE AudioSet: 192)"}
    )
    specaug_freq: int = field(
        default=0, metadata={"help": "training: widest SpecAugment frequency mask in bins (AudioMAE: 48)"}
    )
    mixup_alpha: float = field(
        default=0.0, metadata={"help": "training: mixup Beta(a, a) of clips and targets; 0 = off (AudioMAE AS: 0.5)"}
    )
    time_roll_frames: int = field(
        default=0,
        metadata={"help": "training: roll each clip's fbank in time by a random shift in [-N, N] frames "
                  "(circular, as AudioMAE's roll_mag_aug rolls the waveform); 0 = off"},
    )
    freq_shift_bins: int = field(
        default=0,
        metadata={"help": "training: shift each clip's fbank along the mel axis by a random shift in [-N, N] "
                  "bins, edge bins repeated (a crude change of speaker); 0 = off"},
    )
    freq_warp: float = field(
        default=0.0,
        metadata={"help": "training: warp each clip's frequency axis by a random factor in [1 - w, 1 + w] "
                  "(vocal tract length perturbation on the log-mel: a change of speaker); 0 = off"},
    )
    layer_decay: float = field(
        default=0.75,
        metadata={"help": "layer-wise lr decay: block i of n gets lr * decay^(n - i) (AudioMAE: 0.75); needs "
                  "optimizer=composite with dynamic_groups (see the fine-tuning recipes); 1 = off"},
    )


@register_model("supmam_classifier", dataclass=SupmamClassifierConfig)
class SupmamClassifier(BaseFairseqModel):
    """fbank -> patches -> encoder (structured patch dropping in training) -> mean -> LayerNorm ->
    Linear. forward returns {"logits": (B, C), "mixup": None or (lam, partner index)}."""

    def __init__(self, cfg: SupmamClassifierConfig, num_classes: int, sample_rate: int = 16000,
                 load_pretrained: bool = True):
        super().__init__()
        settle_alone(cfg)  # a config built in Python without a task: the default clip length
        self.cfg = cfg
        self.fbank_settings = FbankSettings(sample_rate=sample_rate)
        weights = None
        if cfg.pretrained and load_pretrained:
            # the checkpoint gives the encoder's architecture; the input length stays this model's
            # (the task's target_frames), the position table following it
            found = read_encoder(cfg.pretrained)
            apply_architecture(cfg, {k: v for k, v in found.architecture.items() if k != "input_frames"},
                               cfg.pretrained)
            weights = positions_for_frames(found, cfg.input_frames, cfg.pretrained)
        self.encoder = VitEncoder(cfg)
        self.encoder.apply(self.encoder.init_module_weights)
        if weights is not None:
            load_strict(self.encoder, weights, cfg.pretrained, what="encoder",
                        fix="the encoder size options (model.encoder_*) must match the checkpoint")
            logger.info(f"encoder initialised from {cfg.pretrained}")
        self.fc_norm = nn.LayerNorm(cfg.encoder_embed_dim, eps=1e-6)
        self.head = nn.Linear(cfg.encoder_embed_dim, num_classes)
        nn.init.trunc_normal_(self.head.weight, std=2e-5)  # AudioMAE's head initialisation
        nn.init.zeros_(self.head.bias)
        self._set_layer_decay(cfg.layer_decay)

    def _set_layer_decay(self, decay: float) -> None:
        """Tag parameters with fairseq's ``optim_overrides`` lr scales (composite optimizer):
        patch embedding and [CLS] = layer 0, block i = layer i + 1, head = layer n + 1."""
        if decay >= 1.0:
            return
        depth = len(self.encoder.blocks) + 1
        layers = [(self.encoder.patch_embed, 0)] + [(b, i + 1) for i, b in enumerate(self.encoder.blocks)]
        for module, layer in layers:
            for p in module.parameters():
                p.optim_overrides = {"optimizer": {"lr_scale": decay ** (depth - layer)}}
        if self.encoder.cls_token is not None:
            self.encoder.cls_token.optim_overrides = {"optimizer": {"lr_scale": decay ** depth}}

    @classmethod
    def from_audiomae(cls, path: str, **overrides) -> "SupmamClassifier":
        """AudioMAE's fine-tuned model (``finetuned.pth``: encoder, ``fc_norm``, ``head``) as a
        classifier with its head, in eval mode: its logits are AudioMAE's global-pooling ones
        (mean of the patch outputs before the final norm, fc_norm, head). ``overrides``: other
        :class:`SupmamClassifierConfig` fields (e.g. the fine-tuning masks for further training)."""
        from omegaconf import OmegaConf

        head = audiomae_head(read_checkpoint(path), path)
        if head is None:
            raise CheckpointError(f"{path}: has no classifier head (fc_norm.*, head.*): not an AudioMAE fine-tuned "
                                  f"file; to fine-tune from it, use model.pretrained={path}")
        cfg = OmegaConf.structured(SupmamClassifierConfig(pretrained=path, **overrides))
        model = cls(cfg, num_classes=int(head["head.weight"].size(0)))
        load_strict(model.fc_norm, {k[len("fc_norm."):]: v for k, v in head.items() if k.startswith("fc_norm.")},
                    path, what="fc_norm", fix="the head must be as wide as the encoder")
        load_strict(model.head, {k[len("head."):]: v for k, v in head.items() if k.startswith("head.")},
                    path, what="head", fix="the head must be as wide as the encoder")
        return model.eval()

    def upgrade_state_dict_named(self, state_dict, name):
        """Legacy fine-tuned checkpoints (no ``encoder.pos_embed``: the table was rebuilt, always
        the grid layout) get that table, so they load with the positions they were trained with."""
        prefix = f"{name}." if name else ""
        upgrade_legacy_encoder(state_dict, f"{prefix}encoder.", self.encoder.grid, self.cfg.encoder_embed_dim)
        super().upgrade_state_dict_named(state_dict, name)

    @classmethod
    def build_model(cls, cfg: SupmamClassifierConfig, task, from_checkpoint: bool = False):
        num_classes = getattr(task, "num_classes", 0)
        if cfg.num_classes and num_classes and cfg.num_classes != num_classes:
            raise ValueError(
                f"model.num_classes={cfg.num_classes} but the task's class list "
                f"({task.cfg.data}/dict.{task.cfg.labels}.txt) has {num_classes}; set model.num_classes=0 "
                "to take the class list's count, or fix the dict"
            )
        num_classes = cfg.num_classes or num_classes
        if num_classes <= 0:
            raise ValueError("supmam_classifier needs classes: set task.labels or model.num_classes")
        follow_task(cfg, task)  # a config made in Python: its clip length follows this task
        # A fine-tuned checkpoint holds the whole model: do not read model.pretrained again.
        return cls(cfg, num_classes, sample_rate=task.cfg.sample_rate, load_pretrained=not from_checkpoint)

    def input_fbank(self, source, source_lengths=None, fbank=None) -> torch.Tensor:
        """(B, frames, mel) float32 normalised fbank: given, or computed here on the model's device
        from the full-precision waveform (see :func:`model_input_fbank`)."""
        return model_input_fbank(source, source_lengths, fbank, self.cfg.input_frames, self.fbank_settings)

    def forward(self, source=None, source_lengths=None, fbank=None, **unused) -> dict:
        fbank = self.input_fbank(source, source_lengths, fbank)  # (B, T, F)
        mixed = None
        if self.training:
            if self.cfg.time_roll_frames > 0:
                fbank = time_roll(fbank, self.cfg.time_roll_frames)
            if self.cfg.freq_shift_bins > 0:
                fbank = freq_shift(fbank, self.cfg.freq_shift_bins)
            if self.cfg.freq_warp > 0:
                fbank = freq_warp(fbank, self.cfg.freq_warp)
            if self.cfg.specaug_time or self.cfg.specaug_freq:
                # AudioMAE masks the log-mel with 0 before normalising
                fill = float(normalize_fbank(torch.tensor(0.0)))
                fbank = spec_augment(fbank, self.cfg.specaug_time, self.cfg.specaug_freq, fill)
            if self.cfg.mixup_alpha > 0:
                fbank, lam, partner = mixup(fbank, self.cfg.mixup_alpha)
                mixed = (lam, partner)
        tokens = self.encoder.embed_patches(fbank)  # (B, L, D)
        visible_index = None
        if self.training and (self.cfg.time_mask_ratio > 0 or self.cfg.freq_mask_ratio > 0):
            mask = structured_masking(
                fbank.size(0), self.encoder.grid, self.cfg.time_mask_ratio, self.cfg.freq_mask_ratio, fbank.device
            )
            visible_index, _ = split_by_mask(mask)
        encoded = self.encoder.encode(tokens, visible_index, final_norm=False)  # (B, K, D)
        logits = self.head(self.fc_norm(encoded.mean(dim=1)))  # (B, C)
        return {"logits": logits, "mixup": mixed}
