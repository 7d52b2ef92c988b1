"""A demo-sized CLAP teacher trained here (``supmam-demo --teacher clap`` with no checkpoint, the
claims study, ``scripts/clap_study.py``): the ``clap/vit`` recipe at the demo's tiny size, on the
captions of a folder's UNLABELLED pool only, then scored zero-shot by fairseq-validate.

The pool's captions are text about the pool's sounds, as LAION-CLAP's 630k captions are text about
sounds: the paper's "AS+TA" setting in miniature. No labelled clip, label, valid or test clip
reaches the teacher: it trains on the pool split with validation off and its last checkpoint is kept
(nothing is chosen on a labelled split). The class names reach it only when it is scored zero-shot.
"""
from __future__ import annotations

import os

from .fairseq_runs import (
    console_script, empty_run_folder, finished_output, hydra_train_command, parse_validate_output, run_logged,
    training_seconds, validate_command,
)
from .settings import ExperimentError, Workspace

SMALL_CAPTION_TOWER = ["model.text_layers=2", "model.text_embed_dim=192", "model.text_heads=3", "model.embed_dim=128"]


def caption_split(folder: str) -> str:
    """The unlabelled pool of ``folder`` whose captions train the teacher: ``pool`` (make sound-events)
    when it has one, else ``train`` (make demo's pool folder, data/demo_pool, holds only the pool)."""
    for split in ("pool", "train"):
        if os.path.isfile(os.path.join(folder, f"{split}.tsv")) and os.path.isfile(os.path.join(folder, f"{split}.text")):
            return split
    raise ExperimentError(f"{folder}: no captioned pool to train a CLAP teacher on (pool.tsv + pool.text, or train.tsv + "
                     "train.text); make one with `make sound-events`, or pass a trained teacher's checkpoint")


def train_tokenizer(ws: Workspace, folder: str, split: str, reuse: bool = False, name: str = "text",
                    label_captions: bool = False) -> str:
    """OUT/{name}.spm.model: supmam-train-tokenizer on ``split``'s captions (``label_captions``: a split
    without captions is captioned from its labels, as the CLAP's training will); returns its path."""
    tokenizer = os.path.join(ws.out, f"{name}.spm.model")
    log = ws.log("tokenizer" if name == "text" else f"tokenizer_{name}")
    from_labels = label_captions and not os.path.isfile(os.path.join(folder, f"{split}.text"))
    run_logged([console_script("supmam-train-tokenizer"), folder, "--splits", split, "--out", tokenizer,
                *(["--label-captions", "label"] if from_labels else [])],
               log, "tokenizer", ws.verbose, reuse=reuse and os.path.isfile(tokenizer))
    return tokenizer


def train_clap_teacher(ws: Workspace, folder: str, seed: int, updates: int, frames: int, audio_tower: list[str],
                       on_cpu: list[str], batch_size: int = 32, lr: float = 1e-3, reuse: bool = False,
                       split: str | None = None, name: str | None = None,
                       extra: list[str] = ()) -> tuple[str, float, bool]:
    """Train a CLAP (its audio tower: the overrides ``audio_tower``, e.g. the demo's TINY; the small
    caption tower) on the captions of ``folder``'s ``split`` (default: its unlabelled pool,
    :func:`caption_split`) into OUT/{name} (default clap_teacher_s{seed}); ``extra``: more overrides
    (LAION-CLAP's recipe: ``model.audio_init=CLASSIFIER.pt task.label_captions=label``).

    Returns (checkpoint_last.pt, seconds fairseq trained, whether a finished run was reused)."""
    pool = caption_split(folder) if split is None else None  # a labelled split given may have no captions
    split = split or pool
    tokenizer = train_tokenizer(ws, folder, split, reuse, name="text" if split == pool else f"text_{split}",
                                label_captions="task.label_captions=label" in extra)
    name = name or f"clap_teacher_s{seed}"
    save_dir = os.path.join(ws.out, name)
    cmd = hydra_train_command("clap", "vit", save_dir, [
        f"task.data={folder}", f"task.caption_tokenizer={os.path.abspath(tokenizer)}", f"task.target_frames={frames}",
        f"dataset.train_subset={split}", "dataset.disable_validation=true", f"dataset.batch_size={batch_size}",
        *audio_tower, *SMALL_CAPTION_TOWER, *on_cpu, f"common.seed={seed}", "optimization.max_epoch=0",
        f"optimization.max_update={updates}", f"optimization.lr=[{lr}]",
        f"lr_scheduler.warmup_updates={max(1, updates // 10)}", "checkpoint.save_interval_updates=0", *extra])
    log = ws.log(name)
    reused = reuse and finished_output(cmd, log) is not None
    print(f"[demo] {name}: CLAP teacher on {os.path.basename(folder)} {split} captions, {updates} updates"
          + (f" ({' '.join(extra)})" if extra else "")
          + (" (reused)" if reused else f" (log {log})"), flush=True)
    if not reused:
        empty_run_folder(save_dir)
    output = run_logged(cmd, log, name, ws.verbose, reuse=reused)
    return os.path.join(save_dir, "checkpoint_last.pt"), training_seconds(output), reused


def zero_shot_score(ws: Workspace, name: str, data: str, checkpoint: str, subset: str, multi_label: bool,
                    prompt: str | None = None, reuse: bool = False) -> float:
    """The CLAP's zero-shot score (%) on ``subset`` of ``data``: accuracy, or mAP when ``multi_label``,
    from one prompt per class of ``data``/dict.label.txt (fairseq-validate, task clap_pretraining)."""
    task = {"data": os.path.abspath(data), "zero_shot_labels": "label", "multi_label": multi_label}
    if not os.path.isfile(os.path.join(data, f"{subset}.text")):  # no captions (data/demo): the words stand in
        task["captions"] = "label"
    if prompt is not None:
        task["zero_shot_prompt"] = prompt
    cmd = validate_command(data, checkpoint, subset, batch_size=50, cpu=True, task="clap_pretraining",
                           model_overrides=task)
    output = run_logged(cmd, ws.log(f"{name}_{subset}"), name, ws.verbose, reuse=reuse)
    scores = parse_validate_output(output, subset)
    return scores["zero_shot_mAP" if multi_label else "zero_shot_accuracy"]

