"""Why does the small classifier underfit? Fine-tune the demo's tiny ViT under named settings and
record how well it FITS (accuracy on the training clips, eval mode) and how it GENERALISES
(accuracy on the held-out-speaker valid split). The test split is never looked at here.

    .venv/bin/python scripts/finetune_study.py --out study --configs demo lr1e-3 ...
    .venv/bin/python scripts/finetune_study.py --list

Each config is a list of fairseq-hydra-train overrides on top of the demo's fine-tuning command
(examples/supmam/finetuning/esc50.yaml, tiny 2 x 192 encoder, 128 frames, batch 16, specaug and
mixup off). Results append to OUT/results.jsonl: config, seed, updates, train accuracy (eval mode,
no patch dropping), best and last valid accuracy, seconds.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from supmam_plugin.commands.fairseq_runs import hydra_train_command, log_records, run_logged  # noqa: E402

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
BASE = ["model.encoder_layers=2", "model.encoder_embed_dim=192", "model.encoder_heads=3", "task.target_frames=128",
        "task.multi_label=false", "dataset.batch_size=16", "common.cpu=true",
        "distributed_training.distributed_world_size=1", "dataset.num_workers=0", "common.log_format=json",
        "common.log_interval=50", "optimization.max_epoch=0",
        "model.specaug_time=0", "model.specaug_freq=0", "model.mixup_alpha=0", "model.pretrained=''",
        "checkpoint.no_save=true"]
CONFIGS = {  # name: overrides (the demo's fine-tuning is "demo")
    "demo": [],
    "lr1e-3": ["optimization.lr=[0.001]", "optimizer.groups.default.lr_float=0.001"],
    "lr3e-3": ["optimization.lr=[0.003]", "optimizer.groups.default.lr_float=0.003"],
    "lr1e-4": ["optimization.lr=[0.0001]", "optimizer.groups.default.lr_float=0.0001"],
    "no_layer_decay": ["model.layer_decay=1.0"],
    "lr1e-3_no_layer_decay": ["optimization.lr=[0.001]", "optimizer.groups.default.lr_float=0.001",
                              "model.layer_decay=1.0"],
    "no_regularisation": ["model.time_mask_ratio=0", "model.freq_mask_ratio=0", "model.drop_path=0"],
    "lr1e-3_no_layer_decay_no_reg": ["optimization.lr=[0.001]", "optimizer.groups.default.lr_float=0.001",
                                     "model.layer_decay=1.0", "model.time_mask_ratio=0", "model.freq_mask_ratio=0",
                                     "model.drop_path=0"],
    "warmup_short": ["optimizer.groups.default.lr_scheduler.warmup_updates=20"],
    "batch32": ["dataset.batch_size=32"],
}


def run_config(name: str, overrides: list[str], args, seed: int) -> dict:
    data = os.path.abspath(args.data)
    fit_dir = os.path.join(args.out, "data")
    os.makedirs(fit_dir, exist_ok=True)
    for f in os.listdir(data):  # the same folder, plus the training clips as subset "trainfit"
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
    run_dir = os.path.join(args.out, f"{name}_s{seed}")
    cmd = hydra_train_command("finetuning", "esc50", run_dir, [
        f"task.data={fit_dir}", f"common.seed={seed}", f"optimization.max_update={args.updates}",
        f"optimizer.groups.default.lr_scheduler.warmup_updates={max(1, args.updates // 10)}",
        "dataset.valid_subset='valid,trainfit'", f"dataset.validate_interval_updates={args.validate_every}",
        "dataset.validate_interval=1000", *BASE, *overrides])
    start = time.time()
    log = run_logged(cmd, os.path.join(run_dir + ".log"), name, False)
    valid = [float(r["valid_accuracy"]) for r in log_records(log, "valid")]
    fit = [float(r["trainfit_accuracy"]) for r in log_records(log, "trainfit")]
    return {"config": name, "seed": seed, "updates": args.updates, "overrides": overrides,
            "train_accuracy": fit[-1] if fit else None, "valid_best": max(valid) if valid else None,
            "valid_last": valid[-1] if valid else None, "valid_curve": valid, "train_curve": fit,
            "seconds": round(time.time() - start, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.path.join(REPO, "data", "demo"))
    parser.add_argument("--out", default="finetune_study")
    parser.add_argument("--configs", nargs="+", default=["demo"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1])
    parser.add_argument("--updates", type=int, default=1200)
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
            print(f"{name} seed {seed}: train {result['train_accuracy']}  valid best {result['valid_best']} "
                  f"last {result['valid_last']}  ({result['seconds']} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
