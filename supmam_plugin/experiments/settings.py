"""Typed settings of the runs the experiments make (supmam-demo's flags, a study's sizes), and the
fixed fairseq overrides that make a run demo-sized and CPU-bound."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from .fairseq_runs import PLUGIN_DIR

TINY = ["model.encoder_layers=2", "model.encoder_embed_dim=192", "model.encoder_heads=3"]
# The decoder at the demo's size; AudioMAE's 16 blocks would cost 8 times the demo's pretraining.
TINY_DECODER = ["model.decoder_embed_dim=128", "model.decoder_heads=4", "model.cls_hidden_dim=64"]
ON_CPU = ["common.cpu=true", "distributed_training.distributed_world_size=1", "dataset.num_workers=0",
          "common.log_format=json", "common.log_interval=50", f"common.user_dir={PLUGIN_DIR}"]
# How fine-tuning a 2-layer model on 200 clips differs from the ESC-50 recipe it starts from
# (measured on the valid split: RESULTS.md). AudioMAE's lr rule (1e-3 x batch / 256) is far too
# slow for a small model; patch dropping, drop path, SpecAugment and mixup cost fit without buying
# held-out accuracy at this size; a time roll (AudioMAE's roll_mag_aug) helps, and so does a random
# warp of the frequency axis by up to 10 % (vocal tract length perturbation: a new voice). The
# recipe's layer-wise lr decay (0.75) stays for pretrained encoders: it helps them on valid.
SMALL_FINETUNING = ["optimization.lr=[0.001]", "optimizer.groups.default.lr_float=0.001",
                    "model.time_mask_ratio=0", "model.freq_mask_ratio=0", "model.drop_path=0",
                    "model.specaug_time=0", "model.specaug_freq=0", "model.mixup_alpha=0",
                    "model.time_roll_frames=20", "model.freq_warp=0.1"]
# A random init has no pretrained lower layers to protect: every layer learns at the full lr.
FROM_SCRATCH = ["model.layer_decay=1.0"]


class ExperimentError(ValueError):
    """Settings or data an experiment cannot run with; the message says what to change."""


@dataclass
class Budget:
    """How long each run trains and on what batch (supmam-demo's flags; a study's sizes per task)."""

    pretrain_updates: int = 2000
    pretrain_batch_size: int = 32
    pretrain_lr: float = 1e-3
    finetune_updates: int = 2400
    batch_size: int = 16  # clips per fine-tuning update
    validate_interval: int = 10  # fine-tuning validates every N epochs
    teacher_updates: int = 1200  # a CLAP teacher trained here
    classifier_updates: int = 2000  # the classifier on every labelled pretraining clip
    mae_updates: int | None = None  # the AudioMAE pretraining a teacher's classifier starts from (None: pretrain_updates)


@dataclass
class TeacherSettings:
    """The CLAP methods' teacher: ``name`` (``model.teacher``; None: the recipe's own) with ``checkpoint``,
    or one trained here by ``recipe`` (teacher_recipes.TEACHER_RECIPES) whose classifier starts from ``start``."""

    name: str | None = None
    checkpoint: str | None = None
    recipe: str | None = None
    start: str = "audiomae"


@dataclass
class Workspace:
    """Where runs go (``out``: a folder per run, their logs in out/logs), whether fairseq's output is
    streamed, and whether a finished run of the same command is reused."""

    out: str
    verbose: bool = False
    reuse: bool = False

    def log(self, name: str) -> str:
        return os.path.join(self.out, "logs", f"{name}.log")


@dataclass
class Folders:
    """The labelled folder (``data``: train/valid/test) and the pretraining folder and split of a run,
    with what was read from them: multi-label or not, fbank frames per clip."""

    data: str
    pretrain_data: str
    split: str
    setting: str = "unlabelled-pool"
    multi_label: bool = False
    frames: int = 1024
    also_score: list[str] = field(default_factory=list)

    @property
    def metric(self) -> str:
        return "mAP" if self.multi_label else "accuracy"
