"""The CLAP methods' teacher of an experiment: one given (``model.teacher`` and its checkpoint) or one
trained here by a recipe, its targets of the pretraining clips precomputed once, and a teacher trained
here scored as a model of its own."""
from __future__ import annotations

import os
import shutil
import time

from .clap_teacher import train_clap_teacher, zero_shot_score
from .fairseq_runs import console_script, finished_output, run_logged
from .probes import probe as probe_row, progress_only
from .runs import all_labels_classifier, hydra_train, pretrain_overrides, split_score
from .settings import ON_CPU, TINY, Budget, Folders, TeacherSettings, Workspace

# --teacher-recipe: what it trains, and the model.teacher that reads it
TEACHER_RECIPES = {"pool-captions": "clap", "labelled-pool-classifier": "checkpoint_encoder", "laion-clap": "clap"}


def teacher_classifier(ws: Workspace, budget: Budget, teacher: TeacherSettings, folders: Folders, seed: int,
                       bar: tuple | None) -> tuple[str, dict, bool]:
    """The supervised stage of the teacher recipes (``teacher.start``): ``scratch``, the classifier from
    scratch on every label (``bar``, the all-labels classifier, when the caller made it); ``audiomae``, an
    AudioMAE pretraining on the pretraining clips (``budget.mae_updates``; LAION-CLAP's HTS-AT started from
    an ImageNet pretraining), then that classifier's training fine-tuned from it. Returns (checkpoint,
    {run: seconds}, reused)."""
    if teacher.start == "scratch":
        checkpoint, seconds, reused = bar or all_labels_classifier(ws, budget, folders, seed)
        return checkpoint, {f"classifier_all_labels_s{seed}": seconds}, reused
    mae_budget = Budget(**{**vars(budget), "pretrain_updates": budget.mae_updates or budget.pretrain_updates})
    name = f"teacher_start_audiomae_s{seed}"
    save_dir, mae_reused, mae_seconds = hydra_train(ws, name, "pretraining", "audiomae",
                                                    pretrain_overrides("audiomae", mae_budget, folders, seed),
                                                    reuse=ws.reuse)
    checkpoint, seconds, reused = all_labels_classifier(
        ws, budget, folders, seed, start_from=os.path.join(save_dir, "checkpoint_last.pt"),
        name=f"teacher_classifier_s{seed}", reuse=mae_reused)
    return checkpoint, {name: mae_seconds, f"teacher_classifier_s{seed}": seconds}, reused


def precompute_targets(ws: Workspace, folder: str, split: str, cache: str, teacher: str, checkpoint: str,
                       log_name: str, reuse: bool) -> bool:
    """supmam-precompute-teacher of ``teacher`` (``checkpoint``) over ``folder``'s ``split`` into
    ``cache``; a cache made afresh starts empty. Returns whether a finished run was reused."""
    command = [console_script("supmam-precompute-teacher"), folder, split, "--out-dir", cache,
               "--teacher", teacher, "--teacher-checkpoint", checkpoint, "--batch-size", "8", "--device", "cpu"]
    reused = reuse and finished_output(command, ws.log(log_name)) is not None
    if not reused and os.path.isdir(cache):  # made afresh: an earlier cache would be continued
        shutil.rmtree(cache)
    run_logged(command, ws.log(log_name), "teacher", ws.verbose, reuse=reused)
    return reused


def teacher_targets(ws: Workspace, budget: Budget, teacher: TeacherSettings, folders: Folders, seed: int,
                    on_cpu: list = ON_CPU, classifier: tuple | None = None) -> dict:
    """The CLAP methods' teacher for ``seed`` and its precomputed targets of the pretraining split:
    {"teacher" (model.teacher), "checkpoint", "cache", "reused", "trained", "seconds": {...}}. Without
    ``teacher.checkpoint`` a teacher is trained first, for each seed, by ``teacher.recipe``:
    ``pool-captions``, a tiny CLAP on the captions of the folder's unlabelled pool only
    (clap_teacher says why); ``labelled-pool-classifier``, the classifier trained on every labelled
    pretraining clip (from ``teacher.start``: teacher_classifier); ``laion-clap``, LAION-CLAP's recipe:
    a CLAP whose audio tower starts from that classifier, trained on the labelled pool's captions and
    captions made from its labels. ``classifier``: the all-labels classifier's (checkpoint, seconds,
    reused) when the caller made it already (``teacher.start == "scratch"`` starts from it).
    Otherwise the given teacher serves every seed (one cache)."""
    recipe = None if teacher.checkpoint else teacher.recipe
    seconds, reused, name = {}, True, teacher.name
    if recipe == "pool-captions":
        checkpoint, seconds[f"clap_teacher_s{seed}"], reused = train_clap_teacher(
            ws, folders.pretrain_data, seed, budget.teacher_updates, folders.frames, TINY, on_cpu, reuse=ws.reuse)
    elif recipe is not None:
        checkpoint, stages, reused = teacher_classifier(ws, budget, teacher, folders, seed, classifier)
        seconds.update(stages)
        if recipe == "laion-clap":
            checkpoint, seconds[f"clap_laion_recipe_s{seed}"], clap_reused = train_clap_teacher(
                ws, folders.pretrain_data, seed, budget.teacher_updates, folders.frames, TINY, on_cpu,
                reuse=ws.reuse and reused, split=folders.split, name=f"clap_laion_recipe_s{seed}",
                extra=[f"model.audio_init={checkpoint}", "task.label_captions=label"])
            reused = reused and clap_reused
    else:
        checkpoint = teacher.checkpoint or os.environ.get("SUPMAM_CLAP_CHECKPOINT") or "random"
        checkpoint = checkpoint if checkpoint == "random" else os.path.abspath(checkpoint)
    if recipe is not None:
        name = TEACHER_RECIPES[recipe]
    cache = os.path.join(ws.out, f"teacher_cache_s{seed}" if recipe else "teacher_cache")
    start = time.time()
    print(f"[demo] teacher targets of {folders.pretrain_data} {folders.split} ({name} "
          f"{checkpoint if checkpoint != 'random' else 'RANDOM teacher: set SUPMAM_CLAP_CHECKPOINT for a real one'})",
          flush=True)
    reused = precompute_targets(ws, folders.pretrain_data, folders.split, cache, name, checkpoint,
                                os.path.basename(cache), reused and ws.reuse)
    seconds[os.path.basename(cache)] = round(time.time() - start, 1)
    return {"teacher": name, "checkpoint": checkpoint, "cache": cache, "reused": reused, "seconds": seconds,
            "trained": recipe is not None, "recipe": recipe}


def teacher_row(ws: Workspace, folders: Folders, teacher: dict) -> dict:
    """A teacher trained here, scored as a model of its own on the held-out test split: {"probe_test": a
    linear probe of its audio tower or encoder, "zero_shot": a CLAP's zero-shot score, "finetuned": a
    classifier's own test score}."""
    name = os.path.basename(os.path.dirname(teacher["checkpoint"]))
    row = {}
    if teacher["teacher"] == "clap":
        row["zero_shot"] = zero_shot_score(ws, name, folders.data, teacher["checkpoint"], "test", folders.multi_label,
                                           reuse=teacher["reused"])
    else:  # the classifier itself
        row["finetuned"] = split_score(ws, name, folders.data, teacher["checkpoint"], "test", folders.metric,
                                       reuse=teacher["reused"])["score"]
    probe = probe_row(folders.data, teacher["checkpoint"], 0, folders.multi_label, name="teacher (linear probe)",
                      log=print if ws.verbose else progress_only)
    row.update(probe_test=probe["test"], probe=probe)
    words = {"zero_shot": "zero-shot", "finetuned": "fine-tuned", "probe_test": "linear probe"}
    print(f"[demo] {name}: held-out test " + ", ".join(f"{words[k]} {v:.1f}" for k, v in row.items() if k in words),
          flush=True)
    return row
