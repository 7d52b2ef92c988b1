"""Model ``supmam``: AudioMAE / MAM-CLAP / SupMAM / SupMAM-CLAP pretraining in one class.

Reads top to bottom as the paper's Figure 1: fbank -> patchify -> mask -> encode the visible
patches -> decode all patches with windowed attention -> head -> targets (normalised
spectrogram patches, or a frozen teacher's features: :mod:`supmam_plugin.teachers`), plus a classification branch on
the mean of the visible encoder outputs.

The backbone is AudioMAE's for every variant (the paper: "we take AudioMAE as the backbone"):
ViT encoder with a [CLS] token, AudioMAE's position tables, AudioMAE's post-norm cosine-attention
Swin decoder blocks (:mod:`audiomae_swin_block`), LayerNorm eps 1e-6. Only the head differs with
the target: a plain Linear for spectrogram patches (AudioMAE's ``decoder_pred``: a LayerNorm
there would force unit-variance predictions and keep the MSE from hedging toward the mean), and
Linear + LayerNorm for teacher features (the paper's "fully-connected layer followed by layer
normalization"). With the fixture's sizes and AudioMAE's ``pretrained.pth``
(:meth:`SupmamModel.from_audiomae`) it computes the official predictions and loss.
"""

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn as nn
from fairseq.dataclass import ChoiceEnum
from fairseq.models import BaseFairseqModel, register_model
from omegaconf import II

from ..core.fbank import FbankSettings, model_input_fbank
from ..core.checkpoints import (
    LEGACY_PRETRAINING, CheckpointError, apply_architecture, fairseq_configs, is_fairseq_checkpoint,
    legacy_pretraining_reason, linked_fields, load_strict, read_checkpoint, supmam_from_audiomae_state,
    upgrade_teacher_fields,
)
from ..teachers import Teacher, TeacherConfig, build_teacher
from ..core.masking import clip_noise, masking_from_noise
from ..core.vit import VitEncoder, VitEncoderConfig
from .linked_settings import CLIP_LENGTH, SEED, follow_task, link_help, settle_alone
from .window_decoder import WindowDecoder

logger = logging.getLogger(__name__)

TARGET_CHOICES = ChoiceEnum(["spectrogram", "teacher"])


@dataclass
class SupmamConfig(VitEncoderConfig, TeacherConfig):
    target: TARGET_CHOICES = field(
        default="spectrogram",
        metadata={"help": "decoder target: 'spectrogram' (norm_pix patches, AudioMAE/SupMAM; head: AudioMAE's "
                  "plain Linear) or 'teacher' (a frozen teacher's features per patch, model.teacher: "
                  "MAM-CLAP/SupMAM-CLAP with laion_clap; head: the paper's Linear + LayerNorm)"},
    )
    mask_ratio: float = field(
        default=0.8, metadata={"help": "fraction of patches masked (paper: 0.8 / 0.2 / 0.4 / 0.4)"}
    )
    target_on_visible: Optional[bool] = field(
        default=None,
        metadata={"help": "add the loss on the VISIBLE patches to the loss on the masked ones: null = the "
                  "paper's choice (yes for the teacher target, eq. 1; no for the spectrogram, AudioMAE); "
                  "false with the teacher target is the paper's masked-only ablation"},
    )
    norm_pix_loss: bool = field(
        default=True, metadata={"help": "spectrogram target: normalise each patch (AudioMAE's norm_pix)"}
    )
    decoder_embed_dim: int = field(default=512, metadata={"help": "decoder width (AudioMAE: 512)"})
    decoder_layers: int = field(
        default=1,
        metadata={"help": "decoder blocks: AudioMAE's post-norm Swin blocks with scaled cosine attention, "
                  "alternately unshifted and shifted (paper: 1; its Table 3 varies 1-3; AudioMAE: 16)"},
    )
    decoder_heads: int = field(default=16, metadata={"help": "decoder attention heads (AudioMAE: 16)"})
    decoder_window_time: int = field(default=4, metadata={"help": "attention window, patches along time"})
    decoder_window_freq: int = field(default=4, metadata={"help": "attention window, patches along frequency"})
    decoder_shift_time: int = field(
        default=2, metadata={"help": "window shift along time on odd blocks (AudioMAE: 2)"}
    )
    decoder_shift_freq: int = field(default=0, metadata={"help": "window shift along frequency on odd blocks"})
    cls_branch: bool = field(
        default=False,
        metadata={"help": "classification branch on mean-pooled visible tokens (SupMAM, SupMAM-CLAP); "
                  "needs task.labels"},
    )
    cls_hidden_dim: int = field(default=768, metadata={"help": "hidden width of the branch's 2-layer MLP"})
    clone_batch: int = field(
        default=1,
        metadata={"help": "masks per clip in training (EAT's and data2vec 2.0's clone_batch): each clip is read, "
                  "turned into fbank, embedded and given its targets once, then masked K times independently, so "
                  "a batch of B clips trains on B*K masked samples (lower dataset.batch_size by K to keep the "
                  "compute of a step); validation masks once"},
    )
    input_frames: int = field(
        default=II("task.target_frames"), metadata={"help": link_help(CLIP_LENGTH, "fbank frames per clip")})
    seed: int = field(default=II("common.seed"), metadata={"help": link_help(SEED, "seed of the masks")})


def patchify(fbank: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(B, T, F) fbank -> (B, (T/p) * (F/p), p * p) patches, row-major over (time, freq)."""
    batch, frames, bins = fbank.shape
    p = patch_size
    x = fbank.reshape(batch, frames // p, p, bins // p, p)
    return x.permute(0, 1, 3, 2, 4).reshape(batch, (frames // p) * (bins // p), p * p)


def normalise_patches(patches: torch.Tensor) -> torch.Tensor:
    """AudioMAE's norm_pix target: each patch to zero mean, unit (unbiased) variance."""
    mean = patches.mean(dim=-1, keepdim=True)
    var = patches.var(dim=-1, keepdim=True)
    return (patches - mean) / (var + 1e-6).sqrt()


class ClassificationBranch(nn.Module):
    """Linear -> BatchNorm -> ReLU -> Linear on pooled tokens: (B, D) -> (B, C) logits."""

    def __init__(self, in_dim: int, hidden_dim: int, num_classes: int):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, hidden_dim), nn.BatchNorm1d(hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, num_classes)
        )

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        batch_norm = self.mlp[1]
        if self.training and pooled.size(0) == 1:
            # BatchNorm cannot take statistics of one clip (a tail batch on one GPU):
            # use its running statistics for this batch.
            batch_norm.eval()
            try:
                return self.mlp(pooled)
            finally:
                batch_norm.train()
        return self.mlp(pooled)


@register_model("supmam", dataclass=SupmamConfig)
class SupmamModel(BaseFairseqModel):
    """Masked audio model. forward(...) returns a dict (B' = B * copies: ``clone_batch`` masks per
    clip in training, rows clip-major): prediction (B', L, D_target), target (B', L, D_target),
    mask (B', L) 1 = masked, copies (int), loss_on_visible (bool), cls_logits (B', C) or None."""

    def __init__(self, cfg: SupmamConfig, num_classes: int = 0, sample_rate: int = 16000, teacher_cached: bool = False):
        super().__init__()
        if cfg.clone_batch < 1:
            raise ValueError(f"model.clone_batch={cfg.clone_batch}: give the number of masks per clip, 1 or more")
        settle_alone(cfg)  # a config built in Python without a task: the clip length and seed defaults
        self.cfg = cfg
        self.fbank_settings = FbankSettings(sample_rate=sample_rate)
        self.encoder = VitEncoder(cfg)
        grid = self.encoder.grid
        self.decoder = WindowDecoder(
            in_dim=cfg.encoder_embed_dim,
            width=cfg.decoder_embed_dim,
            depth=cfg.decoder_layers,
            heads=cfg.decoder_heads,
            grid=grid,
            window=(cfg.decoder_window_time, cfg.decoder_window_freq),
            shift=(cfg.decoder_shift_time, cfg.decoder_shift_freq),
            mlp_ratio=cfg.mlp_ratio,
            position_layout=cfg.position_layout,
        )
        # The teacher is kept out of the module tree: never saved in our checkpoints, never
        # handed to the optimizer or DDP. It follows the model's device/dtype in forward.
        self._teacher: list[Teacher] = []
        if cfg.target == "teacher":
            student_seconds = cfg.input_frames * self.fbank_settings.frame_shift_ms / 1000
            # teacher_cached (task.teacher_cache): the maps come from the cache, the teacher's network may stay unbuilt
            self._teacher.append(build_teacher(cfg, grid, student_seconds, cached=teacher_cached))
            target_dim = self._teacher[0].output_dim
            # the paper's h(.) for teacher (CLAP) features: a fully-connected layer followed by layer normalisation
            self.head = nn.Sequential(nn.Linear(cfg.decoder_embed_dim, target_dim), nn.LayerNorm(target_dim, eps=1e-6))
        else:
            # AudioMAE's decoder_pred: a plain Linear (predictions free to shrink toward the mean)
            target_dim = cfg.patch_size * cfg.patch_size
            self.head = nn.Sequential(nn.Linear(cfg.decoder_embed_dim, target_dim))
        self.cls_branch = None
        if cfg.cls_branch:
            if num_classes <= 0:
                raise ValueError("model.cls_branch=true needs labels: set task.labels (e.g. 'label')")
            self.cls_branch = ClassificationBranch(cfg.encoder_embed_dim, cfg.cls_hidden_dim, num_classes)
        self.num_updates = 0
        self.apply(self.encoder.init_module_weights)

    @classmethod
    def from_audiomae(cls, path: str, **overrides) -> "SupmamModel":
        """The model of AudioMAE's full ``pretrained.pth`` (encoder, Swin decoder, ``decoder_pred``),
        sizes read off the file, weights loaded strictly, in eval mode. ``overrides``: other
        :class:`SupmamConfig` fields (defaults: AudioMAE's ``mask_ratio`` 0.8, ``norm_pix_loss``)."""
        return cls.from_audiomae_state(read_checkpoint(path), path, **overrides)

    @classmethod
    def from_audiomae_state(cls, state, path: str, **overrides) -> "SupmamModel":
        """:meth:`from_audiomae` of what ``torch.load`` returned for ``path``."""
        from omegaconf import OmegaConf

        weights, fields = supmam_from_audiomae_state(state, path)
        cfg = OmegaConf.structured(SupmamConfig(**overrides))
        settle_alone(cfg)
        apply_architecture(cfg, fields, path)
        model = cls(cfg, num_classes=0)
        load_strict(model, weights, path, what="AudioMAE pretraining model",
                    fix="the file is not AudioMAE's decoder_mode=1 pretraining model")
        return model.eval()

    @classmethod
    def from_checkpoint(cls, path: str, teacher_checkpoint: str | None = None) -> "SupmamModel":
        """The model of a ``supmam`` pretraining checkpoint or of AudioMAE's full ``pretrained.pth``, in
        eval mode, with ``num_updates`` of its training. A fairseq checkpoint builds the model from its
        own ``cfg.model`` (the task's data folder need not exist) and loads its weights strictly.
        ``teacher_checkpoint`` replaces the teacher's path (target=teacher) when the recorded one moved.

        Raises:
            FileNotFoundError: no such file, or its teacher is not where it was.
            CheckpointError: not such a model (a fine-tuned classifier has no decoder), a legacy
                decoder, or weights that do not fit.
        """
        state = read_checkpoint(path)
        if not is_fairseq_checkpoint(state):  # AudioMAE's pretrained.pth (refused with the reason otherwise)
            return cls.from_audiomae_state(state, path)
        try:
            _, model_cfg, task_cfg = fairseq_configs(state, path, models=("supmam",))
        except CheckpointError as e:
            raise CheckpointError(f"{e} (a fine-tuned classifier has no decoder: it is not a pretraining model)") from None
        weights = state["model"]
        reason = legacy_pretraining_reason(weights)
        if reason is not None:
            raise CheckpointError(LEGACY_PRETRAINING.format(path=path) + f" (found: {reason})")
        known = {f.name for f in dataclasses.fields(SupmamConfig)}
        fields = {k: v for k, v in upgrade_teacher_fields(model_cfg).items() if k in known}
        fields.update(linked_fields(state, "supmam", model_cfg, task_cfg))  # what its links followed when it was saved
        if teacher_checkpoint:
            fields["teacher_checkpoint"] = teacher_checkpoint
        fields["target"] = str(fields.get("target", "spectrogram"))
        if fields["target"] == "teacher":
            teacher = fields.get("teacher_checkpoint") or ""
            if teacher != "random" and not os.path.isfile(teacher):
                raise FileNotFoundError(
                    f"{path} was trained with the {fields.get('teacher', 'laion_clap')} teacher {teacher!r}, which "
                    "is not there: give its new path (supmam-plot-reconstruction --teacher-checkpoint)")
        head = weights.get("cls_branch.mlp.3.weight")
        model = cls(SupmamConfig(**fields), num_classes=int(head.shape[0]) if head is not None else 0,
                    sample_rate=int(task_cfg.get("sample_rate") or 16000))
        load_strict(model, weights, path, what="model", fix="they do not fit the model its cfg describes")
        history = state.get("optimizer_history") or []
        model.num_updates = int(history[-1].get("num_updates", 0) or 0) if history else 0
        return model.eval()

    def upgrade_state_dict_named(self, state_dict, name):
        """Refuse (naming the way out) a legacy pretraining state dict, whose decoder does not fit."""
        prefix = f"{name}." if name else ""
        own = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
        reason = legacy_pretraining_reason(own)
        if reason is not None:
            raise CheckpointError(LEGACY_PRETRAINING.format(path="this checkpoint") + f" (found: {reason})")
        super().upgrade_state_dict_named(state_dict, name)

    @classmethod
    def build_model(cls, cfg: SupmamConfig, task):
        follow_task(cfg, task)  # a config made in Python: its links follow this task
        return cls(cfg, num_classes=getattr(task, "num_classes", 0), sample_rate=task.cfg.sample_rate,
                   teacher_cached=bool(getattr(task.cfg, "teacher_cache", None)))

    @property
    def teacher(self) -> Optional[Teacher]:
        return self._teacher[0] if self._teacher else None

    def set_num_updates(self, num_updates):
        super().set_num_updates(num_updates)
        self.num_updates = num_updates

    def input_fbank(self, source, source_lengths=None, fbank=None) -> torch.Tensor:
        """(B, frames, mel) float32 normalised fbank: given, or computed here on the model's device
        from the full-precision waveform (see :func:`model_input_fbank`)."""
        frames = self.encoder.grid[0] * self.cfg.patch_size
        return model_input_fbank(source, source_lengths, fbank, frames, self.fbank_settings)

    def mask_for(self, clip_ids: Optional[torch.Tensor], batch_size: int, device,
                 mask_noise: Optional[torch.Tensor] = None, copies: int = 1) -> tuple:
        """Random masking (visible_index, mask, restore_index) of ``batch_size`` clips, each masked
        ``copies`` times (rows clip-major: clip 0's copies first), that depends only on (seed, update,
        clip id, copy): a clip gets the same masks whatever the batch split (1 or N processes).
        Without clip ids, torch's RNG (seeded by fairseq at every update). With ``mask_noise``
        (B * copies, L), that noise: the ``int(L * (1 - mask_ratio))`` patches with the smallest noise stay
        visible, exactly as AudioMAE's ``random_masking`` does with its ``torch.rand`` noise."""
        num_patches = self.encoder.num_patches
        if copies > 1 and clip_ids is not None:  # key (clip, copy) as clip * copies + copy: distinct in a batch
            clip_ids = clip_ids.repeat_interleave(copies) * copies + torch.arange(copies).repeat(batch_size).to(clip_ids)
        batch_size *= copies
        if mask_noise is not None:
            if tuple(mask_noise.shape) != (batch_size, num_patches):
                raise ValueError(f"mask_noise must be (B, L) = ({batch_size}, {num_patches}), "
                                 f"got {tuple(mask_noise.shape)}")
            noise = mask_noise.to(device)
        elif clip_ids is None:
            noise = torch.rand(batch_size, num_patches, device=device)
        else:
            salt = self.cfg.seed * 1_000_003 + 2 * self.num_updates + int(not self.training)
            noise = clip_noise(clip_ids.to(device), num_patches, salt)
        return masking_from_noise(noise, self.cfg.mask_ratio)

    def teacher_targets(self, teacher_source=None, teacher_source_lengths=None, teacher_token_map=None) -> torch.Tensor:
        """(B, L, D) float32 teacher features on the patch grid, from the teacher's audio (B, S) (with
        its valid lengths (B,)) or from its precomputed native map (B, C, rows, steps). The teacher
        runs in its own precision (:meth:`Teacher.follow`) whatever the student's, outside any
        autocast (``common.amp``)."""
        given = teacher_token_map if teacher_token_map is not None else teacher_source
        if given is None:
            raise ValueError("model.target=teacher but the batch has neither the teacher's audio nor its cached "
                             "maps: load the data with the supmam_pretraining task after building the model")
        teacher = self.teacher.follow(given.device)
        with torch.autocast(device_type=given.device.type, enabled=False):
            if teacher_token_map is not None:
                return teacher.targets_from_token_map(teacher_token_map)
            return teacher(teacher_source, teacher_source_lengths)

    def forward(
        self,
        source: Optional[torch.Tensor] = None,
        source_lengths: Optional[torch.Tensor] = None,
        fbank: Optional[torch.Tensor] = None,
        teacher_source: Optional[torch.Tensor] = None,
        teacher_source_lengths: Optional[torch.Tensor] = None,
        teacher_token_map: Optional[torch.Tensor] = None,
        clip_ids: Optional[torch.Tensor] = None,
        mask_noise: Optional[torch.Tensor] = None,
        **unused,
    ) -> dict:
        """Inputs: ``source`` (B, S) 16 kHz waveforms with ``source_lengths`` (B,), or ``fbank``
        (B, frames, mel) already normalised; ``teacher_source`` (B, S') the teacher's audio (with
        ``teacher_source_lengths`` (B,)) or ``teacher_token_map`` (B, C, rows, steps) for the teacher target; ``clip_ids`` (B,) key the masks;
        ``mask_noise`` (B, L) float, optional: mask with this noise instead (smallest stay
        visible; e.g. to replay AudioMAE's own masking)."""
        fbank = self.input_fbank(source, source_lengths, fbank)  # (B, 1024, 128) float32
        batch_size = fbank.size(0)
        copies = self.cfg.clone_batch if self.training else 1
        tokens = self.encoder.embed_patches(fbank).repeat_interleave(copies, dim=0)  # (B*copies, L, D) with positions
        visible_index, mask, restore_index = self.mask_for(clip_ids, batch_size, fbank.device, mask_noise, copies)
        visible = self.encoder.encode(tokens, visible_index)  # (B*copies, K, D), visible patches only
        decoded = self.decoder(visible, restore_index)  # (B*copies, L, decoder width)
        prediction = self.head(decoded)  # (B*copies, L, D_target)
        if self.cfg.target == "teacher":
            target = self.teacher_targets(teacher_source, teacher_source_lengths, teacher_token_map)
        else:  # float32, from the float32 fbank, whatever the model's precision
            target = patchify(fbank, self.cfg.patch_size)
            if self.cfg.norm_pix_loss:
                target = normalise_patches(target)
        cls_logits = self.cls_branch(visible.mean(dim=1)) if self.cls_branch is not None else None
        return {
            "prediction": prediction,
            "target": target.repeat_interleave(copies, dim=0),  # (B*copies, L, D_target): once per clip
            "copies": copies,
            "mask": mask.float(),
            "loss_on_visible": (self.cfg.target == "teacher" if self.cfg.target_on_visible is None
                                else bool(self.cfg.target_on_visible)),
            "cls_logits": cls_logits,
        }
