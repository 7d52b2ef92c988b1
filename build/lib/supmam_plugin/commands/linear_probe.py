"""``supmam-linear-probe``: what a frozen encoder's clip embeddings know, beside its random twin
and the MFCC baseline, on any manifest folder with train / valid / test splits.

    supmam-linear-probe DATA [CHECKPOINT ...] [--random-init CHECKPOINT ...] [--no-random-twins]
        [--mfcc [--mfcc-window-ms 25] [--mfcc-hop-ms 10]] [--multi-label] [--labels label] [--train-split train] [--valid-split valid]
        [--test-split test] [--layer N] [--c-grid 0.01,0.1,1,10,100] [--seed 0] [--device cpu]
        [--batch-size 16] [--out results.json]

CHECKPOINT: a supmam pretraining or supmam_classifier fine-tuning checkpoint (.pt), or AudioMAE's
pretrained.pth / finetuned.pth. Every CHECKPOINT is reported beside its random twin (the same
architecture, randomly initialised from --seed as training from scratch does; no weight of the
file used) unless --no-random-twins; --random-init CHECKPOINT probes a twin alone. --mfcc adds the
baseline (20 MFCCs + deltas, mean and std per clip).

Each row: clip embeddings (mean of the final patch tokens, or of block --layer's outputs) ->
StandardScaler + LogisticRegression; C is chosen on the VALID split from --c-grid (ties: the
smallest C), the test split is only scored. Single-label: accuracy (%); --multi-label: one-vs-rest,
mAP (%) over the classes with a positive. Prints a table; writes --out (rewritten after each row):
per row the chosen C, the score of each split, valid score per C, clips per split, seconds.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from ..evaluation.logistic_probe import DEFAULT_C_GRID


class UsageError(ValueError):
    pass


def _c_grid(text: str) -> list[float]:
    try:
        grid = sorted({float(c) for c in text.split(",") if c.strip()})
    except ValueError:
        raise UsageError(f"--c-grid {text!r}: give positive numbers separated by commas, e.g. 0.01,0.1,1,10") from None
    if not grid or min(grid) <= 0:
        raise UsageError(f"--c-grid {text!r}: give positive numbers separated by commas, e.g. 0.01,0.1,1,10")
    return grid


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="supmam-linear-probe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="manifest folder: {split}.tsv, {split}.{labels}, dict.{labels}.txt")
    parser.add_argument("checkpoints", nargs="*", metavar="CHECKPOINT",
                        help="encoders to probe: supmam / supmam_classifier .pt, AudioMAE .pth")
    parser.add_argument("--random-init", action="append", default=[], metavar="CHECKPOINT",
                        help="probe this checkpoint's architecture randomly initialised (repeatable)")
    parser.add_argument("--no-random-twins", action="store_true",
                        help="do not add the random twin of every CHECKPOINT")
    parser.add_argument("--mfcc", action="store_true", help="add the MFCC + logistic regression baseline")
    parser.add_argument("--mfcc-window-ms", type=float, default=25.0,
                        help="MFCC window in ms (librosa's default framing: 128 at 16 kHz)")
    parser.add_argument("--mfcc-hop-ms", type=float, default=10.0, help="MFCC hop in ms (librosa's default: 32)")
    parser.add_argument("--multi-label", action="store_true", help="one-vs-rest probes scored by mAP (AudioSet)")
    parser.add_argument("--labels", default="label", help="label file extension: {split}.LABELS, dict.LABELS.txt")
    parser.add_argument("--train-split", default="train", help="split the probes are fitted on")
    parser.add_argument("--valid-split", default="valid", help="split C is chosen on")
    parser.add_argument("--test-split", default="test", help="held-out split, only scored")
    parser.add_argument("--layer", type=int, default=None,
                        help="probe the mean of block N's outputs (0-based, before the final norm) instead of "
                             "the final patch tokens")
    parser.add_argument("--c-grid", default=",".join(f"{c:g}" for c in DEFAULT_C_GRID),
                        help="inverse regularisation strengths tried on the valid split")
    parser.add_argument("--seed", type=int, default=0, help="torch seed of the random-init encoders")
    parser.add_argument("--device", default="cpu", help="device of the encoders: cpu, cuda, cuda:1 ...")
    parser.add_argument("--batch-size", type=int, default=16, help="encoder windows per forward pass")
    parser.add_argument("--out", default="results.json", help="JSON file of the results")
    return parser


def jobs(args) -> list[tuple[str, str, bool]]:
    """(kind, checkpoint, random_init) of each row, in table order; MFCC first."""
    out = [("mfcc", "", False)] if args.mfcc else []
    for checkpoint in args.checkpoints:
        out.append(("pretrained", checkpoint, False))
        if not args.no_random_twins:
            out.append(("random_init", checkpoint, True))
    out += [("random_init", checkpoint, True) for checkpoint in args.random_init]
    return out


def write_json(path: str, data: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.replace(path + ".tmp", path)


def run(args, log=print) -> dict:
    from ..evaluation.labelled_splits import read_labelled_splits
    from ..evaluation.linear_probe import format_table, mfcc_baseline, probe_checkpoint
    from ..evaluation.mfcc import MfccConfig

    todo = jobs(args)
    if not todo:
        raise UsageError("nothing to probe: give CHECKPOINT(s), --random-init CHECKPOINT or --mfcc")
    for _, checkpoint, _ in todo:
        if checkpoint and not os.path.isfile(checkpoint):
            raise UsageError(f"{checkpoint}: checkpoint not found")
    split_names = [args.train_split, args.valid_split, args.test_split]
    if len(set(split_names)) != 3:
        raise UsageError(f"train, valid and test splits must differ (got {split_names})")
    c_grid = _c_grid(args.c_grid)
    splits = read_labelled_splits(args.data, split_names, args.labels)
    for split in splits.values():  # single-label checks (one label a clip) before any model runs
        split.targets(args.multi_label)
    common = dict(multi_label=args.multi_label, c_grid=c_grid, train=args.train_split, valid=args.valid_split)
    summary = {
        "data": os.path.abspath(args.data), "splits": {s: len(splits[s]) for s in split_names},
        "classes": len(next(iter(splits.values())).classes), "multi_label": args.multi_label,
        "metric": "mAP" if args.multi_label else "accuracy", "c_grid": c_grid, "c_chosen_on": args.valid_split,
        "results": [],
    }
    for kind, checkpoint, random_init in todo:
        if kind == "mfcc":
            config = MfccConfig(window_ms=args.mfcc_window_ms, hop_ms=args.mfcc_hop_ms)
            row = mfcc_baseline(splits, config=config, log=log, **common)
        else:
            row = probe_checkpoint(checkpoint, splits, random_init=random_init, seed=args.seed, device=args.device,
                                   layer=args.layer, batch_size=args.batch_size, log=log, **common)
        log(f"[probe] {row['name']}: C {row['C']:g} (on {args.valid_split}), "
            + ", ".join(f"{s} {row[s]:.1f}" for s in split_names) + f" {row['metric']} ({row['seconds']:.0f} s)",
            flush=True)
        summary["results"].append(row)
        write_json(args.out, summary)
    log(format_table(summary["results"], split_names))
    return summary


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from ..core.audio import AudioFileError
    from ..core.manifest import ManifestError
    from ..core.checkpoints import CheckpointError

    start = time.time()
    try:
        run(args)
    except (UsageError, ManifestError, AudioFileError, CheckpointError, FileNotFoundError, ValueError) as e:
        print(f"supmam-linear-probe: error: {e}", file=sys.stderr)
        return 1
    print(f"results: {os.path.abspath(args.out)} ({time.time() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
