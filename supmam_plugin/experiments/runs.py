"""The runs every experiment is made of, through fairseq's own tools: a pretraining, a fine-tuning
scored on held-out splits, the classifier on every labelled pretraining clip, one checkpoint scored
on one split; each logged under OUT/logs and reused when a finished run of the same command is there."""
from __future__ import annotations

import json
import os

from ..recipes.compose import method_facts
from .fairseq_runs import (
    empty_run_folder, finished_output, hydra_train_command, parse_per_class_ap, parse_validate_output, run_logged,
    training_seconds, validate_command,
)
from .folders import has_split
from .settings import FROM_SCRATCH, ON_CPU, SMALL_FINETUNING, TINY, TINY_DECODER, Budget, Folders, Workspace


def hydra_train(ws: Workspace, name: str, family: str, recipe: str, overrides: list[str],
                reuse: bool = False) -> tuple[str, bool, float]:
    """One fairseq-hydra-train run of ``family``/``recipe`` into OUT/name. Returns (its checkpoint
    folder, whether a finished run of the same command was reused instead: only when ``reuse``, i.e.
    its inputs were reused too, the seconds fairseq says it trained)."""
    save_dir = os.path.join(ws.out, name)
    cmd = hydra_train_command(family, recipe, save_dir, overrides)
    output = finished_output(cmd, ws.log(name)) if reuse else None
    if output is not None:
        print(f"[demo] {name}: reused (its log holds a finished run of the same command)", flush=True)
        return save_dir, True, training_seconds(output)
    empty_run_folder(save_dir)
    print(f"[demo] {name}: fairseq-hydra-train {family}/{recipe} (log {ws.log(name)})", flush=True)
    seconds = training_seconds(run_logged(cmd, ws.log(name), name, ws.verbose))
    print(f"[demo] {name}: done, {seconds:.0f} s of training", flush=True)
    return save_dir, False, seconds


def split_score(ws: Workspace, name: str, data: str, checkpoint: str, subset: str, metric: str,
                reuse: bool = False) -> dict:
    """fairseq-validate's ``metric`` (accuracy or mAP, %) of ``checkpoint`` on ``subset`` of ``data``:
    {"score"[, "AP_per_class"]} (``reuse``: see hydra_train)."""
    cmd = validate_command(data, checkpoint, subset, batch_size=25, cpu=True)
    output = run_logged(cmd, ws.log(f"{name}_{subset}"), name, ws.verbose, reuse=reuse)
    row = {"score": parse_validate_output(output, subset)[metric]}
    per_class = parse_per_class_ap(output, subset)
    if per_class:
        row["AP_per_class"] = per_class
    return row


def stored_rows(path: str, key: dict, reuse: bool, compute):
    """``compute()``'s rows, kept in ``path`` (JSON) beside the ``key`` they were made from; under
    ``reuse``, rows stored earlier for the same key are returned instead (the probes and the baseline
    of a finished run, e.g. one seed run in another process, are not computed again by the merging call)."""
    if reuse and os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            stored = json.load(f)
        if stored.get("key") == key:
            print(f"[demo] reused: {path}", flush=True)
            return stored["rows"]
    rows = compute()
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump({"key": key, "rows": rows}, f, indent=1)
    os.replace(path + ".tmp", path)
    return rows


def pretrain_overrides(method: str, budget: Budget, folders: Folders, seed: int, teacher: dict | None = None,
                       split: str | None = None) -> list[str]:
    """fairseq-hydra-train overrides of pretraining recipe ``method`` at the demo's tiny size, on
    ``folders``' pretraining ``split`` (default its own); ``teacher``: {"teacher" (model.teacher),
    "checkpoint", "cache"} of a method with a CLAP target."""
    split = split or folders.split
    overrides = [f"task.data={folders.pretrain_data}", f"dataset.train_subset={split}",
                 f"task.target_frames={folders.frames}", f"dataset.batch_size={budget.pretrain_batch_size}",
                 *TINY, *TINY_DECODER, *ON_CPU, f"common.seed={seed}", f"optimization.lr=[{budget.pretrain_lr}]",
                 f"optimization.max_update={budget.pretrain_updates}", "optimization.max_epoch=0",
                 f"lr_scheduler.warmup_updates={max(1, budget.pretrain_updates // 10)}",
                 "checkpoint.save_interval_updates=0", "checkpoint.no_epoch_checkpoints=true"]
    facts = method_facts(method)
    if facts["cls_branch"]:  # pool clips have empty label lines
        overrides += ["task.labels=label", f"task.multi_label={str(folders.multi_label).lower()}",
                      "task.allow_unlabeled=true"]
    if method == "audiomae":
        overrides += ["model.decoder_layers=2"]
    if facts["clap_target"]:
        teacher = teacher or {"teacher": "", "checkpoint": "", "cache": ""}
        overrides += [f"model.teacher={teacher['teacher']}", f"model.teacher_checkpoint={teacher['checkpoint']}",
                      f"task.teacher_cache={teacher['cache']}"]
    return overrides


def finetune_overrides(budget: Budget, data: str, folders: Folders) -> list[str]:
    """fairseq-hydra-train overrides of the demo's fine-tuning (recipe finetuning/esc50) at its tiny size,
    on the labelled folder ``data``."""
    return [f"task.data={data}", f"task.target_frames={folders.frames}",
            f"task.multi_label={str(folders.multi_label).lower()}",
            f"checkpoint.best_checkpoint_metric={folders.metric}",
            f"dataset.batch_size={budget.batch_size}", *TINY, *ON_CPU,
            f"optimization.max_update={budget.finetune_updates}", "optimization.max_epoch=0",
            f"optimizer.groups.default.lr_scheduler.warmup_updates={max(1, budget.finetune_updates // 10)}",
            "dataset.valid_subset=valid", f"dataset.validate_interval={budget.validate_interval}",
            *SMALL_FINETUNING]


def replaced(overrides: list[str], extra) -> list[str]:
    """``overrides`` with ``extra`` appended, each key of ``extra`` taking the place of the same key's value."""
    keys = {e.split("=")[0] for e in extra}
    return [o for o in overrides if o.split("=")[0] not in keys] + list(extra)


def finetune_and_score(ws: Workspace, name: str, folders: Folders, start_from: str, seed: int, overrides: list,
                       reuse: bool) -> tuple[dict, float]:
    """Fine-tune from ``start_from`` (a pretraining checkpoint; '' = from scratch) into OUT/name, then
    score its best checkpoint (by valid) on test, the training clips and ``folders.also_score``:
    ({split: score, split_AP_per_class: ...}, seconds trained)."""
    save_dir, reused, seconds = hydra_train(
        ws, name, "finetuning", "esc50",
        [*overrides, f"common.seed={seed}", f"model.pretrained={start_from}", *([] if start_from else FROM_SCRATCH)],
        reuse=reuse)
    best = os.path.join(save_dir, "checkpoint_best.pt")
    row = {}
    for split_name in ("test", "train", *folders.also_score):
        scored = split_score(ws, name, folders.data, best, split_name, folders.metric, reuse=reused)
        row[split_name] = scored["score"]
        if "AP_per_class" in scored:
            row[f"{split_name}_AP_per_class"] = scored["AP_per_class"]
    print(f"[demo] {name}: held-out test {folders.metric} {row['test']:.1f} (training clips {row['train']:.1f})",
          flush=True)
    return row, seconds


def all_labels_classifier(ws: Workspace, budget: Budget, folders: Folders, seed: int, start_from: str = "",
                          name: str | None = None, reuse: bool | None = None) -> tuple[str, float, bool]:
    """A classifier trained on every labelled pretraining clip (``folders.split`` of the labelled pool),
    the demo's fine-tuning recipe at ``budget.classifier_updates``, kept best on the pretraining folder's
    valid split (its last checkpoint when the folder has none): LAION-CLAP's supervised stage. From
    scratch (the default) it is also the bar of "all the labels, no pretraining"; ``start_from``: a
    pretraining checkpoint it is fine-tuned from instead; ``reuse``: as hydra_train (default
    ``ws.reuse``; False when ``start_from`` was made afresh). Returns (checkpoint, seconds trained, reused)."""
    validated = has_split(folders.pretrain_data, "valid")
    updates = budget.classifier_updates
    overrides = [o for o in finetune_overrides(budget, folders.pretrain_data, folders)
                 if not o.startswith(("optimization.max_update=", "optimizer.groups.default.lr_scheduler.warmup_updates="))]
    overrides += [f"dataset.train_subset={folders.split}", f"optimization.max_update={updates}",
                  f"optimizer.groups.default.lr_scheduler.warmup_updates={max(1, updates // 10)}",
                  f"common.seed={seed}", f"model.pretrained={start_from}", *([] if start_from else FROM_SCRATCH)]
    if not validated:
        overrides.append("dataset.disable_validation=true")
    save_dir, reused, seconds = hydra_train(ws, name or f"classifier_all_labels_s{seed}", "finetuning", "esc50",
                                            overrides, reuse=ws.reuse if reuse is None else reuse)
    return os.path.join(save_dir, "checkpoint_best.pt" if validated else "checkpoint_last.pt"), seconds, reused
