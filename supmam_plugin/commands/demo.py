"""``supmam-demo``: pretraining on unlabelled audio, fine-tuning on a few labelled clips, and the
baselines, end to end on the CPU. ``make demo`` runs it on the real recorded sound events of ``make
sound-events`` in the labelled-pool setting with a CLAP teacher made here by LAION-CLAP's recipe
(``--teacher-recipe laion-clap``; the method: SupMAM-CLAP); independent runs go two at a time (``--workers``);
``make demo DEMO=spoken-words`` on the spoken words of ``data/demo`` (10 words, speakers held out
between splits) and its unlabelled pool ``data/demo_pool`` (``scripts/make_demo_data.py --pool-dir``).

For each seed (``--seeds``; a seed is the whole pipeline: pretraining, fine-tuning, probe):

1. pretrain a small ViT with each method of ``--methods`` (``audiomae``, ``mam_clap``, ``supmam``,
   ``supmam_clap``: the pretraining recipes) on ``--pretrain-data`` (its ``pretrain`` split when
   there is one: the pool, unlabelled, plus the labelled training clips; else its ``train`` split).
   The CLAP methods' teacher is ``--teacher`` (``model.teacher``) with ``--teacher-checkpoint``;
   ``--teacher clap`` without a checkpoint: a tiny CLAP trained first, for each seed, on the captions
   of ``--pretrain-data``'s unlabelled pool only (``clap_teacher_run``), and scored on test as a model
   of its own (zero-shot, linear probe); by default LAION-CLAP, a real checkpoint when
   ``SUPMAM_CLAP_CHECKPOINT`` names one (HTSAT-tiny, e.g. 630k-audioset-best.pt), otherwise the explicitly requested RANDOM teacher (its targets mean
   nothing; it exercises the pipeline); ``--teacher supmam --teacher-checkpoint CLASSIFIER.pt``: a
   checkpoint of this plugin, e.g. a classifier fine-tuned on the labelled clips (a teacher that
   knows the task, RESULTS.md). Its targets are precomputed once;
2. fine-tune each pretrained encoder, and the same classifier from scratch, with the same updates
   and seed (``SMALL_FINETUNING``: the recipe for small models on small sets, RESULTS.md says why);
   score the checkpoint best on valid with ``fairseq-validate`` on the held-out test split, and on
   the training clips (does it fit them?);
3. linear probes (frozen encoder, logistic regression, C chosen on valid) of each pretrained encoder
   and of its random twin, and once the MFCC baseline (MFCC statistics + logistic regression);
4. write ``results.json`` (per seed, and mean +- std over seeds) and print the result line, before
   any picture;
5. draw ``held_out_accuracy.png`` (every method, every seed, beside the baseline), a reconstruction
   (of the test manifest's first clip), the CLAP teacher-vs-prediction similarity and the training
   curves of the first seed (a picture that fails is reported and loses nothing);
6. end with one line: held-out accuracies (mean +- std over seeds), the baseline, the probes, chance.

``--data`` may be any manifest folder with train/valid/test splits and a ``label`` class list. A
folder where some clip carries several classes (AudioSet's shape, e.g. ``make sound-events``) is
multi-label: fine-tuning with BCE (``task.multi_label=true``, best checkpoint by mAP), one-vs-rest
probes and baseline, and every score is mAP (``results.json``: ``"metric": "mAP"``; chance = the
mAP of a random ranking); fairseq-validate's per-class AP of each fine-tuned model is kept too.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor

from ..evaluation.results import CLAP_TARGET, METHOD_NAMES, mean_std, method_label, teacher_label
from .clap_teacher_run import caption_split, train_clap_teacher, zero_shot_score
from .fairseq_runs import (
    PLUGIN_DIR, console_script, empty_run_folder, finished_output, hydra_train_command, parse_per_class_ap,
    parse_validate_output, run_logged, training_seconds, validate_command,
)

CLS_BRANCH = ("supmam", "supmam_clap")  # the methods that read labels while pretraining
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


def log_path(out: str, name: str) -> str:
    return os.path.join(out, "logs", f"{name}.log")


def hydra_train(out, name, config_dir, recipe, overrides, verbose, reuse=False):
    """One fairseq-hydra-train run into OUT/name. Returns (its checkpoint folder, whether a finished
    run of the same command was reused instead: only when ``reuse``, i.e. its inputs were reused too,
    the seconds fairseq says it trained)."""
    save_dir = os.path.join(out, name)
    cmd = hydra_train_command(config_dir, recipe, save_dir, overrides)
    output = finished_output(cmd, log_path(out, name)) if reuse else None
    if output is not None:
        print(f"[demo] {name}: reused (its log holds a finished run of the same command)", flush=True)
        return save_dir, True, training_seconds(output)
    empty_run_folder(save_dir)
    print(f"[demo] {name}: fairseq-hydra-train {config_dir}/{recipe} (log {log_path(out, name)})", flush=True)
    seconds = training_seconds(run_logged(cmd, log_path(out, name), name, verbose))
    print(f"[demo] {name}: done, {seconds:.0f} s of training", flush=True)
    return save_dir, False, seconds


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


def split_score(out, name, data, checkpoint, subset, metric, verbose, reuse=False) -> dict:
    """fairseq-validate's ``metric`` (accuracy or mAP, %) of ``checkpoint`` on ``subset`` of ``data``:
    {"score"[, "AP_per_class"]} (``reuse``: see hydra_train)."""
    cmd = validate_command(data, checkpoint, subset, batch_size=25, cpu=True)
    output = run_logged(cmd, log_path(out, f"{name}_{subset}"), name, verbose, reuse=reuse)
    row = {"score": parse_validate_output(output, subset)[metric]}
    per_class = parse_per_class_ap(output, subset)
    if per_class:
        row["AP_per_class"] = per_class
    return row


def frames_for(data: str) -> int:
    """fbank frames per clip for ``data``: its training clips' median length in 10-ms frames, rounded
    to the nearest multiple of 64 (the decoder's 4 x 4 windows over 16-frame patches), at most 1024:
    1 s -> 128, 2 s -> 192, ESC-50's 5 s -> 512, AudioSet's 10 s -> 1024 (the lengths AudioMAE uses)."""
    from ..core.fbank import FbankSettings
    from ..core.manifest import read_manifest

    samples = sorted(e.num_samples for e in read_manifest(os.path.join(data, "train.tsv")).entries)
    frames = FbankSettings().num_frames(samples[len(samples) // 2])
    return min(1024, max(64, 64 * round(frames / 64)))


def is_multi_label(data: str, splits=("train", "valid", "test")) -> bool:
    """Whether any clip of ``data``'s labelled splits carries several classes (AudioSet's shape)."""
    for split in splits:
        path = os.path.join(data, f"{split}.label")
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                if any(len(line.split()) > 1 for line in f):
                    return True
    return False


def chance_score(data: str, multi_label: bool) -> float:
    """What random scores get on the test split (%): 1 / classes (accuracy), or the mean over the
    classes present of their share of test clips (the AP of a random ranking, mAP)."""
    from ..evaluation.labelled_splits import read_labelled_splits

    test = read_labelled_splits(data, ("test",), "label")["test"]
    if not multi_label:
        return 100.0 / len(test.classes)
    share = test.targets(multi_label=True).mean(axis=0)
    return 100.0 * float(share[share > 0].mean())


LABELLED_POOL_SPLIT = "pretrain_labelled"  # make_sound_events.py: the pool with its labels, then train
SETTINGS = ("labelled-pool", "unlabelled-pool")
# --teacher-recipe: what it trains, and the model.teacher that reads it
TEACHER_RECIPES = {"pool-captions": "clap", "labelled-pool-classifier": "checkpoint_encoder", "laion-clap": "clap"}


TEACHER_MADE = {  # the result line's words for a teacher trained here
    "pool-captions": "a CLAP, {teacher_updates} updates on the pool's captions",
    "labelled-pool-classifier": "the classifier on every labelled clip{start}",
    "laion-clap": "LAION-CLAP's recipe: a CLAP from the classifier on every label{start}, {teacher_updates} updates "
                  "on captions and labels",
}


def teacher_made(result: dict) -> str:
    """The result line's words for the teacher trained here (TEACHER_MADE, with where its classifier started)."""
    start = {"audiomae": " fine-tuned from an AudioMAE pretraining ({mae_updates} updates)",
             "scratch": " from scratch"}.get(result.get("teacher_start"), "")
    return TEACHER_MADE[result.get("teacher_recipe") or "pool-captions"].format(start=start.format(**result), **result)


def has_split(folder: str, split: str) -> bool:
    return os.path.isfile(os.path.join(folder, f"{split}.tsv"))


def pool_setting(pretrain_data: str, asked: str = "auto") -> str:
    """The information setting (docs/data.md): ``labelled-pool`` (the paper's: every pretraining clip
    labelled) when asked, or by default when the folder has a ``pretrain_labelled`` split; else
    ``unlabelled-pool``."""
    if asked == "auto":
        return "labelled-pool" if has_split(pretrain_data, LABELLED_POOL_SPLIT) else "unlabelled-pool"
    if asked == "labelled-pool" and not has_split(pretrain_data, LABELLED_POOL_SPLIT):
        raise SystemExit(f"supmam-demo --setting labelled-pool: {pretrain_data} has no {LABELLED_POOL_SPLIT}.tsv (the "
                         f"pretraining clips with every label line filled, as make sound-events writes it)")
    return asked


def pretraining_split(pretrain_data: str, setting: str = "unlabelled-pool") -> str:
    """``pretrain_labelled`` in the labelled-pool setting; else ``pretrain`` (pool + labelled clips,
    make_demo_data.py --pool-dir) when the folder has one, else ``train``."""
    if setting == "labelled-pool":
        return LABELLED_POOL_SPLIT
    return "pretrain" if has_split(pretrain_data, "pretrain") else "train"


def write_results(out: str, result: dict) -> str:
    """(Re)write OUT/results.json atomically; returns its path."""
    path = os.path.join(out, "results.json")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    os.replace(path + ".tmp", path)
    return path


def summarise(result: dict) -> None:
    """Fill result["summary"]: mean +- std over seeds of each method's fine-tuned test and train
    accuracy and linear-probe test accuracy (from the per-seed rows)."""
    summary = {}
    for name, per_seed in result["finetuned"].items():
        summary[name] = {"finetuned_test": mean_std(r["test"] for r in per_seed.values()),
                         "finetuned_train": mean_std(r["train"] for r in per_seed.values())}
    for name, per_seed in result.get("linear_probe", {}).items():
        summary.setdefault(name, {})["probe_test"] = mean_std(r["test"] for r in per_seed.values())
    result["summary"] = summary


def linear_probes(data: str, checkpoints: dict[str, str], seed: int, multi_label: bool, log=print) -> dict:
    """Linear probes (supmam_plugin.evaluation) of each pretrained encoder and of the random twin of
    their architecture (initialised with ``seed``): {name: row, "scratch": twin row}; rows as
    supmam-linear-probe writes them. With no pretrained encoder, nothing."""
    from ..evaluation.labelled_splits import read_labelled_splits
    from ..evaluation.linear_probe import probe_checkpoint

    splits = read_labelled_splits(data, ("train", "valid", "test"), "label")
    rows = {name: probe_checkpoint(checkpoint, splits, name=f"{name} (linear probe)", multi_label=multi_label, log=log)
            for name, checkpoint in checkpoints.items()}
    if checkpoints:
        # every method pretrains the same tiny encoder, so one random twin stands for all
        twin = next(iter(checkpoints.values()))
        rows["scratch"] = probe_checkpoint(twin, splits, random_init=True, seed=seed, multi_label=multi_label,
                                           name="random init (linear probe)", log=log)
    return rows


def mfcc_row(data: str, multi_label: bool, log=print) -> dict:
    from ..evaluation.labelled_splits import read_labelled_splits
    from ..evaluation.linear_probe import mfcc_baseline

    return mfcc_baseline(read_labelled_splits(data, ("train", "valid", "test"), "label"), multi_label=multi_label, log=log)


def spread(stats: dict, unit: str = "%") -> str:
    return f"{stats['mean']:.1f}{unit}" if stats["n"] == 1 else f"{stats['mean']:.1f} +- {stats['std']:.1f}{unit}"


def result_line(result: dict) -> str:
    """The demo's one-line summary (its last line of output)."""
    summary = result["summary"]
    teacher = teacher_label(result)
    seeds = len(result["seeds"])
    metric = result.get("metric", "accuracy")
    unit = "%" if metric == "accuracy" else ""  # mAP is written 31.2 mAP, as in the paper
    line = (f"DEMO RESULT: held-out test {metric} " + (f"over {seeds} seeds " if seeds > 1 else "")
            + ", ".join(f"{method_label(n, teacher)} {spread(summary[n]['finetuned_test'], unit)}"
                        for n in result["finetuned"])
            + f" (fine-tuned, {result['finetune_updates']} updates each)")
    baseline = result.get("mfcc_baseline")
    if baseline:
        line += f"; MFCC baseline {baseline['test']:.1f}{unit}"
    probes = [n for n in result["finetuned"] if "probe_test" in summary[n]]
    if probes:
        line += "; linear probes " + ", ".join(
            f"{'random init' if n == 'scratch' else method_label(n, teacher)} {spread(summary[n]['probe_test'], unit)}"
            for n in probes)
    all_labels = result.get("all_labels")
    if all_labels:
        line += (f"; from scratch on every labelled pretraining clip {spread(mean_std(r['test'] for r in all_labels.values()), unit)}")
    teacher_rows = result.get("clap_teacher")
    if teacher_rows:  # a teacher trained here, scored as a model of its own
        scores = [f"{words} {spread(mean_std(r[key] for r in teacher_rows.values()), unit)}"
                  for key, words in (("zero_shot", "zero-shot"), ("finetuned", "fine-tuned"), ("probe_test", "linear probe"))
                  if all(key in r for r in teacher_rows.values())]
        line += f"; the teacher ({teacher_made(result)}): " \
            + ", ".join(scores)
    line += f"; chance {result['chance']:.1f}{unit}"
    if result.get("setting"):
        line += f"; {result['setting'].replace('-', ' ')} setting"
    pretrained = [summary[n]["finetuned_test"]["mean"] for n in result["methods"]]
    scratch = summary["scratch"]["finetuned_test"]["mean"]
    if pretrained and max(pretrained) <= scratch:
        line += "; pretraining did not beat training from scratch this time (docs/demo.md, section The demo)"
    if baseline and max(s["finetuned_test"]["mean"] for s in summary.values()) < baseline["test"]:
        line += "; no fine-tuned model beat the MFCC baseline"
    return line


def draw(out: str, data: str, verbose: bool, runs: dict | None = None) -> list[str]:
    """The pictures; returns the problems met (each picture is tried, a failure loses nothing else).
    ``runs``: {"reconstruction": pretraining run with the spectrogram target or None, "similarity": one
    with the CLAP target or None, "curves": [run names]} (default: the first seed of SupMAM and
    SupMAM-CLAP)."""
    from ..core.manifest import read_manifest

    runs = runs or {"reconstruction": "pretrain_supmam_s1", "similarity": "pretrain_supmam_clap_s1",
                    "curves": ["pretrain_supmam_s1", "finetune_supmam_s1", "finetune_scratch_s1"]}
    problems = []
    try:
        clip = read_manifest(os.path.join(data, "test.tsv")).audio_path(0)  # the test split's first clip
    except Exception as e:  # noqa: BLE001 - reported, the demo's results are already written
        problems.append(f"no clip for the reconstruction pictures: {e}")
        clip = None
    jobs = []
    if os.path.isfile(os.path.join(out, "results.json")):
        with open(os.path.join(out, "results.json"), encoding="utf-8") as f:
            written = json.load(f)
        metric = written.get("metric", "accuracy")
        jobs.append(("plot_results", "supmam-plot-results",
                     [os.path.join(out, "results.json"), "--out", os.path.join(out, f"held_out_{metric}.png")]))
        if metric == "mAP" and written.get("also_score"):  # per-class AP: held-out test beside the first extra split
            jobs.append(("plot_per_class_ap", "supmam-plot-per-class-ap",
                         [os.path.join(out, "results.json"), "--seen", written["also_score"][0],
                          "--out", os.path.join(out, "per_class_ap.png")]))
    for key, png in (("reconstruction", "reconstruction.png"), ("similarity", "clap_similarity.png")):
        if clip and runs.get(key):
            jobs.append((f"plot_{runs[key]}", "supmam-plot-reconstruction",
                         [os.path.join(out, runs[key], "checkpoint_last.pt"), clip, "--out", os.path.join(out, png)]))
    jobs.append(("plot_curves", "supmam-plot-curves",
                 [*[log_path(out, n) for n in runs["curves"]], "--out", os.path.join(out, "training_curves.png")]))
    for log_name, script, arguments in jobs:
        try:
            run_logged([console_script(script), *arguments], log_path(out, log_name), "plot", verbose)
        except Exception as e:  # noqa: BLE001 - reported, not fatal
            problems.append(str(e).splitlines()[0])
    return problems


def pretrain_overrides(method: str, args, pretrain_data: str, split: str, seed: int, teacher: str, cache: str,
                       multi_label: bool, frames: int) -> list:
    """fairseq-hydra-train overrides of a pretraining recipe for the demo's tiny model."""
    overrides = [f"task.data={pretrain_data}", f"dataset.train_subset={split}", f"task.target_frames={frames}",
                 f"dataset.batch_size={args.pretrain_batch_size}", *TINY, *TINY_DECODER, *ON_CPU,
                 f"common.seed={seed}", f"optimization.lr=[{args.pretrain_lr}]",
                 f"optimization.max_update={args.pretrain_updates}", "optimization.max_epoch=0",
                 f"lr_scheduler.warmup_updates={max(1, args.pretrain_updates // 10)}",
                 "checkpoint.save_interval_updates=0", "checkpoint.no_epoch_checkpoints=true"]
    if method in CLS_BRANCH:  # pool clips have empty label lines
        overrides += ["task.labels=label", f"task.multi_label={str(multi_label).lower()}", "task.allow_unlabeled=true"]
    if method == "audiomae":
        overrides += ["model.decoder_layers=2"]
    if method in CLAP_TARGET:
        overrides += [f"model.teacher={args.teacher}", f"model.teacher_checkpoint={teacher}",
                      f"task.teacher_cache={cache}"]
    return overrides


def finetune_overrides(args, data: str, frames: int, multi_label: bool) -> list:
    """fairseq-hydra-train overrides of the demo's fine-tuning (recipe finetuning/esc50) at its tiny size."""
    metric = "mAP" if multi_label else "accuracy"
    return [f"task.data={data}", f"task.target_frames={frames}", f"task.multi_label={str(multi_label).lower()}",
            f"checkpoint.best_checkpoint_metric={metric}",
            f"dataset.batch_size={args.batch_size}", *TINY, *ON_CPU,
            f"optimization.max_update={args.finetune_updates}", "optimization.max_epoch=0",
            f"optimizer.groups.default.lr_scheduler.warmup_updates={max(1, args.finetune_updates // 10)}",
            "dataset.valid_subset=valid", f"dataset.validate_interval={args.validate_interval}",
            *SMALL_FINETUNING]


def finetune_and_score(out: str, name: str, data: str, start_from: str, seed: int, overrides: list, metric: str,
                       extra_splits, verbose: bool, reuse: bool) -> tuple[dict, float]:
    """Fine-tune from ``start_from`` (a pretraining checkpoint; '' = from scratch) into OUT/name, then
    score its best checkpoint (by valid) on test, the training clips and ``extra_splits``:
    ({split: score, split_AP_per_class: ...}, seconds trained)."""
    save_dir, reused, seconds = hydra_train(
        out, name, "finetuning", "esc50",
        [*overrides, f"common.seed={seed}", f"model.pretrained={start_from}", *([] if start_from else FROM_SCRATCH)],
        verbose, reuse=reuse)
    best = os.path.join(save_dir, "checkpoint_best.pt")
    row = {}
    for split_name in ("test", "train", *extra_splits):
        scored = split_score(out, name, data, best, split_name, metric, verbose, reuse=reused)
        row[split_name] = scored["score"]
        if "AP_per_class" in scored:
            row[f"{split_name}_AP_per_class"] = scored["AP_per_class"]
    print(f"[demo] {name}: held-out test {metric} {row['test']:.1f} (training clips {row['train']:.1f})", flush=True)
    return row, seconds


def all_labels_classifier(args, out: str, pretrain_data: str, split: str, seed: int, frames: int,
                          multi_label: bool, start_from: str = "", name: str | None = None,
                          reuse: bool | None = None) -> tuple[str, float, bool]:
    """A classifier trained on every labelled pretraining clip (``split`` of the labelled pool), the
    demo's fine-tuning recipe at ``--classifier-updates``, kept best on ``pretrain_data``'s valid split
    (its last checkpoint when the folder has none): LAION-CLAP's supervised stage. From scratch (the
    default) it is also the bar of "all the labels, no pretraining"; ``start_from``: a pretraining
    checkpoint it is fine-tuned from instead; ``reuse``: as hydra_train (default ``--reuse``; False when
    ``start_from`` was made afresh). Returns (checkpoint, seconds trained, reused)."""
    validated = has_split(pretrain_data, "valid")
    overrides = [o for o in finetune_overrides(args, pretrain_data, frames, multi_label)
                 if not o.startswith(("optimization.max_update=", "optimizer.groups.default.lr_scheduler.warmup_updates="))]
    overrides += [f"dataset.train_subset={split}", f"optimization.max_update={args.classifier_updates}",
                  f"optimizer.groups.default.lr_scheduler.warmup_updates={max(1, args.classifier_updates // 10)}",
                  f"common.seed={seed}", f"model.pretrained={start_from}", *([] if start_from else FROM_SCRATCH)]
    if not validated:
        overrides.append("dataset.disable_validation=true")
    save_dir, reused, seconds = hydra_train(out, name or f"classifier_all_labels_s{seed}", "finetuning", "esc50",
                                            overrides, args.verbose, reuse=args.reuse if reuse is None else reuse)
    return os.path.join(save_dir, "checkpoint_best.pt" if validated else "checkpoint_last.pt"), seconds, reused


def teacher_classifier(args, out: str, pretrain_data: str, split: str, seed: int, frames: int, multi_label: bool,
                       bar: tuple | None) -> tuple[str, dict, bool]:
    """The supervised stage of the teacher recipes (``--teacher-start``): ``scratch``, the classifier from
    scratch on every label (``bar``, the all-labels classifier, when the caller made it); ``audiomae``, an
    AudioMAE pretraining on the pretraining clips (``--mae-updates``; LAION-CLAP's HTS-AT started from an
    ImageNet pretraining), then that classifier's training fine-tuned from it. Returns (checkpoint,
    {run: seconds}, reused)."""
    if args.teacher_start == "scratch":
        checkpoint, seconds, reused = bar or all_labels_classifier(args, out, pretrain_data, split, seed, frames,
                                                                   multi_label)
        return checkpoint, {f"classifier_all_labels_s{seed}": seconds}, reused
    mae_args = argparse.Namespace(**{**vars(args), "pretrain_updates": args.mae_updates or args.pretrain_updates})
    name = f"teacher_start_audiomae_s{seed}"
    save_dir, mae_reused, mae_seconds = hydra_train(
        out, name, "pretraining", "audiomae",
        pretrain_overrides("audiomae", mae_args, pretrain_data, split, seed, "", "", multi_label, frames),
        args.verbose, reuse=args.reuse)
    checkpoint, seconds, reused = all_labels_classifier(
        args, out, pretrain_data, split, seed, frames, multi_label, start_from=os.path.join(save_dir, "checkpoint_last.pt"),
        name=f"teacher_classifier_s{seed}", reuse=mae_reused)
    return checkpoint, {name: mae_seconds, f"teacher_classifier_s{seed}": seconds}, reused


def teacher_targets(args, out: str, pretrain_data: str, split: str, seed: int, frames: int,
                    on_cpu: list = ON_CPU, multi_label: bool = False, classifier: tuple | None = None) -> dict:
    """The CLAP methods' teacher for ``seed`` and its precomputed targets of ``pretrain_data`` ``split``:
    {"teacher" (model.teacher), "checkpoint", "cache", "reused", "trained", "seconds": {...}}. Without
    ``--teacher-checkpoint`` a teacher is trained first, for each seed, by ``--teacher-recipe``:
    ``pool-captions``, a tiny CLAP on the captions of the folder's unlabelled pool only
    (clap_teacher_run says why); ``labelled-pool-classifier``, the classifier trained on every labelled
    pretraining clip (from ``--teacher-start``: teacher_classifier); ``laion-clap``, LAION-CLAP's recipe:
    a CLAP whose audio tower starts from that classifier, trained on the labelled pool's captions and
    captions made from its labels. ``classifier``: the all-labels classifier's (checkpoint, seconds,
    reused) when the caller made it already (``--teacher-start scratch`` starts from it).
    Otherwise the given teacher serves every seed (one cache)."""
    recipe = None if args.teacher_checkpoint else args.teacher_recipe
    seconds, reused, teacher = {}, True, args.teacher
    if recipe == "pool-captions":
        checkpoint, seconds[f"clap_teacher_s{seed}"], reused = train_clap_teacher(
            out, pretrain_data, seed, args.teacher_updates, frames, TINY, on_cpu, verbose=args.verbose, reuse=args.reuse)
    elif recipe is not None:
        checkpoint, stages, reused = teacher_classifier(args, out, pretrain_data, split, seed, frames, multi_label,
                                                        classifier)
        seconds.update(stages)
        if recipe == "laion-clap":
            checkpoint, seconds[f"clap_laion_recipe_s{seed}"], clap_reused = train_clap_teacher(
                out, pretrain_data, seed, args.teacher_updates, frames, TINY, on_cpu, verbose=args.verbose,
                reuse=args.reuse and reused, split=split, name=f"clap_laion_recipe_s{seed}",
                extra=[f"model.audio_init={checkpoint}", "task.label_captions=label"])
            reused = reused and clap_reused
    else:
        checkpoint = args.teacher_checkpoint or os.environ.get("SUPMAM_CLAP_CHECKPOINT") or "random"
        checkpoint = checkpoint if checkpoint == "random" else os.path.abspath(checkpoint)
    if recipe is not None:
        teacher = TEACHER_RECIPES[recipe]
    cache = os.path.join(out, f"teacher_cache_s{seed}" if recipe else "teacher_cache")
    start = time.time()
    print(f"[demo] teacher targets of {pretrain_data} {split} ({teacher} "
          f"{checkpoint if checkpoint != 'random' else 'RANDOM teacher: set SUPMAM_CLAP_CHECKPOINT for a real one'})",
          flush=True)
    command = [console_script("supmam-precompute-teacher"), pretrain_data, split, "--out-dir", cache,
               "--teacher", teacher, "--teacher-checkpoint", checkpoint, "--batch-size", "8", "--device", "cpu"]
    log = log_path(out, os.path.basename(cache))
    reused = reused and args.reuse and finished_output(command, log) is not None
    if not reused and os.path.isdir(cache):  # made afresh: an earlier cache would be continued
        shutil.rmtree(cache)
    run_logged(command, log, "teacher", args.verbose, reuse=reused)
    seconds[os.path.basename(cache)] = round(time.time() - start, 1)
    return {"teacher": teacher, "checkpoint": checkpoint, "cache": cache, "reused": reused, "seconds": seconds,
            "trained": recipe is not None, "recipe": recipe}


def teacher_row(out: str, data: str, teacher: dict, seed: int, multi_label: bool, verbose: bool) -> dict:
    """A teacher trained here, scored as a model of its own on the held-out test split: {"probe_test": a
    linear probe of its audio tower or encoder, "zero_shot": a CLAP's zero-shot score, "finetuned": a
    classifier's own test score}."""
    from ..evaluation.labelled_splits import read_labelled_splits
    from ..evaluation.linear_probe import probe_checkpoint

    name = os.path.basename(os.path.dirname(teacher["checkpoint"]))
    row = {}
    if teacher["teacher"] == "clap":
        row["zero_shot"] = zero_shot_score(out, name, data, teacher["checkpoint"], "test", multi_label, verbose=verbose,
                                           reuse=teacher["reused"])
    else:  # the classifier itself
        metric = "mAP" if multi_label else "accuracy"
        row["finetuned"] = split_score(out, name, data, teacher["checkpoint"], "test", metric, verbose,
                                       reuse=teacher["reused"])["score"]
    splits = read_labelled_splits(data, ("train", "valid", "test"), "label")
    probe = probe_checkpoint(teacher["checkpoint"], splits, name="teacher (linear probe)", multi_label=multi_label,
                             log=print if verbose else _progress_only)
    row.update(probe_test=probe["test"], probe=probe)
    words = {"zero_shot": "zero-shot", "finetuned": "fine-tuned", "probe_test": "linear probe"}
    print(f"[demo] {name}: held-out test " + ", ".join(f"{words[k]} {v:.1f}" for k, v in row.items() if k in words),
          flush=True)
    return row


class InlineExecutor:
    """``submit`` runs the call at once (one lane: ``--workers 1``); the Future API of ThreadPoolExecutor."""

    def submit(self, fn, *args, **kwargs) -> Future:
        done = Future()
        done.set_result(fn(*args, **kwargs))
        return done

    def shutdown(self) -> None:
        pass


def all_labels_bar(args, out: str, data: str, pretrain_data: str, split: str, seed: int, frames: int,
                   multi_label: bool, metric: str) -> dict:
    """The labelled-pool setting's bar, every label the method saw and no pretraining: the classifier
    from scratch on every labelled pretraining clip, scored on ``data``'s test split:
    {"classifier": (checkpoint, seconds, reused), "test": score}."""
    classifier = all_labels_classifier(args, out, pretrain_data, split, seed, frames, multi_label)
    scored = split_score(out, f"classifier_all_labels_s{seed}", data, classifier[0], "test", metric, args.verbose,
                         reuse=classifier[2])
    print(f"[demo] classifier_all_labels_s{seed}: from scratch on every labelled pretraining clip, held-out "
          f"test {metric} {scored['score']:.1f}", flush=True)
    return {"classifier": classifier, "test": scored["score"]}


def check_clips(data: str, splits: list[str], pretrain_data: str, pretrain_split: str) -> None:
    """Every split the demo reads, checked before anything trains (not when the test is scored, an
    hour in): each manifest readable and no clip shorter than one fbank window (the line named), and
    a warning for test classes no training clip has (their AP is scored, nothing was learned)."""
    from ..core.fbank import FbankSettings
    from ..core.manifest import ManifestError, read_manifest
    from ..evaluation.labelled_splits import read_labelled_splits

    window = FbankSettings().window_size
    try:
        for folder, split in [*((data, s) for s in splits), (pretrain_data, pretrain_split)]:
            read_manifest(os.path.join(folder, f"{split}.tsv"), min_samples=window)
        labelled = read_labelled_splits(data, ("train", "test"))
    except (ManifestError, OSError) as e:
        raise SystemExit(f"supmam-demo: {e}") from None
    classes = labelled["test"].classes
    learned = {c for clip in labelled["train"].labels for c in clip}
    unseen = sorted({classes[c] for clip in labelled["test"].labels for c in clip if c not in learned})
    if unseen:
        print(f"[demo] warning: test clips carry {len(unseen)} classes no training clip has ({', '.join(unseen[:5])}"
              f"{', ...' if len(unseen) > 5 else ''}): they are scored, but nothing could learn them", flush=True)


def run(args) -> dict:
    data, out = os.path.abspath(args.data), os.path.abspath(args.out)
    pretrain_data = os.path.abspath(args.pretrain_data or args.data)
    setting = pool_setting(pretrain_data, args.setting)
    split = pretraining_split(pretrain_data, setting)
    os.makedirs(os.path.join(out, "logs"), exist_ok=True)
    if args.teacher_recipe is None and args.teacher == "clap" and not args.teacher_checkpoint:
        args.teacher_recipe = "pool-captions"  # what --teacher clap alone has always trained
    if args.teacher_recipe and args.teacher_checkpoint:
        raise SystemExit("supmam-demo: --teacher-recipe trains a teacher; --teacher-checkpoint gives one: use one of them")
    if args.teacher_recipe in ("labelled-pool-classifier", "laion-clap") and setting != "labelled-pool":
        raise SystemExit(f"supmam-demo: --teacher-recipe {args.teacher_recipe} trains on every pretraining clip's labels: "
                         f"it needs the labelled-pool setting ({pretrain_data} with a {LABELLED_POOL_SPLIT} split)")
    if args.teacher_recipe:
        args.teacher = TEACHER_RECIPES[args.teacher_recipe]
    if args.teacher not in ("laion_clap", "clap") and not args.teacher_checkpoint and not args.teacher_recipe:
        raise SystemExit(f"supmam-demo: --teacher {args.teacher} needs --teacher-checkpoint")
    for extra in args.also_score:
        if not os.path.isfile(os.path.join(data, f"{extra}.tsv")) or not os.path.isfile(os.path.join(data, f"{extra}.label")):
            raise SystemExit(f"supmam-demo: --also-score {extra}: {data} has no {extra}.tsv and {extra}.label")
    if args.teacher_recipe == "pool-captions" and any(m in CLAP_TARGET for m in args.methods):
        caption_split(pretrain_data)  # refuses a folder with no captioned pool before anything runs
    check_clips(data, ["train", "valid", "test", *args.also_score], pretrain_data, split)
    multi_label = args.multi_label or is_multi_label(data)
    metric = "mAP" if multi_label else "accuracy"
    frames = args.frames or frames_for(data)
    print(f"[demo] {data}: {'multi-label: mAP' if multi_label else 'single-label: accuracy'}, {frames} fbank frames "
          f"per clip; {setting.replace('-', ' ')} setting: pretraining on {pretrain_data} {split}", flush=True)
    trains_teacher = bool(args.teacher_recipe)
    result = {"methods": list(args.methods), "seeds": list(args.seeds), "setting": setting,
              "teacher_recipe": args.teacher_recipe,
              "teacher": "trained here" if trains_teacher else
              (args.teacher_checkpoint or os.environ.get("SUPMAM_CLAP_CHECKPOINT") or "random"),
              "metric": metric, "multi_label": multi_label, "frames": frames, "also_score": list(args.also_score),
              "teacher_name": args.teacher, "data": data,
              "pretrain_data": pretrain_data, "pretrain_split": split, "pretrain_updates": args.pretrain_updates,
              "finetune_updates": args.finetune_updates, "finetune_overrides": SMALL_FINETUNING,
              "chance": chance_score(data, multi_label), "finetuned": {}, "linear_probe": {}, "seconds": {}}
    if trains_teacher:
        result["teacher_updates"] = args.teacher_updates
        if args.teacher_recipe != "pool-captions":
            result["teacher_start"] = args.teacher_start
            result["mae_updates"] = args.mae_updates or args.pretrain_updates
    finetune = finetune_overrides(args, data, frames, multi_label)
    # Independent runs go to a second lane (a thread starting its own fairseq processes) while this one
    # runs the method's chain: a tiny model gains little from a second thread but all from a second core.
    side = ThreadPoolExecutor(max_workers=1) if args.workers > 1 else InlineExecutor()
    print("[demo] MFCC baseline (MFCC statistics + logistic regression, C chosen on valid)", flush=True)
    mfcc = side.submit(stored_rows, log_path(out, "mfcc_baseline").replace(".log", ".json"),
                       {"data": data, "multi_label": multi_label}, args.reuse,
                       lambda: mfcc_row(data, multi_label, log=print if args.verbose else _progress_only))
    teacher = None
    for seed in args.seeds:
        bar = side.submit(all_labels_bar, args, out, data, pretrain_data, split, seed, frames, multi_label, metric) \
            if setting == "labelled-pool" else None
        scratch = side.submit(finetune_and_score, out, f"finetune_scratch_s{seed}", data, "", seed, finetune, metric,
                              args.also_score, args.verbose, args.reuse)
        teacher_scored = None
        if any(m in CLAP_TARGET for m in args.methods) and (teacher is None or teacher["trained"]):
            needs_bar = args.teacher_recipe and args.teacher_start == "scratch" and bar is not None
            teacher = teacher_targets(args, out, pretrain_data, split, seed, frames, multi_label=multi_label,
                                      classifier=bar.result()["classifier"] if needs_bar else None)
            result["seconds"].update(teacher["seconds"])
            if teacher["trained"]:
                teacher_scored = side.submit(teacher_row, out, data, teacher, seed, multi_label, args.verbose)
        pretrained, reused = {}, {}
        for method in args.methods:
            name = f"pretrain_{method}_s{seed}"
            clap = method in CLAP_TARGET
            save_dir, reused[method], result["seconds"][name] = hydra_train(
                out, name, "pretraining", method,
                pretrain_overrides(method, args, pretrain_data, split, seed, teacher["checkpoint"] if clap else "",
                                   teacher["cache"] if clap else "", multi_label, frames),
                args.verbose, reuse=args.reuse and (not clap or teacher["reused"]))
            pretrained[method] = os.path.join(save_dir, "checkpoint_last.pt")
        for method, start_from in pretrained.items():
            name = f"finetune_{method}_s{seed}"
            row, result["seconds"][name] = finetune_and_score(out, name, data, start_from, seed, finetune, metric,
                                                              args.also_score, args.verbose, reused[method])
            result["finetuned"].setdefault(method, {})[str(seed)] = row
        row, result["seconds"][f"finetune_scratch_s{seed}"] = scratch.result()
        result["finetuned"].setdefault("scratch", {})[str(seed)] = row
        if bar is not None:
            made = bar.result()
            result["seconds"][f"classifier_all_labels_s{seed}"] = made["classifier"][1]
            result.setdefault("all_labels", {})[str(seed)] = {"test": made["test"]}
        if teacher_scored is not None:
            result.setdefault("clap_teacher", {})[str(seed)] = teacher_scored.result()
        summarise(result)
        write_results(out, result)  # kept even if what follows fails
        start = time.time()
        print(f"[demo] linear probes, seed {seed} (scikit-learn logistic regression, C chosen on valid)", flush=True)
        probes = stored_rows(
            log_path(out, f"linear_probes_s{seed}").replace(".log", ".json"),
            {"data": data, "checkpoints": pretrained, "seed": seed, "multi_label": multi_label},
            args.reuse and all(reused[m] for m in args.methods),
            lambda: linear_probes(data, pretrained, seed, multi_label, log=print if args.verbose else _progress_only))
        for name, row in probes.items():
            result["linear_probe"].setdefault(name, {})[str(seed)] = row
        result["seconds"][f"linear_probes_s{seed}"] = round(time.time() - start, 1)
        summarise(result)
        write_results(out, result)
    side.shutdown()

    result["mfcc_baseline"] = mfcc.result()
    write_results(out, result)
    print(result_line(result), flush=True)  # before the pictures: a failure there loses nothing

    first = args.seeds[0]
    spectrogram = [m for m in args.methods if m not in CLAP_TARGET]
    clap_methods = [m for m in args.methods if m in CLAP_TARGET]
    runs = {"reconstruction": f"pretrain_{spectrogram[0]}_s{first}" if spectrogram else None,
            "similarity": f"pretrain_{clap_methods[0]}_s{first}" if clap_methods else None,
            "curves": [*[f"pretrain_{m}_s{first}" for m in args.methods],
                       *[f"finetune_{m}_s{first}" for m in [*args.methods, "scratch"]]]}
    problems = draw(out, data, args.verbose, runs)
    for problem in problems:
        print(f"[demo] picture not drawn: {problem}", flush=True)
    if problems:
        result["picture_problems"] = problems
        write_results(out, result)
    return result


def _progress_only(*args, **kwargs) -> None:
    """Probe log lines, without the per-100-clip progress (the demo's splits are small)."""
    text = " ".join(str(a) for a in args)
    if "clips/s" not in text:
        print(text, **kwargs)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.path.join("data", "demo"),
                        help="manifest folder with train/valid/test splits ({split}.tsv, {split}.label, "
                             "dict.label.txt): fine-tuning, probes and the baseline")
    parser.add_argument("--pretrain-data", default=None,
                        help="manifest folder the pretraining reads: its pretrain split (pool + labelled clips, "
                             "scripts/make_demo_data.py --pool-dir) when it has one, else its train split "
                             "(default: --data)")
    parser.add_argument("--methods", nargs="+", default=["supmam"],
                        choices=[m for m in METHOD_NAMES if m != "scratch"],
                        help="pretraining recipes to compare with fine-tuning from scratch (default: supmam)")
    parser.add_argument("--teacher", default="laion_clap", choices=["laion_clap", "checkpoint_encoder", "clap", "supmam"],
                        help="model.teacher of the CLAP methods (mam_clap, supmam_clap)")
    parser.add_argument("--teacher-checkpoint", default=None,
                        help="model.teacher_checkpoint: laion_clap: a LAION-CLAP .pt (default: $SUPMAM_CLAP_CHECKPOINT, "
                             "else the RANDOM teacher); checkpoint_encoder (old name: supmam): a checkpoint of this plugin (e.g. a fine-tuned "
                             "classifier) or an AudioMAE .pth; clap: a CLAP trained with this plugin (recipes/clap); "
                             "clap without a checkpoint: one is trained for each seed on the captions of --pretrain-data's "
                             "unlabelled pool (its pool split, else its train split) and nothing else")
    parser.add_argument("--teacher-updates", type=int, default=1200,
                        help="updates of the CLAP teacher trained by --teacher-recipe pool-captions or laion-clap")
    parser.add_argument("--teacher-recipe", default=None, choices=list(TEACHER_RECIPES),
                        help="train the CLAP methods' teacher here, for each seed: pool-captions (a tiny CLAP on the "
                             "unlabelled pool's captions only; what --teacher clap alone trains), "
                             "labelled-pool-classifier (a classifier from scratch on every labelled pretraining clip, "
                             "model.teacher=checkpoint_encoder), laion-clap (LAION-CLAP's recipe: a CLAP whose audio "
                             "tower starts from that classifier, trained on the captions and on captions made from the "
                             "labels); the last two need the labelled-pool setting")
    parser.add_argument("--setting", default="auto", choices=["auto", *SETTINGS],
                        help="information setting of the pretraining (docs/data.md): labelled-pool (the paper's: every "
                             "pretraining clip labelled, --pretrain-data's pretrain_labelled split; also trains and "
                             "scores a classifier from scratch on all those labels) or unlabelled-pool (its pretrain "
                             "split, labels on the training clips only); auto: labelled-pool when the folder has a "
                             "pretrain_labelled split")
    parser.add_argument("--teacher-start", default="audiomae", choices=["audiomae", "scratch"],
                        help="where the classifier of --teacher-recipe labelled-pool-classifier and laion-clap starts: "
                             "audiomae (an AudioMAE pretraining on the pretraining clips, --mae-updates: LAION-CLAP's "
                             "audio tower started from an ImageNet pretraining) or scratch (the classifier that is also "
                             "the all-labels bar)")
    parser.add_argument("--mae-updates", type=int, default=None,
                        help="updates of the AudioMAE pretraining the teacher's classifier starts from "
                             "(--teacher-start audiomae; default: --pretrain-updates)")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                        help="runs at a time, one thread each (default: 2 when the machine has 2 cores): the "
                             "baseline, the model from scratch and the bar run beside the method's chain")
    parser.add_argument("--classifier-updates", type=int, default=2000,
                        help="updates of the classifier trained from scratch on every labelled pretraining clip "
                             "(labelled-pool setting)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1],
                        help="one whole pipeline (pretraining, fine-tuning, probe) per seed; mean +- std over them")
    parser.add_argument("--out", default="demo_output", help="output folder")
    parser.add_argument("--pretrain-updates", type=int, default=2000, help="updates of each pretraining run")
    parser.add_argument("--pretrain-batch-size", type=int, default=32, help="clips per pretraining update")
    parser.add_argument("--pretrain-lr", type=float, default=1e-3, help="peak learning rate of pretraining")
    parser.add_argument("--finetune-updates", type=int, default=2400, help="updates of each fine-tuning run")
    parser.add_argument("--batch-size", type=int, default=16, help="clips per fine-tuning update")
    parser.add_argument("--frames", type=int, default=None,
                        help="fbank frames per clip (default: the training clips' median length rounded to a "
                             "multiple of 64: 1 s -> 128, 2 s -> 192, 10 s -> 1024)")
    parser.add_argument("--multi-label", action="store_true",
                        help="score by mAP with BCE fine-tuning and one-vs-rest probes even if no clip has several "
                             "labels (default: multi-label when any clip of train/valid/test has several)")
    parser.add_argument("--also-score", nargs="*", default=[], metavar="SPLIT",
                        help="more labelled splits the fine-tuned models are scored on (e.g. test_seen of "
                             "scripts/make_sound_events.py)")
    parser.add_argument("--validate-interval", type=int, default=10, help="validate every N epochs")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse the runs of an earlier call with the same --out whose logs hold a finished run "
                             "of the same command, on inputs that were reused too (a long study continues where it "
                             "stopped; likewise the linear probes and the MFCC baseline kept in OUT/logs, so one call "
                             "can merge seeds run by several calls at once); off: every run is made afresh")
    parser.add_argument("--verbose", action="store_true", help="stream fairseq's output")
    args = parser.parse_args(argv)
    if args.workers > 1:  # one thread per run: a 2-thread torch job slows ~5x beside another (BENCHMARKS.md)
        import torch

        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)
    start = time.time()
    result = run(args)
    print(f"[demo] outputs in {os.path.abspath(args.out)} (held_out_{result['metric']}.png, reconstruction.png, "
          f"training_curves.png, results.json); {time.time() - start:.0f} s in all")
    print(result_line(result))  # again, as the last line
    return 0


if __name__ == "__main__":
    sys.exit(main())
