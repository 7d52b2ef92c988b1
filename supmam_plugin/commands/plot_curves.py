"""``supmam-plot-curves``: loss and accuracy curves from fairseq training logs.

    supmam-plot-curves LOG_OR_DIR [LOG_OR_DIR ...] --out FILE.png

Each argument is a log file, or a folder: its ``hydra_train.log`` files (searched recursively;
fairseq-hydra-train writes one per run), else any ``*.log`` in it. Reads both of fairseq's
``common.log_format`` styles, as fairseq-hydra-train and fairseq-train write them:

    [2024-01-01 10:00:00,000][train_inner][INFO] - {"epoch": 1, "loss": "1.23", "num_updates": "25"}
    [2024-01-01 10:00:00,000][train_inner][INFO] - epoch 002:      1 / 1 loss=4.1495, ..., num_updates=2
    [2024-01-01 10:00:00,000][valid][INFO] - epoch 002 | valid on 'valid' subset | loss 1.09 | num_updates 4
    [2024-01-01 10:00:00,000][valid][INFO] - {"epoch": 1, "valid_loss": "0.69", "valid_num_updates": "2"}
    2024-01-01 10:00:00 | INFO | valid | epoch 001 | valid on 'valid' subset | loss 1.09 | num_updates 2

Validation records are those of any tag other than ``train_inner`` / ``train`` (``valid``, or the
subset's name, e.g. ``eval``). Each log is a run, grouped as pretraining (it logs target_loss,
masked_loss, visible_loss, cls_loss or cls_accuracy) or fine-tuning (the others). One PNG: a row of
panels per run group, a panel per metric family (those the group's runs log) against num_updates:

    pretraining:  loss | target_loss, masked_loss, visible_loss | cls_loss | cls_accuracy
    fine-tuning:  loss | accuracy | mAP      (train and validation in the same panel)

plus accuracy / mAP panels for pretraining runs that validate with them, and a panel for any
other ``*_loss``. Colour = run (one legend per row, right of the panels);
line style / markers = metric and split (a small legend under each panel that has several).
Legends sit outside the plotting areas, so they never cover a line.
"""
from __future__ import annotations

import argparse
import sys

from ..pictures.training_curves import UsageError, plot_curves


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="supmam-plot-curves", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("logs", nargs="+", metavar="LOG_OR_DIR", help="fairseq log files or run folders")
    parser.add_argument("--out", required=True, help="PNG to write")
    args = parser.parse_args(argv)
    try:
        path = plot_curves(args.logs, args.out)
    except UsageError as e:
        print(f"supmam-plot-curves: error: {e}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
