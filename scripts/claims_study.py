"""The paper's claims in miniature (issue 25): its Table 1 and ablations (Tables 2, 5, 6 and eq. 1's
visible + masked target) on this machine's two tasks, with a CLAP teacher trained here on the
pool's captions only, 3 seeds, every row at the demo's budget.

    .venv/bin/python scripts/claims_study.py --out claims_study                # everything, 2 runs at a time
    .venv/bin/python scripts/claims_study.py --tasks sound_events --arms table # only the table's rows
    .venv/bin/python scripts/claims_study.py --report                          # the tables of what is done
    .venv/bin/python scripts/claims_study.py --arms teacher_strength labelled_table --tasks sound_events
                                        # issue 38: the teacher-strength curve, Table 1 on the labelled pool

A UNIT is one row of one task and seed: ``teacher`` (the CLAP teacher trained on the pool's captions:
zero-shot and linear probe on test), ``scratch`` (fine-tuned from a random init, and the random-init
probe), ``mfcc`` (the baseline, once per task), or a pretraining ARM (``ARMS``: a recipe and the
overrides that make it an ablation) pretrained, fine-tuned and probed exactly as supmam-demo does
(its functions run every step). Each finished unit is written at once to the LEDGER
(``results/claims_study.json``, committed), keyed by task/arm/seed with the sizes it ran at: a study
stopped anywhere, in this session or the next, continues with the units missing (runs whose fairseq
logs under OUT hold a finished run are reused too). ``--workers`` units run at a time, each fairseq
process on one thread (the 2-core machine: two independent 1-thread runs).

Nothing is chosen on test: fine-tuning keeps its best checkpoint by valid, probes choose C on valid,
the teacher keeps its last checkpoint (it never sees a labelled split).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
os.environ.setdefault("OMP_NUM_THREADS", "1")  # every fairseq process (and this one) on one thread
os.environ.setdefault("MKL_NUM_THREADS", "1")

from supmam_plugin.commands import demo  # noqa: E402
from supmam_plugin.evaluation.results import CLAP_TARGET, mean_std  # noqa: E402

LEDGER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "results", "claims_study.json")
# task: (labelled data, pretraining data)
TASKS = {"sound_events": ("data/sound_events", "data/sound_events"), "spoken_words": ("data/demo", "data/demo_pool")}
# task: the demo's budget there (RESULTS.md chose each on valid): pretraining, fine-tuning and CLAP
# teacher updates, fine-tuning's validation interval in epochs
SIZES = {"sound_events": {"pretrain_updates": 2000, "finetune_updates": 1500, "teacher_updates": 1200,
                          "validate_interval": 4},
         "spoken_words": {"pretrain_updates": 2000, "finetune_updates": 2400, "teacher_updates": 1200,
                          "validate_interval": 10}}
# arm: (recipe, extra pretraining overrides, group). The table's rows are the paper's Table 1; the
# other groups (the ablations, clone_batch) run on the sound events only.
ARMS = {
    "audiomae": ("audiomae", [], "table"),
    "mam_clap": ("mam_clap", [], "table"),                     # mask 0.2, visible + masked
    "supmam": ("supmam", [], "table"),                         # rec + cls, lambda 0.01
    "supmam_clap": ("supmam_clap", [], "table"),               # lambda 1e-4
    "audiomae_teacher_compute": ("audiomae", None, "table"),   # AudioMAE given the teacher's compute too
    "mam_clap_mask0.4": ("mam_clap", ["model.mask_ratio=0.4"], "ablation"),  # Table 2
    "mam_clap_mask0.8": ("mam_clap", ["model.mask_ratio=0.8"], "ablation"),
    "mam_clap_masked_only": ("mam_clap", ["model.target_on_visible=false"], "ablation"),  # eq. 1
    "supmam_rec": ("supmam", ["criterion.lambda_cls=0", "model.cls_branch=false"], "ablation"),  # Table 5
    "supmam_cls": ("supmam", ["criterion.lambda_target=0"], "ablation"),
    "supmam_clap_lambda0.01": ("supmam_clap", ["criterion.lambda_cls=0.01"], "ablation"),  # Table 6
    # issue 26: 4 masks per clip at equal compute (8 clips x 4 masks = the 32 masked samples of a step)
    "supmam_clap_clone4": ("supmam_clap", ["model.clone_batch=4", "dataset.batch_size=8"], "clone_batch"),
}
ABLATION_TASKS = ("sound_events",)
GROUPS = ("table", "ablation", "clone_batch", "teacher_strength", "labelled_table", "finetune_length")

# issue 38: the teacher-strength curve (sound events). Teacher: (kind, what it is). Its MAM-CLAP student
# is arm "mam_clap@NAME" at the table's budget; "pool_captions" is the table's teacher, made again with
# today's code (see STRENGTH_REFERENCES). Labels the teachers see: "classifier_train" the 1,000 training clips'
# (BEATs' teacher fine-tuned on AS-20K); the "*pool*" classifiers and CLAPs every pretraining clip's
# (the labelled pool, pretrain_labelled: the paper's AS-2M setting). LAION-CLAP's own audio tower was
# HTS-AT pretrained on ImageNet, trained on AudioSet's labels, then trained contrastively on captions
# that include AudioSet's label keywords: here "clap_from_classifier_pool_mae" (AudioMAE's pretraining
# on the pool in ImageNet's place).
TEACHERS = {
    "random": ("encoder", "a random-init encoder (BEATs' random-projection tokenizer)"),
    "classifier_train": ("encoder", "a classifier trained from scratch on the 1,000 labelled training clips"),
    "pool_captions": ("clap", "the table's CLAP: pool captions only, 1,200 updates (made again with today's code)"),
    "classifier_pool": ("encoder", "a classifier trained from scratch on the labelled pool"),
    "clap_from_classifier_pool": ("clap", "a CLAP whose audio tower starts from classifier_pool, trained on event "
                                  "+ keyword captions of the labelled pool"),
    "classifier_train_mae": ("encoder", "the AudioMAE row's own classifier: fine-tuned on the 1,000 labelled training "
                             "clips (BEATs' teacher fine-tuned on AS-20K labels)"),
    "classifier_pool_mae": ("encoder", "a classifier fine-tuned on the labelled pool from the AudioMAE row's encoder"),
    "clap_from_classifier_pool_mae": ("clap", "LAION-CLAP's recipe: a CLAP whose audio tower starts from "
                                      "classifier_pool_mae, trained on event + keyword captions of the labelled pool"),
    "pool_captions_4x": ("clap", "the table's CLAP trained 4x longer (4,800 updates)"),
}
STRENGTH_TASKS = ("sound_events",)
LABELLED_POOL = "pretrain_labelled"  # make_sound_events.py's labelled-pool split
# the supervised stage on the labelled pool: the study's fine-tuning recipe at twice its updates (11,000
# clips), validated every epoch (688 updates) and kept best on valid
CLASSIFIER_POOL_UPDATES = {"sound_events": 3000}
# The curve's references, made again beside it: code changes since the table's rows (the fused optimizer,
# among others) moved a seed's scratch score by 3.4 mAP (23.7 -> 27.1, seed 1), so the curve compares
# only rows of one code state. "reference@audiomae" is the AudioMAE row (its pretraining is also
# classifier_pool_mae's start); the scratch row is teacher@classifier_train.
STRENGTH_REFERENCES = ("audiomae", "supmam")
# Table 1 in the paper's information setting (group labelled_table): the rows that read labels or the
# teacher while pretraining, run on the labelled pool with LAION-CLAP's recipe as the teacher; the rows
# that read neither are the curve's (AudioMAE: reference@audiomae; MAM-CLAP: mam_clap@ the same teacher).
LABELLED_POOL_TEACHER = "clap_from_classifier_pool_mae"
# RESULTS.md's untested recipe cause (issue 25): fine-tuned from the CLAP targets the students fit their
# training clips less in the same updates. "longer_finetune@ARM" fine-tunes ARM's pretrained encoder for
# twice the updates, the checkpoint best on VALID kept as always: the length is chosen on valid per target.
LONGER_FINETUNE_ARMS = ("reference@audiomae", "mam_clap@pool_captions", f"mam_clap@{LABELLED_POOL_TEACHER}")
LABELLED_TABLE_ARMS = ("supmam", "supmam_clap")


def demo_args(sizes: dict) -> argparse.Namespace:
    """supmam-demo's arguments at a task's sizes (SIZES)."""
    return argparse.Namespace(pretrain_batch_size=32, pretrain_lr=1e-3, batch_size=16, teacher="clap",
                              teacher_recipe="pool-captions", teacher_checkpoint=None, verbose=False, reuse=True, **sizes)


class Ledger:
    """results/claims_study.json: {"rows": {"task/arm/sN": row}}; a row counts only when its "sizes"
    equal its task's SIZES (a change of budget starts those rows afresh)."""

    def __init__(self, path: str):
        self.path, self.lock = path, threading.Lock()
        self.rows = self.read()

    def read(self) -> dict:
        if not os.path.isfile(self.path):
            return {}
        with open(self.path, encoding="utf-8") as f:
            return json.load(f)["rows"]

    def get(self, key: str):
        with self.lock:  # read again: another study process may have finished the unit meanwhile
            self.rows = self.read()
        row = self.rows.get(key)
        return row if row is not None and row.get("sizes") == SIZES[key.split("/")[0]] else None

    def put(self, key: str, row: dict) -> None:
        """Write ``row`` into the file as it is now (rows other study processes wrote are kept: the file
        is locked, read, updated and replaced)."""
        import fcntl

        with self.lock:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            with open(self.path + ".lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                self.rows = self.read()
                self.rows[key] = {**row, "sizes": SIZES[key.split("/")[0]], "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
                with open(self.path + ".tmp", "w", encoding="utf-8") as f:
                    json.dump({"rows": dict(sorted(self.rows.items()))}, f, indent=1)
                    f.write("\n")
                os.replace(self.path + ".tmp", self.path)


class Study:
    def __init__(self, cfg):
        self.cfg = cfg
        self.ledger = Ledger(cfg.ledger)
        self.teachers = {}  # (task, seed) -> teacher dict of demo.teacher_targets
        self.teacher_locks = {}
        self.lock = threading.Lock()

    def folders(self, task):
        data, pretrain = (os.path.abspath(p) for p in TASKS[task])
        multi_label = demo.is_multi_label(data)
        return data, pretrain, multi_label, demo.frames_for(data), os.path.join(os.path.abspath(self.cfg.out), task)

    def teacher(self, task, seed) -> dict:
        """The trained teacher of (task, seed) and its cache, made once (its unit, or the first arm that needs it)."""
        with self.lock:
            lock = self.teacher_locks.setdefault((task, seed), threading.Lock())
        with lock:
            if (task, seed) not in self.teachers:
                data, pretrain, _, frames, out = self.folders(task)
                os.makedirs(os.path.join(out, "logs"), exist_ok=True)
                self.teachers[(task, seed)] = demo.teacher_targets(demo_args(SIZES[task]), out, pretrain,
                                                                   demo.pretraining_split(pretrain), seed, frames)
            return self.teachers[(task, seed)]

    def strength_teacher(self, task, name, seed) -> dict:
        """Teacher ``name`` of TEACHERS for (task, seed): {"teacher": model.teacher, "checkpoint",
        "seconds"}, made once (a finished run of the same command is reused)."""
        data, pretrain, multi_label, frames, out = self.folders(task)
        sizes = SIZES[task]
        if name == "random":
            return {"teacher": "checkpoint_encoder", "checkpoint": self.any_checkpoint(task, seed), "seconds": {}}
        if name == "classifier_train":  # the scratch row's classifier
            self.finetune(task, "scratch", seed, "")
            return {"teacher": "checkpoint_encoder", "seconds": {},
                    "checkpoint": os.path.join(out, f"finetune_scratch_s{seed}", "checkpoint_best.pt")}
        if name == "classifier_train_mae":  # the AudioMAE row's fine-tuning (the same run: reused)
            self.finetune(task, "audiomae", seed, self.pretrain(task, "audiomae", seed)[0])
            return {"teacher": "checkpoint_encoder", "seconds": {},
                    "checkpoint": os.path.join(out, f"finetune_audiomae_s{seed}", "checkpoint_best.pt")}
        if name in ("classifier_pool", "classifier_pool_mae"):
            updates = CLASSIFIER_POOL_UPDATES[task]
            extra = [f"dataset.train_subset={LABELLED_POOL}", f"optimization.max_update={updates}",
                     f"optimizer.groups.default.lr_scheduler.warmup_updates={max(1, updates // 10)}",
                     "dataset.validate_interval=1"]
            start_from = self.pretrain(task, "audiomae", seed)[0] if name == "classifier_pool_mae" else ""
            row = self.finetune(task, name, seed, start_from, extra=extra)
            return {"teacher": "checkpoint_encoder", "seconds": row["seconds"],
                    "checkpoint": os.path.join(out, f"finetune_{name}_s{seed}", "checkpoint_best.pt")}
        updates, split, extra = sizes["teacher_updates"], None, []
        if name == "pool_captions_4x":
            updates *= 4
        elif name.startswith("clap_from_"):
            start_from = self.strength_teacher(task, name[len("clap_from_"):], seed)["checkpoint"]
            split, extra = LABELLED_POOL, [f"model.audio_init={start_from}", "task.label_captions=label"]
        elif name != "pool_captions":
            raise KeyError(name)
        checkpoint, seconds, _ = demo.train_clap_teacher(
            out, pretrain, seed, updates, frames, demo.TINY, demo.ON_CPU, split=split, extra=extra,
            name=f"clap_teacher_s{seed}" if name == "pool_captions" else f"clap_{name}_s{seed}", reuse=True)
        return {"teacher": "clap", "checkpoint": checkpoint, "seconds": {"teacher": seconds}}

    def strength_teacher_row(self, task, name, seed) -> dict:
        """What teacher ``name`` knows, scored on test: its linear probe; zero-shot (a CLAP); fine-tuned
        test score (a classifier)."""
        data, _, multi_label, _, out = self.folders(task)
        teacher = self.strength_teacher(task, name, seed)
        row = {"teacher": teacher["teacher"], "checkpoint": teacher["checkpoint"], "seconds": teacher["seconds"],
               "probe": self.probe(task, teacher["checkpoint"], seed)}
        if teacher["teacher"] == "clap":
            row["zero_shot"] = demo.zero_shot_score(out, f"clap_{name}_s{seed}", data, teacher["checkpoint"], "test",
                                                    multi_label, reuse=True)
        elif name.startswith("classifier"):
            scored = demo.split_score(out, f"finetune_{name}_s{seed}", data, teacher["checkpoint"], "test",
                                      "mAP" if multi_label else "accuracy", False, reuse=True)
            row["finetuned"] = {"test": scored["score"]}
        return row

    def strength_targets(self, task, name, seed, split=None) -> dict:
        """Teacher ``name``'s targets of the pretraining clips (``split``, default the unlabelled-pool
        setting's): {"teacher", "checkpoint", "cache"}."""
        from supmam_plugin.commands.fairseq_runs import console_script, run_logged

        data, pretrain, _, _, out = self.folders(task)
        teacher = self.strength_teacher(task, name, seed)
        split = split or demo.pretraining_split(pretrain)
        cache = os.path.join(out, f"teacher_cache_{name}_s{seed}")
        command = [console_script("supmam-precompute-teacher"), pretrain, split, "--out-dir", cache, "--teacher",
                   teacher["teacher"], "--teacher-checkpoint", teacher["checkpoint"], "--batch-size", "8", "--device", "cpu"]
        log = demo.log_path(out, os.path.basename(cache) + ("" if split == demo.pretraining_split(pretrain) else f"_{split}"))
        run_logged(command, log, f"targets {name}", False, reuse=True)
        return {**teacher, "cache": cache}

    def labelled_pool_pretrain(self, task, arm, seed) -> tuple[str, float]:
        """Pretrain ``arm`` of ARMS in the labelled-pool setting (pretrain_labelled: its cls branch sees
        every pretraining clip's labels; a CLAP target from LABELLED_POOL_TEACHER): (checkpoint, seconds)."""
        data, pretrain, multi_label, frames, out = self.folders(task)
        recipe, extra, _ = ARMS[arm]
        args = demo_args(SIZES[task])
        teacher = {"checkpoint": "", "cache": ""}
        if recipe in CLAP_TARGET:
            teacher = self.strength_targets(task, LABELLED_POOL_TEACHER, seed, split=LABELLED_POOL)
            args.teacher = teacher["teacher"]
        overrides = demo.pretrain_overrides(recipe, args, pretrain, LABELLED_POOL, seed, teacher["checkpoint"],
                                            teacher["cache"], multi_label, frames) + list(extra)
        save_dir, _, seconds = demo.hydra_train(out, f"pretrain_labelled_pool_{arm}_s{seed}", "pretraining", recipe,
                                                overrides, False, reuse=True)
        return os.path.join(save_dir, "checkpoint_last.pt"), seconds

    def run_unit(self, task, arm, seed) -> None:
        key = f"{task}/{arm}/s{seed}"
        if self.ledger.get(key) is not None:
            return
        data, pretrain, multi_label, frames, out = self.folders(task)
        os.makedirs(os.path.join(out, "logs"), exist_ok=True)
        metric = "mAP" if multi_label else "accuracy"
        start = time.time()
        print(f"[study] {key}: started", flush=True)
        if arm.startswith("longer_finetune@"):
            pretrained = arm.split("@", 1)[1]
            name = pretrained.split("@")[1] if pretrained.startswith("reference@") else pretrained.replace("@", "_")
            checkpoint = os.path.join(out, f"pretrain_{name}_s{seed}", "checkpoint_last.pt")
            updates = 2 * SIZES[task]["finetune_updates"]
            row = self.finetune(task, f"longer_{name}", seed, checkpoint, extra=[
                f"optimization.max_update={updates}", f"optimizer.groups.default.lr_scheduler.warmup_updates={updates // 10}"])
            row["finetune_updates"] = updates
        elif arm.startswith("labelled_pool@"):
            checkpoint, seconds = self.labelled_pool_pretrain(task, arm.split("@")[1], seed)
            row = self.finetune(task, arm.replace("@", "_"), seed, checkpoint)
            row["seconds"]["pretrain"] = seconds
            row["probe"] = self.probe(task, checkpoint, seed)
        elif arm.startswith("reference@"):
            checkpoint, seconds, updates = self.pretrain(task, arm.split("@")[1], seed)
            row = self.finetune(task, arm.split("@")[1], seed, checkpoint)
            row["seconds"]["pretrain"] = seconds
            row["probe"] = self.probe(task, checkpoint, seed)
        elif arm.startswith("teacher@"):
            row = self.strength_teacher_row(task, arm.split("@")[1], seed)
        elif arm.startswith("mam_clap@"):
            teacher = self.strength_targets(task, arm.split("@")[1], seed)
            args = demo_args(SIZES[task])
            args.teacher = teacher["teacher"]
            overrides = demo.pretrain_overrides("mam_clap", args, pretrain, demo.pretraining_split(pretrain), seed,
                                                teacher["checkpoint"], teacher["cache"], multi_label, frames)
            save_dir, _, seconds = demo.hydra_train(out, f"pretrain_{arm.replace('@', '_')}_s{seed}", "pretraining",
                                                    "mam_clap", overrides, False, reuse=True)
            checkpoint = os.path.join(save_dir, "checkpoint_last.pt")
            row = self.finetune(task, arm.replace("@", "_"), seed, checkpoint)
            row["seconds"]["pretrain"] = seconds
            row["probe"] = self.probe(task, checkpoint, seed)
        elif arm == "mfcc":
            row = {"baseline": demo.mfcc_row(data, multi_label, log=demo._progress_only)}
        elif arm == "teacher":
            teacher = self.teacher(task, seed)
            row = {**demo.teacher_row(out, data, teacher, seed, multi_label, False), "seconds": teacher["seconds"]}
        elif arm == "scratch":
            row = self.finetune(task, arm, seed, "")
            row["probe"] = self.probe(task, self.any_checkpoint(task, seed), seed, random_init=True)
        else:
            checkpoint, seconds, updates = self.pretrain(task, arm, seed)
            row = self.finetune(task, arm, seed, checkpoint)
            row["seconds"]["pretrain"] = seconds
            row["pretrain_updates"] = updates
            row["probe"] = self.probe(task, checkpoint, seed)
        row["metric"] = metric
        row["wall_seconds"] = round(time.time() - start, 1)
        self.ledger.put(key, row)
        print(f"[study] {key}: done in {row['wall_seconds']:.0f} s: " + summary_of(row), flush=True)

    def pretrain(self, task, arm, seed) -> tuple[str, float, int]:
        """Pretrain ``arm`` of ARMS for (task, seed) as supmam-demo does: (checkpoint_last.pt, seconds, updates)."""
        data, pretrain, multi_label, frames, out = self.folders(task)
        recipe, extra, _ = ARMS[arm]
        updates = SIZES[task]["pretrain_updates"]
        if extra is None:  # AudioMAE given the teacher's training time in extra updates
            updates, extra = self.teacher_compute_updates(task, seed), []
        args = demo_args({**SIZES[task], "pretrain_updates": updates})
        clap = recipe in CLAP_TARGET
        teacher = self.teacher(task, seed) if clap else None
        split = demo.pretraining_split(pretrain)
        overrides = demo.pretrain_overrides(recipe, args, pretrain, split, seed,
                                            teacher["checkpoint"] if clap else "", teacher["cache"] if clap else "",
                                            multi_label, frames)
        replaced = {e.split("=")[0] for e in extra}  # the arm's value of a key the demo sets wins
        overrides = [o for o in overrides if o.split("=")[0] not in replaced] + list(extra)
        save_dir, _, seconds = demo.hydra_train(out, f"pretrain_{arm}_s{seed}", "pretraining", recipe, overrides,
                                                False, reuse=True)
        return os.path.join(save_dir, "checkpoint_last.pt"), seconds, updates

    def finetune(self, task, arm, seed, checkpoint, extra=()) -> dict:
        data, _, multi_label, frames, out = self.folders(task)
        metric = "mAP" if multi_label else "accuracy"
        overrides = demo.finetune_overrides(demo_args(SIZES[task]), data, frames, multi_label)
        replaced = {e.split("=")[0] for e in extra}
        overrides = [o for o in overrides if o.split("=")[0] not in replaced] + list(extra)
        extra = ["test_seen"] if os.path.isfile(os.path.join(data, "test_seen.tsv")) else []
        scored, seconds = demo.finetune_and_score(out, f"finetune_{arm}_s{seed}", data, checkpoint, seed, overrides,
                                                  metric, extra, False, True)
        return {"finetuned": scored, "seconds": {"finetune": seconds}}

    def probe(self, task, checkpoint, seed, random_init=False) -> dict:
        from supmam_plugin.evaluation.labelled_splits import read_labelled_splits
        from supmam_plugin.evaluation.linear_probe import probe_checkpoint

        data, _, multi_label, _, _ = self.folders(task)
        splits = read_labelled_splits(data, ("train", "valid", "test"), "label")
        return probe_checkpoint(checkpoint, splits, random_init=random_init, seed=seed, multi_label=multi_label,
                                log=demo._progress_only)

    def any_checkpoint(self, task, seed) -> str:
        """A checkpoint of the demo's encoder architecture for the random-init twin (no weight is used):
        two fairseq updates of the audiomae recipe with lr 0 (one would leave the cosine schedule no period)."""
        data, pretrain, multi_label, frames, out = self.folders(task)
        args = argparse.Namespace(**{**vars(demo_args(SIZES[task])), "pretrain_updates": 2, "pretrain_lr": 0.0})
        overrides = demo.pretrain_overrides("audiomae", args, pretrain, demo.pretraining_split(pretrain), seed, "", "",
                                            multi_label, frames)
        save_dir, _, _ = demo.hydra_train(out, f"architecture_s{seed}", "pretraining", "audiomae", overrides, False,
                                          reuse=True)
        return os.path.join(save_dir, "checkpoint_last.pt")

    def teacher_compute_updates(self, task, seed) -> int:
        """The pretraining updates that give AudioMAE its own budget plus the CLAP teacher's: its training
        and the pass that computes its targets of the pretraining clips, pretrain_updates x (1 + teacher
        seconds / AudioMAE's pretraining seconds), from the ledger's rows of this seed."""
        teacher = self.ledger.get(f"{task}/teacher/s{seed}")
        audiomae = self.ledger.get(f"{task}/audiomae/s{seed}")
        teacher_seconds = sum(teacher["seconds"].values())
        ratio = teacher_seconds / audiomae["seconds"]["pretrain"]
        return int(round(SIZES[task]["pretrain_updates"] * (1 + ratio)))


def summary_of(row: dict) -> str:
    parts = []
    if "finetuned" in row:
        parts.append(f"fine-tuned test {row['finetuned']['test']:.1f}")
    if "probe" in row:
        parts.append(f"probe test {row['probe']['test']:.1f}")
    if "zero_shot" in row:
        parts.append(f"zero-shot test {row['zero_shot']:.1f}")
    if "baseline" in row:
        parts.append(f"MFCC test {row['baseline']['test']:.1f}")
    return ", ".join(parts)


def units(cfg) -> list[tuple[str, str, int, list]]:
    """(task, arm, seed, the units it waits for) in the order they start: the table before the
    ablations; per task the baseline, then seed by seed the teacher, the random init and the arms
    (the teacher's students first, the runs without a teacher while it trains)."""
    order = []
    for group in GROUPS:
        if group not in cfg.arms:
            continue
        for task in cfg.tasks:
            if group != "table" and task not in ABLATION_TASKS:
                continue
            if group == "table":
                order.append((task, "mfcc", 0, []))
            for seed in cfg.seeds:
                if group == "table":
                    order += [(task, "teacher", seed, []), (task, "scratch", seed, [])]
                arms = [a for a, (_, _, g) in ARMS.items() if g == group]
                for arm in sorted(arms, key=lambda a: (ARMS[a][0] not in CLAP_TARGET, ARMS[a][1] is None)):
                    recipe, extra, _ = ARMS[arm]
                    needs = [(task, "teacher", seed)] if recipe in CLAP_TARGET else []
                    if extra is None:
                        needs = [(task, "teacher", seed), (task, "audiomae", seed)]
                    order.append((task, arm, seed, needs))
    if "teacher_strength" in cfg.arms:
        for task in (t for t in cfg.tasks if t in STRENGTH_TASKS):
            for seed in cfg.seeds:
                made = list(TEACHERS)
                for name in made:
                    needs = [(task, f"teacher@{name[len('clap_from_'):]}", seed)] if name.startswith("clap_from_") else []
                    order.append((task, f"teacher@{name}", seed, needs))
                for name in made:
                    order.append((task, f"mam_clap@{name}", seed, [(task, f"teacher@{name}", seed)]))
                order += [(task, f"reference@{arm}", seed, []) for arm in STRENGTH_REFERENCES]
    if "labelled_table" in cfg.arms:
        for task in (t for t in cfg.tasks if t in STRENGTH_TASKS):
            for seed in cfg.seeds:
                for arm in LABELLED_TABLE_ARMS:
                    clap = ARMS[arm][0] in CLAP_TARGET
                    order.append((task, f"labelled_pool@{arm}", seed,
                                  [(task, f"teacher@{LABELLED_POOL_TEACHER}", seed)] if clap else []))
    if "finetune_length" in cfg.arms:
        for task in (t for t in cfg.tasks if t in STRENGTH_TASKS):
            for seed in cfg.seeds:
                order += [(task, f"longer_finetune@{arm}", seed, [(task, arm, seed)]) for arm in LONGER_FINETUNE_ARMS]
    only = getattr(cfg, "only", None)
    return [u for u in order if not only or u[1] in only]  # a unit waits only on units that run too


def run_units(plan: list, run_unit, workers: int) -> int:
    """Run ``plan`` ((task, arm, seed, needs) in order) with ``workers`` at a time: a unit starts, in
    plan order, once the units it needs have finished (a unit waiting holds no worker); one whose input
    failed fails without running. Returns how many failed (each is printed)."""
    pending, running, done, failed = list(plan), {}, {}, 0
    planned = {(task, arm, seed) for task, arm, seed, _ in pending}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        while pending or running:
            for unit in [u for u in pending if all(n in done or n not in planned for n in u[3])]:
                if len(running) == workers:
                    break
                pending.remove(unit)
                task, arm, seed, needs = unit
                broken = [n for n in needs if done.get(n) is False]
                if broken:
                    print(f"[study] {task}/{arm}/{seed} FAILED: it needs {'/'.join(map(str, broken[0]))}, which failed",
                          flush=True)
                    done[(task, arm, seed)], failed = False, failed + 1
                    continue
                running[pool.submit(run_unit, task, arm, seed)] = (task, arm, seed)
            if not running:
                continue
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                key = running.pop(future)
                try:
                    future.result()
                    done[key] = True
                except Exception as e:  # noqa: BLE001 - every unit is tried; the failures are listed
                    done[key], failed = False, failed + 1
                    print(f"[study] {'/'.join(map(str, key))} FAILED: {e}", flush=True)
    return failed


def run(cfg) -> None:
    import torch

    torch.set_num_threads(1)
    study = Study(cfg)
    failed = run_units(units(cfg), study.run_unit, cfg.workers)
    print(report(cfg.ledger), flush=True)
    if failed:
        raise SystemExit(f"claims_study: {failed} unit(s) failed (above); rerun to retry them")


# The paper's claims as (better arm, worse arm, where the paper says so), each tested on each task
# the two arms ran on: the fine-tuned held-out score (the paper's Table 1 measure) and the probe.
CLAIMS = (
    ("mam_clap", "audiomae", "Table 1"), ("supmam", "audiomae", "Table 1"),
    ("supmam_clap", "audiomae", "Table 1"), ("supmam_clap", "mam_clap", "Table 1"),
    ("supmam_clap", "supmam", "Table 1"), ("supmam_clap", "audiomae_teacher_compute", "equal compute"),
    ("audiomae", "scratch", "pretraining pays"),
    ("mam_clap", "mam_clap_mask0.4", "Table 2"), ("mam_clap", "mam_clap_mask0.8", "Table 2"),
    ("mam_clap", "mam_clap_masked_only", "eq. 1"),
    ("supmam", "supmam_rec", "Table 5"), ("supmam", "supmam_cls", "Table 5"),
    ("supmam_clap", "supmam_clap_lambda0.01", "Table 6"),
    ("supmam_clap_clone4", "supmam_clap", "clone_batch at equal compute"),
)


def welch(better: list, worse: list) -> dict:
    """Mean difference, Welch's t and its two-sided p (scipy) of two lists of per-seed scores, and
    the verdict: "holds" (better is higher, p < 0.05), "does not hold here" (it is lower, p < 0.05),
    "within the spread" (p >= 0.05) or "pending" (fewer than 2 seeds on a side)."""
    from scipy.stats import ttest_ind

    difference = float(sum(better) / len(better) - sum(worse) / len(worse)) if better and worse else float("nan")
    if min(len(better), len(worse)) < 2:
        return {"difference": difference, "t": float("nan"), "p": float("nan"), "verdict": "pending"}
    test = ttest_ind(better, worse, equal_var=False)
    t, p = float(test.statistic), float(test.pvalue)
    verdict = "within the spread" if not p < 0.05 else ("holds" if t > 0 else "does not hold here")
    return {"difference": difference, "t": t, "p": p, "verdict": verdict}


def verdicts(rows: dict) -> list[dict]:
    """One verdict per claim, task and measure ("finetuned" test, "probe" test) of the ledger's rows."""
    found = []
    for task in TASKS:
        def scores(arm, measure):
            mine = [v for k, v in rows.items() if k.startswith(f"{task}/{arm}/s")]
            return [v[measure]["test"] for v in mine if measure in v]

        for better, worse, where in CLAIMS:
            groups = {ARMS.get(better, ("", [], "table"))[2], ARMS.get(worse, ("", [], "table"))[2]}
            if groups != {"table"} and task not in ABLATION_TASKS:
                continue
            for measure in ("finetuned", "probe"):
                a, b = scores(better, measure), scores(worse, measure)
                if a or b:
                    found.append({"task": task, "claim": f"{better} > {worse}", "paper": where, "measure": measure,
                                  "n": (len(a), len(b)), **welch(a, b)})
    return found


def report(ledger_path: str) -> str:
    """Markdown tables (mean +- std over seeds, the seeds, n) of the ledger's rows."""
    with open(ledger_path, encoding="utf-8") as f:
        rows = json.load(f)["rows"]
    lines = []
    for task in TASKS:
        mine = {k: v for k, v in rows.items() if k.startswith(task + "/")}
        if not mine:
            continue
        metric = next(iter(mine.values())).get("metric", "")
        lines += [f"\n{task} (held-out test {metric}; mean +- std over seeds, then the seeds)", "",
                  "| row | fine-tuned | linear probe | zero-shot | n |", "|---|---|---|---|---|"]
        arms = dict.fromkeys(k.split("/")[1] for k in mine)
        for arm in arms:
            seeds = {k.split("/")[2]: v for k, v in mine.items() if k.split("/")[1] == arm}

            def cell(get):
                values = [get(v) for v in seeds.values()]
                values = [x for x in values if x is not None]
                if not values:
                    return ""
                stats = mean_std(values)
                return f"{stats['mean']:.1f} +- {stats['std']:.1f} ({', '.join(f'{x:.1f}' for x in values)})"

            lines.append(f"| {arm} | {cell(lambda v: v.get('finetuned', {}).get('test'))} | "
                         f"{cell(lambda v: (v.get('probe') or v.get('baseline') or {}).get('test'))} | "
                         f"{cell(lambda v: v.get('zero_shot'))} | {len(seeds)} |")
    lines += ["", "claims (Welch t over seeds; verdict at p < 0.05, two-sided)", "",
              "| task | claim | paper | measure | difference | Welch t | p | n | verdict |",
              "|---|---|---|---|---|---|---|---|---|"]
    for v in verdicts(rows):
        lines.append(f"| {v['task']} | {v['claim']} | {v['paper']} | {v['measure']} | {v['difference']:+.1f} | "
                     f"{v['t']:.2f} | {v['p']:.3f} | {v['n'][0]} vs {v['n'][1]} | {v['verdict']} |")
    return "\n".join(lines)


def cell(values) -> str:
    """'mean +- std (each seed)' of a row's per-seed scores (None left out); '' for none."""
    values = [v for v in values if v is not None]
    if not values:
        return ""
    stats = mean_std(values)
    return f"{stats['mean']:.1f} +- {stats['std']:.1f} ({', '.join(f'{x:.1f}' for x in values)})"


def strength_rows(rows: dict, task: str = "sound_events") -> list[dict]:
    """Per teacher of TEACHERS with rows in the ledger: its scores and its MAM-CLAP student's, per seed."""
    def per_seed(arm):
        return {k.split("/")[2]: v for k, v in rows.items() if k.startswith(f"{task}/{arm}/s")}

    found = []
    for name, (kind, what) in TEACHERS.items():
        teacher, student = per_seed(f"teacher@{name}"), per_seed(f"mam_clap@{name}")
        if not teacher and not student:
            continue
        found.append({
            "name": name, "kind": kind, "what": what,
            "teacher_probe": [(v.get("probe") or {}).get("test", v.get("probe_test")) for v in teacher.values()],
            "zero_shot": [v["zero_shot"] for v in teacher.values() if "zero_shot" in v],
            "teacher_finetuned": [v["finetuned"]["test"] for v in teacher.values() if "finetuned" in v],
            "student_finetuned": [v["finetuned"]["test"] for v in student.values()],
            "student_probe": [v["probe"]["test"] for v in student.values()],
        })
    return found


def strength_report(ledger_path: str, task: str = "sound_events") -> str:
    """The teacher-strength table: each teacher's own scores and its MAM-CLAP student's, with the
    student's Welch verdict against AudioMAE's fine-tuned score."""
    with open(ledger_path, encoding="utf-8") as f:
        rows = json.load(f)["rows"]

    audiomae = [v["finetuned"]["test"] for k, v in rows.items() if k.startswith(f"{task}/reference@audiomae/s")]
    lines = [f"\n{task}: the teacher-strength curve (held-out test mAP; mean +- std over seeds, then the seeds)", "",
             "| teacher | teacher probe | teacher zero-shot | teacher fine-tuned | MAM-CLAP student fine-tuned | "
             "student probe | student vs AudioMAE (fine-tuned) |", "|---|---|---|---|---|---|---|"]
    for row in strength_rows(rows, task):
        verdict = welch(row["student_finetuned"], audiomae) if row["student_finetuned"] else None
        versus = "" if not verdict else (
            f"{verdict['difference']:+.1f}: pending (n = {len(row['student_finetuned'])} vs {len(audiomae)})"
            if verdict["verdict"] == "pending" else
            f"{verdict['difference']:+.1f}, t = {verdict['t']:.2f}, p = {verdict['p']:.3f}: {verdict['verdict']}")
        lines.append(f"| {row['name']}: {row['what']} | {cell(row['teacher_probe'])} | {cell(row['zero_shot'])} | "
                     f"{cell(row['teacher_finetuned'])} | {cell(row['student_finetuned'])} | {cell(row['student_probe'])} | "
                     f"{versus} |")
    return "\n".join(lines)


# The labelled-pool Table 1: (row, ledger arm, measure of the "fine-tuned" column)
LABELLED_TABLE_ROWS = (
    ("from scratch on the training clips", "teacher@classifier_train"),
    ("from scratch on every labelled clip (pool + train)", "teacher@classifier_pool"),
    ("AudioMAE, then supervised on every labelled clip (the teacher's start)", "teacher@classifier_pool_mae"),
    ("the teacher: LAION-CLAP's recipe (zero-shot)", f"teacher@{LABELLED_POOL_TEACHER}"),
    ("AudioMAE", "reference@audiomae"),
    ("MAM-CLAP", f"mam_clap@{LABELLED_POOL_TEACHER}"),
    ("SupMAM (cls branch on every label)", "labelled_pool@supmam"),
    ("SupMAM-CLAP (cls branch on every label)", "labelled_pool@supmam_clap"),
)


def labelled_table_report(ledger_path: str, task: str = "sound_events") -> str:
    """Table 1 in the labelled-pool setting, with each row's Welch verdict against AudioMAE and
    against SupMAM-CLAP (fine-tuned test score)."""
    with open(ledger_path, encoding="utf-8") as f:
        rows = json.load(f)["rows"]

    def scores(arm, measure):
        found = [v for k, v in rows.items() if k.startswith(f"{task}/{arm}/s")]
        if measure == "finetuned":
            return [v["zero_shot"] if "zero_shot" in v else v["finetuned"]["test"] for v in found
                    if "zero_shot" in v or "finetuned" in v]
        return [v["probe"]["test"] for v in found if "probe" in v]

    def versus(a, b):
        if not a or not b:
            return ""
        v = welch(a, b)
        return f"{v['difference']:+.1f} ({v['verdict']}{'' if v['verdict'] == 'pending' else f', p = {v[chr(112)]:.3f}'})"

    audiomae, supmam_clap = scores("reference@audiomae", "finetuned"), scores("labelled_pool@supmam_clap", "finetuned")
    mfcc = [v["baseline"]["test"] for k, v in rows.items() if k.startswith(f"{task}/mfcc/")]
    lines = [f"\n{task}: Table 1 in the labelled-pool setting (held-out test mAP; mean +- std, then the seeds)", "",
             "| row | fine-tuned (teacher: zero-shot) | linear probe | vs AudioMAE | SupMAM-CLAP vs it |",
             "|---|---|---|---|---|"]
    for label, arm in LABELLED_TABLE_ROWS:
        main_scores = scores(arm, "finetuned")
        lines.append(f"| {label} | {cell(main_scores)} | {cell(scores(arm, 'probe'))} | "
                     f"{'' if arm in ('reference@audiomae', f'teacher@{LABELLED_POOL_TEACHER}') else versus(main_scores, audiomae)} | "
                     f"{'' if arm in ('labelled_pool@supmam_clap', f'teacher@{LABELLED_POOL_TEACHER}') else versus(supmam_clap, main_scores)} |")
    if mfcc:
        lines.append(f"| MFCC + logistic regression | | {mfcc[0]:.1f} | | |")
    return "\n".join(lines)


def finetune_length_report(ledger_path: str, task: str = "sound_events") -> str:
    """Each LONGER_FINETUNE_ARMS row at the study's fine-tuning length and at twice it (best on valid
    both times): test and training-clip mAP, and the update valid chose."""
    with open(ledger_path, encoding="utf-8") as f:
        rows = json.load(f)["rows"]

    lines = [f"\n{task}: fine-tuning length chosen on valid (held-out test / training-clip mAP)", "",
             f"| pretrained by | test, {SIZES[task]['finetune_updates']} updates | train | test, "
             f"{2 * SIZES[task]['finetune_updates']} updates | train | longer - study (test) |", "|---|---|---|---|---|---|"]
    for arm in LONGER_FINETUNE_ARMS:
        short = [v["finetuned"] for k, v in rows.items() if k.startswith(f"{task}/{arm}/s")]
        longer = [v["finetuned"] for k, v in rows.items() if k.startswith(f"{task}/longer_finetune@{arm}/s")]
        if not longer:
            continue
        verdict = welch([r["test"] for r in longer], [r["test"] for r in short])
        lines.append(f"| {arm} | {cell([r['test'] for r in short])} | {cell([r['train'] for r in short])} | "
                     f"{cell([r['test'] for r in longer])} | {cell([r['train'] for r in longer])} | "
                     f"{verdict['difference']:+.1f} ({verdict['verdict']}) |")
    return "\n".join(lines)


def draw_strength(ledger_path: str, out_png: str, task: str = "sound_events") -> str:
    """Student fine-tuned mAP against its teacher's probe mAP (mean +- std over seeds, a dot per seed),
    AudioMAE and SupMAM as mean +- std bands, the MFCC baseline, and the line where a student equals
    its teacher's probe."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    with open(ledger_path, encoding="utf-8") as f:
        rows = json.load(f)["rows"]
    figure, axis = plt.subplots(figsize=(8.5, 6))
    for index, (arm, label) in enumerate((("audiomae", "AudioMAE"), ("supmam", "SupMAM"))):
        scores = [v["finetuned"]["test"] for k, v in rows.items() if k.startswith(f"{task}/reference@{arm}/s")]
        if scores:
            stats = mean_std(scores)
            axis.axhspan(stats["mean"] - stats["std"], stats["mean"] + stats["std"], color=f"C{index + 7}", alpha=0.25)
            axis.axhline(stats["mean"], color=f"C{index + 7}", lw=1.2,
                         label=f"{label} fine-tuned {stats['mean']:.1f} +- {stats['std']:.1f} (n={stats['n']})")
    scratch = [v["finetuned"]["test"] for k, v in rows.items() if k.startswith(f"{task}/teacher@classifier_train/s")]
    if scratch:
        axis.axhline(np.mean(scratch), color="C3", ls=":", lw=1,
                     label=f"from scratch on the training clips {np.mean(scratch):.1f} (n={len(scratch)})")
    mfcc = [v["baseline"]["test"] for k, v in rows.items() if k.startswith(f"{task}/mfcc/")]
    if mfcc:
        axis.axhline(mfcc[0], color="k", ls="--", lw=1, label=f"MFCC baseline {mfcc[0]:.1f} (also as a teacher's probe: |)")
        axis.axvline(mfcc[0], color="k", ls="--", lw=1)
    points, named = [], []
    for index, row in enumerate(strength_rows(rows, task)):
        pairs = [(t, s) for t, s in zip(row["teacher_probe"], row["student_finetuned"]) if t is not None]
        if not pairs:
            continue
        teacher, student = np.array(pairs).T
        colour = f"C{index}"
        axis.plot(teacher, student, "o", color=colour, alpha=0.45, ms=5)
        axis.errorbar(teacher.mean(), student.mean(), xerr=teacher.std(ddof=1) if len(teacher) > 1 else 0,
                      yerr=student.std(ddof=1) if len(student) > 1 else 0, fmt="s", color=colour, ms=8, capsize=3,
                      label=f"{row['name']} ({len(pairs)} seed{'s' * (len(pairs) > 1)})")
        near = any(abs(teacher.mean() - x) < 2.5 and abs(student.mean() - y) < 1.5 for x, y in named)
        axis.annotate(row["name"], (teacher.mean(), student.mean()), textcoords="offset points",
                      xytext=(6, 7) if near else (6, -10), fontsize=7, color=colour)  # a neighbour's name: above
        named.append((teacher.mean(), student.mean()))
        points += list(teacher) + list(student)
    if points:
        low, high = min(points + mfcc) - 3, max(points + mfcc) + 3
        axis.plot([low, high], [low, high], color="grey", lw=0.8, ls=":", label="student = its teacher's probe")
        axis.set_xlim(low, high + 7)  # room for the names
    axis.set_xlabel(f"teacher: linear probe, held-out test mAP")
    axis.set_ylabel(f"MAM-CLAP student: fine-tuned, held-out test mAP")
    axis.set_title("Where does the CLAP target start to pay? (sound events; a dot per seed, squares: mean +- std)",
                   fontsize=10)
    axis.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    figure.savefig(out_png, dpi=110)
    plt.close(figure)
    return out_png


TABLE_ROWS = ("scratch", "audiomae", "audiomae_teacher_compute", "mam_clap", "supmam", "supmam_clap", "teacher")
ROW_LABELS = {"scratch": "from\nscratch", "audiomae": "AudioMAE", "audiomae_teacher_compute": "AudioMAE\n+teacher's\ncompute",
              "mam_clap": "MAM-CLAP", "supmam": "SupMAM", "supmam_clap": "SupMAM-\nCLAP", "teacher": "the CLAP\nteacher"}


def draw(ledger_path: str, out_png: str) -> str:
    """Each table row's held-out score per seed on both tasks: fine-tuned (filled dots; the teacher:
    zero-shot) and linear probe (hollow), the mean as a bar; the MFCC baseline, the scratch model's
    mean and chance as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    with open(ledger_path, encoding="utf-8") as f:
        rows = json.load(f)["rows"]
    figure, axes = plt.subplots(1, len(TASKS), figsize=(7 * len(TASKS), 5.2))
    for axis, task in zip(np.atleast_1d(axes), TASKS):
        mine = {k: v for k, v in rows.items() if k.startswith(task + "/")}
        metric = next(iter(mine.values()), {}).get("metric", "score")
        for x, arm in enumerate(TABLE_ROWS):
            seeds = [v for k, v in mine.items() if k.split("/")[1] == arm]
            main_scores = [v["zero_shot"] if arm == "teacher" else v["finetuned"]["test"] for v in seeds]
            probes = [v["probe"]["test"] for v in seeds]
            if main_scores:
                axis.bar(x - 0.18, np.mean(main_scores), width=0.34, color="C0", alpha=0.35)
                axis.plot([x - 0.18] * len(main_scores), main_scores, "o", color="C0")
            if probes:
                axis.bar(x + 0.18, np.mean(probes), width=0.34, color="C1", alpha=0.35)
                axis.plot([x + 0.18] * len(probes), probes, "o", mfc="none", color="C1")
        mfcc = [v["baseline"]["test"] for k, v in mine.items() if k.split("/")[1] == "mfcc"]
        if mfcc:
            axis.axhline(mfcc[0], color="k", ls="--", lw=1, label=f"MFCC baseline {mfcc[0]:.1f}")
        scratch = [v["finetuned"]["test"] for k, v in mine.items() if k.split("/")[1] == "scratch"]
        if scratch:
            axis.axhline(np.mean(scratch), color="C3", ls=":", lw=1, label=f"from scratch (mean) {np.mean(scratch):.1f}")
        data = os.path.abspath(TASKS[task][0])
        if os.path.isdir(data):
            chance = demo.chance_score(data, demo.is_multi_label(data))
            axis.axhline(chance, color="grey", ls="-.", lw=1, label=f"chance {chance:.1f}")
        axis.plot([], [], "o", color="C0", label="fine-tuned (teacher: zero-shot), a dot per seed")
        axis.plot([], [], "o", mfc="none", color="C1", label="linear probe, a dot per seed")
        axis.set_xticks(range(len(TABLE_ROWS)), [ROW_LABELS[a] for a in TABLE_ROWS], fontsize=8)
        axis.set_ylim(0, axis.get_ylim()[1] * 1.3)  # room for the legend above the bars
        axis.set_ylabel(f"held-out test {metric}")
        axis.set_title(f"{task.replace('_', ' ')}: bars = mean over seeds")
        axis.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    figure.savefig(out_png, dpi=100)
    plt.close(figure)
    return out_png


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="claims_study", help="folder of the runs (checkpoints, logs)")
    parser.add_argument("--ledger", default=os.path.normpath(LEDGER), help="the finished units (JSON, committed)")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--arms", nargs="+", default=["table", "ablation"], choices=list(GROUPS),
                        help="groups of rows; clone_batch (issue 26) and teacher_strength (issue 38) run only when named")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--only", nargs="+", default=None, metavar="ARM",
                        help="only these rows (mfcc, teacher, scratch or an arm of ARMS), e.g. to order a short session")
    parser.add_argument("--workers", type=int, default=2, help="units at a time (one thread each)")
    parser.add_argument("--report", action="store_true", help="print the ledger's tables and stop")
    parser.add_argument("--picture", default=None, metavar="PNG", help="draw the table's scores per seed and stop")
    parser.add_argument("--strength-picture", default=None, metavar="PNG",
                        help="draw the teacher-strength curve (students against their teachers' probes) and stop")
    parser.add_argument("--quick", action="store_true",
                        help="2 updates for every run (a check that every unit runs; give it its own --ledger and --out)")
    cfg = parser.parse_args()
    if cfg.quick:
        if os.path.abspath(cfg.ledger) == os.path.abspath(LEDGER):
            raise SystemExit("claims_study: --quick writes 2-update rows: give it a --ledger of its own")
        for sizes in SIZES.values():
            sizes.update(pretrain_updates=2, finetune_updates=2, teacher_updates=2, validate_interval=1)
        CLASSIFIER_POOL_UPDATES.update(dict.fromkeys(CLASSIFIER_POOL_UPDATES, 2))
    if cfg.report or cfg.picture or cfg.strength_picture:
        print(report(cfg.ledger))
        print(strength_report(cfg.ledger))
        print(labelled_table_report(cfg.ledger))
        print(finetune_length_report(cfg.ledger))
        if cfg.picture:
            print(f"picture: {draw(cfg.ledger, cfg.picture)}")
        if cfg.strength_picture:
            print(f"picture: {draw_strength(cfg.ledger, cfg.strength_picture)}")
        return 0
    run(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
