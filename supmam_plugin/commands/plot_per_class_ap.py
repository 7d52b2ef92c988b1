"""``supmam-plot-per-class-ap``: which classes transfer to new recordings? From a multi-label demo's
``results.json`` (``supmam-demo --also-score test_seen`` on ``make sound-events``' folder): the AP of
every class (mean over seeds, whisker = std) of each fine-tuned model on the held-out test split
(other recordings) and on ``--seen`` (new clips of the training recordings), sorted by the gap.

    supmam-plot-per-class-ap demo_output/results.json --seen test_seen --out per_class_ap.png
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from ..evaluation.results import method_label, teacher_label


def per_class_ap(result: dict, method: str, split: str) -> dict[str, np.ndarray]:
    """{class: APs over seeds} of ``method`` fine-tuned, on ``split`` (fairseq-validate's AP_per_class)."""
    rows = [row[f"{split}_AP_per_class"] for row in result["finetuned"][method].values()
            if f"{split}_AP_per_class" in row]
    if not rows:
        raise ValueError(f"results.json has no {split}_AP_per_class for {method} (a multi-label demo scored on "
                         f"{split}: supmam-demo --also-score {split})")
    classes = [c for c in rows[0] if all(c in r for r in rows)]
    return {c: np.array([r[c] for r in rows]) for c in classes}


def plot_per_class_ap(result: dict, out: str, seen: str = "test_seen", methods=None) -> str:
    """Draw one panel per method: per-class AP on ``test`` (held-out recordings) beside ``seen``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = methods or list(result["finetuned"])
    first_held_out = per_class_ap(result, methods[0], "test")
    first_seen = per_class_ap(result, methods[0], seen)
    both = [c for c in first_held_out if c in first_seen]  # a class without a positive clip has no AP
    order = sorted(both, key=lambda c: first_held_out[c].mean() - first_seen[c].mean())
    fig, axes = plt.subplots(len(methods), 1, figsize=(max(9.0, 0.6 * len(order)), 3.2 * len(methods)),
                             sharex=True, squeeze=False)
    x = np.arange(len(order))
    for ax, method in zip(axes[:, 0], methods):
        for offset, split, colour, label in ((-0.2, seen, "tab:blue", f"{seen}: new clips, training recordings"),
                                             (0.2, "test", "tab:orange", "test: other recordings")):
            aps = per_class_ap(result, method, split)
            means = [aps[c].mean() if c in aps else np.nan for c in order]
            stds = [aps[c].std(ddof=1) if c in aps and len(aps[c]) > 1 else 0.0 for c in order]
            ax.bar(x + offset, means, width=0.4, yerr=stds, color=colour, alpha=0.8, capsize=2, label=label)
        seeds = len(result["finetuned"][method])
        ax.set_title(f"{method_label(method, teacher_label(result))} (fine-tuned), mean over {seeds} seed(s)",
                     fontsize=10)
        ax.set_ylabel("AP (%)")
        ax.set_ylim(0, 105)
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].legend(fontsize=8, loc="upper right")
    axes[-1, 0].set_xticks(x, order, rotation=35, ha="right", fontsize=9)
    fig.suptitle("Per-class AP: which classes transfer to recordings never heard in training "
                 "(left: largest drop)", fontsize=11)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", help="a multi-label demo's results.json")
    parser.add_argument("--seen", default="test_seen", help="the split of the training recordings to compare with")
    parser.add_argument("--methods", nargs="*", default=None, help="fine-tuned methods to draw (default: all)")
    parser.add_argument("--out", default="per_class_ap.png", help="PNG to write")
    args = parser.parse_args(argv)
    try:
        with open(args.results, encoding="utf-8") as f:
            result = json.load(f)
        print(plot_per_class_ap(result, args.out, args.seen, args.methods))
    except (OSError, ValueError, KeyError) as e:
        print(f"supmam-plot-per-class-ap: {args.results}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
