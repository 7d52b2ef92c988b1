"""``supmam-esc50-folds``: ESC-50 five-fold cross-validation with fairseq's own tools.

    supmam-esc50-folds --manifests MANIFESTS/esc50 --save-dir checkpoints/esc50 \\
        [--config-dir examples/supmam/finetuning] [--config-name esc50] [--folds 1,2,3,4,5] \\
        [--valid-batch-size 32] [--checkpoint checkpoint_best.pt] [--verbose] \\
        [-- model.pretrained=pretrain/checkpoint_last.pt common.bf16=true ...]

For each fold K (``MANIFESTS/foldK`` as written by ``supmam-manifest-esc50``: train = the other
four folds, valid = fold K):

1. ``fairseq-hydra-train --config-dir ... --config-name ... task.data=MANIFESTS/foldK
   checkpoint.save_dir=SAVE_DIR/foldK common.user_dir=<this plugin>
   hydra.run.dir=SAVE_DIR/foldK/hydra OVERRIDES`` (log: ``SAVE_DIR/foldK/train.log``; an
   interrupted run resumes from its checkpoint_last.pt);
2. ``fairseq-validate MANIFESTS/foldK --path SAVE_DIR/foldK/checkpoint_best.pt --task
   supmam_audio_classification --valid-subset valid`` (log: ``SAVE_DIR/foldK/validate.log``;
   ``--cpu`` when the overrides hold ``common.cpu=true``), whose accuracy is the fold's score.

The table of per-fold accuracies and their mean (the number ESC-50 papers report) is printed
at the end and kept in ``SAVE_DIR/results.json`` (rewritten after every fold). Both console
scripts are taken from the Python environment running this command. A failing fold stops
the run with its log's path and the end of the log.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

from ..experiments.fairseq_runs import (
    RunError, hydra_train_command, parse_validate_output, run_logged, uses_cpu, validate_command,
)
from ..recipes import recipe_dir

FoldError = RunError  # a fold failed; the message names its log


TASK = "supmam_audio_classification"
RUNNER_KEYS = ("task.data", "checkpoint.save_dir")  # set per fold by the runner


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Options before ``--``; everything after it is passed to fairseq-hydra-train."""
    if "--" in argv:
        cut = argv.index("--")
        argv, overrides = argv[:cut], argv[cut + 1 :]
    else:
        overrides = []
    parser = argparse.ArgumentParser(
        prog="supmam-esc50-folds",
        description="ESC-50 5-fold cross-validation: fine-tune and score every fold, report the mean accuracy. "
        "Hydra overrides for fairseq-hydra-train go after `--`.",
    )
    parser.add_argument("--manifests", required=True, help="folder holding fold1 .. fold5 (supmam-manifest-esc50)")
    parser.add_argument("--save-dir", required=True, help="checkpoints go to SAVE_DIR/foldK, the table to results.json")
    parser.add_argument("--config-dir", default=recipe_dir("finetuning"),
                        help="hydra config folder (default: the installed finetuning recipes, examples/supmam/finetuning in a checkout)")
    parser.add_argument("--config-name", default="esc50", help="recipe in --config-dir (default: esc50)")
    parser.add_argument("--folds", default="1,2,3,4,5", help="comma-separated folds to run (default: 1,2,3,4,5)")
    parser.add_argument("--valid-batch-size", type=int, default=32, help="fairseq-validate --batch-size (default: 32)")
    parser.add_argument("--checkpoint", default="checkpoint_best.pt",
                        help="checkpoint of each fold that is scored (default: checkpoint_best.pt)")
    parser.add_argument("--verbose", action="store_true", help="stream every line of fairseq's output")
    args = parser.parse_args(argv)
    try:
        args.folds = [int(f) for f in args.folds.split(",") if f.strip()]
    except ValueError:
        parser.error(f"--folds {args.folds!r}: give fold numbers separated by commas, e.g. 1,2,3,4,5")
    if not args.folds or len(set(args.folds)) != len(args.folds):
        parser.error(f"--folds {args.folds!r}: give each fold once")
    if args.valid_batch_size < 1:
        parser.error("--valid-batch-size must be at least 1")
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        if key in RUNNER_KEYS:
            parser.error(f"{override!r}: the runner sets {key} for every fold; use --manifests / --save-dir")
    return args, overrides


def fold_clips(fold_dir: str, subset: str = "valid") -> int:
    """Clips listed in ``fold_dir/{subset}.tsv`` (its first line is the root folder)."""
    with open(os.path.join(fold_dir, f"{subset}.tsv"), encoding="utf-8") as f:
        return sum(1 for line in f.read().splitlines()[1:] if line.strip())


def run_fold(fold: int, args, overrides: list[str]) -> dict:
    fold_dir = os.path.join(args.manifests, f"fold{fold}")
    save = os.path.join(args.save_dir, f"fold{fold}")
    os.makedirs(save, exist_ok=True)
    label = f"fold{fold}"
    train_cmd = hydra_train_command(args.config_dir, args.config_name, save, [f"task.data={fold_dir}", *overrides])
    train_log = os.path.join(save, "train.log")
    print(f"{label}: training ({train_log})", flush=True)
    start = time.time()
    run_logged(train_cmd, train_log, label, args.verbose)
    checkpoint = os.path.join(save, args.checkpoint)
    if not os.path.isfile(checkpoint):
        raise FoldError(
            f"{label}: training finished without {checkpoint} (checkpoint_best.pt needs validation during "
            f"training: keep dataset.disable_validation=false); log: {train_log}"
        )
    validate_cmd = validate_command(fold_dir, checkpoint, "valid", args.valid_batch_size, uses_cpu(overrides), TASK)
    validate_log = os.path.join(save, "validate.log")
    print(f"{label}: scoring {checkpoint} ({validate_log})", flush=True)
    output = run_logged(validate_cmd, validate_log, label, args.verbose)
    try:
        stats = parse_validate_output(output)
    except ValueError as error:
        raise FoldError(f"{label}: {error}; log: {validate_log}") from None
    if "accuracy" not in stats:
        raise FoldError(f"{label}: fairseq-validate printed no accuracy (is the recipe single-label?); "
                        f"log: {validate_log}")
    result = {
        "fold": fold, "accuracy": stats["accuracy"], "loss": stats.get("loss"), "clips": fold_clips(fold_dir),
        "checkpoint": checkpoint, "train_log": train_log, "validate_log": validate_log,
        "seconds": round(time.time() - start, 1),
    }
    print(f"{label}: accuracy {result['accuracy']:.3f} on {result['clips']} clips", flush=True)
    return result


def summary(results: list[dict], args, overrides: list[str], complete: bool) -> dict:
    accuracies = [r["accuracy"] for r in results]
    return {
        "config_dir": args.config_dir, "config_name": args.config_name, "manifests": args.manifests,
        "overrides": overrides, "folds": results, "complete": complete,
        "mean_accuracy": statistics.fmean(accuracies) if accuracies else None,
        "std_accuracy": statistics.pstdev(accuracies) if accuracies else None,
    }


def format_table(results: list[dict], mean: float, std: float) -> str:
    rows = ["fold  accuracy  clips", "----  --------  -----"]
    rows += [f"{r['fold']:>4}  {r['accuracy']:>8.3f}  {r['clips']:>5}" for r in results]
    rows += ["----  --------  -----", f"mean  {mean:>8.3f}  (std {std:.3f} over {len(results)} folds)"]
    return "\n".join(rows)


def write_json(path: str, data: dict) -> None:
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.replace(path + ".tmp", path)


def main(argv: list[str] | None = None) -> int:
    args, overrides = parse_args(list(sys.argv[1:] if argv is None else argv))
    args.manifests = os.path.abspath(args.manifests)
    args.save_dir = os.path.abspath(args.save_dir)
    args.config_dir = os.path.abspath(args.config_dir)
    problems = []
    if not os.path.isfile(os.path.join(args.config_dir, f"{args.config_name}.yaml")):
        problems.append(f"{args.config_dir}/{args.config_name}.yaml not found (--config-dir / --config-name)")
    for fold in args.folds:
        for name in ("train.tsv", "valid.tsv"):
            path = os.path.join(args.manifests, f"fold{fold}", name)
            if not os.path.isfile(path):
                problems.append(f"{path} not found (build the folds with supmam-manifest-esc50)")
    if problems:
        print("supmam-esc50-folds: " + "\n  ".join(problems), file=sys.stderr)
        return 2
    os.makedirs(args.save_dir, exist_ok=True)
    results_path = os.path.join(args.save_dir, "results.json")
    results = []
    try:
        for fold in args.folds:
            results.append(run_fold(fold, args, overrides))
            write_json(results_path, summary(results, args, overrides, complete=len(results) == len(args.folds)))
    except FoldError as error:
        print(f"supmam-esc50-folds: {error}", file=sys.stderr)
        return 1
    final = summary(results, args, overrides, complete=True)
    print("\nESC-50 cross-validation accuracy (%)\n" + format_table(results, final["mean_accuracy"], final["std_accuracy"]))
    print(f"results: {results_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
