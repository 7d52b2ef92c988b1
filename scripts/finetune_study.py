"""Why does the small classifier underfit? Fine-tune the demo's tiny ViT under named settings and
record how well it FITS (the score on the training clips, eval mode) and how it GENERALISES (the
valid split: held-out speakers, or held-out recordings for ``make sound-events``). The test split
is never looked at here.

    .venv/bin/python scripts/finetune_study.py --data data/sound_events --out study --configs demo lr3e-3 ...
    .venv/bin/python scripts/finetune_study.py --list

Each config is a list of fairseq-hydra-train overrides on top of the demo's OWN fine-tuning command
(supmam-demo's TINY, ON_CPU and SMALL_FINETUNING; the frames and the metric, accuracy or mAP, as
the demo picks them for ``--data``), from scratch or from ``--pretrained``. Results append to
OUT/results.jsonl: config, seed, updates, the training-clip score, best and last valid score, the
curves, seconds.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from supmam_plugin.experiments.fairseq_runs import hydra_train_command, log_records, run_logged
from supmam_plugin.experiments.folders import frames_for, is_multi_label
from supmam_plugin.experiments.settings import FROM_SCRATCH, ON_CPU, SMALL_FINETUNING, TINY

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def lr(value: float) -> list[str]:
    return [f"optimization.lr=[{value}]", f"optimizer.groups.default.lr_float={value}"]


CONFIGS = {  # name: overrides on top of the demo's fine-tuning ("demo": the demo as it is)
    "demo": [],
    "lr3e-3": lr(0.003),
    "lr3e-4": lr(0.0003),
    "no_layer_decay": ["model.layer_decay=1.0"],
    "no_warp": ["model.freq_warp=0"],
    "no_roll_no_warp": ["model.freq_warp=0", "model.time_roll_frames=0"],
    "no_weight_decay": ["optimizer.groups.default.optimizer.weight_decay=0"],
    "batch32": ["dataset.batch_size=32"],
    "mixup": ["model.mixup_alpha=0.5"],
    "weighted_sampling": ["task.weighted_sampling=true"],
}


def fit_folder(data: str, out: str) -> str:
    """A copy of ``data``'s lists (absolute audio root) plus the training clips as subset "trainfit"."""
    fit_dir = os.path.join(out, "data")
    os.makedirs(fit_dir, exist_ok=True)
    for f in os.listdir(data):
        if f.endswith((".tsv", ".label", ".txt")) and not os.path.exists(os.path.join(fit_dir, f)):
            with open(os.path.join(data, f), encoding="utf-8") as src:
                text = src.read()
            if f.endswith(".tsv"):
                first, rest = text.split("\n", 1)
                text = os.path.join(data, first) + "\n" + rest if not os.path.isabs(first) else text
            with open(os.path.join(fit_dir, f), "w", encoding="utf-8") as dst:
                dst.write(text)
            if f in ("train.tsv", "train.label"):
                with open(os.path.join(fit_dir, f.replace("train", "trainfit")), "w", encoding="utf-8") as dst:
                    dst.write(text)
    return fit_dir


def run_config(name: str, overrides: list[str], args, seed: int) -> dict:
    data = os.path.abspath(args.data)
    multi_label = is_multi_label(data)
    metric = "mAP" if multi_label else "accuracy"
    start_from = os.path.abspath(args.pretrained) if args.pretrained else ""
    run_dir = os.path.join(args.out, f"{name}_{args.tag}_s{seed}")
    cmd = hydra_train_command("finetuning", "esc50", run_dir, [
        f"task.data={fit_folder(data, args.out)}", f"task.target_frames={args.frames or frames_for(data)}",
        f"task.multi_label={str(multi_label).lower()}", f"checkpoint.best_checkpoint_metric={metric}",
        f"dataset.batch_size={args.batch_size}", *TINY, *ON_CPU, "optimization.max_epoch=0",
        f"optimization.max_update={args.updates}",
        f"optimizer.groups.default.lr_scheduler.warmup_updates={max(1, args.updates // 10)}",
        *SMALL_FINETUNING, f"common.seed={seed}", f"model.pretrained={start_from}",
        *([] if start_from else FROM_SCRATCH), "checkpoint.no_save=true",
        "dataset.valid_subset='valid,trainfit'", f"dataset.validate_interval_updates={args.validate_every}",
        "dataset.validate_interval=1000", *overrides])
    start = time.time()
    log = run_logged(cmd, os.path.join(run_dir + ".log"), name, False)
    valid = [float(r[f"valid_{metric}"]) for r in log_records(log, "valid")]
    fit = [float(r[f"trainfit_{metric}"]) for r in log_records(log, "trainfit")]
    return {"config": name, "tag": args.tag, "seed": seed, "updates": args.updates, "metric": metric,
            "pretrained": start_from, "overrides": overrides, "train": fit[-1] if fit else None,
            "valid_best": max(valid) if valid else None, "valid_last": valid[-1] if valid else None,
            "valid_curve": valid, "train_curve": fit, "seconds": round(time.time() - start, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.path.join(REPO, "data", "demo"))
    parser.add_argument("--out", default="finetune_study")
    parser.add_argument("--configs", nargs="+", default=["demo"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1])
    parser.add_argument("--updates", type=int, default=1200)
    parser.add_argument("--batch-size", type=int, default=16, help="as supmam-demo --batch-size")
    parser.add_argument("--frames", type=int, default=0, help="0: as supmam-demo picks them for --data")
    parser.add_argument("--pretrained", default="", help="checkpoint to fine-tune (default: from scratch)")
    parser.add_argument("--tag", default="scratch", help="names the runs (e.g. the pretrained encoder's method)")
    parser.add_argument("--validate-every", type=int, default=300)
    parser.add_argument("--extra", nargs="*", default=[], help="overrides added to every config")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args()
    if args.list:
        for name, overrides in CONFIGS.items():
            print(f"{name}: {' '.join(overrides) or '(the demo as it is)'}")
        return 0
    os.makedirs(args.out, exist_ok=True)
    for name in args.configs:
        for seed in args.seeds:
            result = run_config(name, CONFIGS[name] + args.extra, args, seed)
            with open(os.path.join(args.out, "results.jsonl"), "a", encoding="utf-8") as f:
                f.write(json.dumps(result) + "\n")
            print(f"{name} {args.tag} seed {seed} ({args.updates} updates): train {result['train']}  valid best "
                  f"{result['valid_best']} last {result['valid_last']}  curve {result['valid_curve']}  "
                  f"({result['seconds']} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
