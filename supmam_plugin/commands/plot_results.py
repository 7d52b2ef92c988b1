"""``supmam-plot-results``: does pretraining pay? One picture from a demo's ``results.json``:
held-out test accuracy (or mAP, multi-label) of every method (pretrained encoders and from scratch), fine-tuned (left)
and as a linear probe of the frozen encoder (right), one dot per seed, the mean +- std as a bar
with whiskers, beside the MFCC baseline, chance and (when the demo trained them) the classifier from
scratch on every labelled clip and the teacher's linear probe as lines.

    supmam-plot-results demo_output/results.json --out held_out_accuracy.png
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from ..evaluation.results import mean_std, method_label, teacher_label


def tick_label(name: str, teacher: str) -> str:
    """method_label on two lines (the bars are narrow)."""
    if name == "scratch":
        return "scratch /\nrandom init"
    return method_label(name, teacher).replace(" (", "\n(")


def bars(result: dict) -> list[tuple[float, str, str, str]]:
    """The lines a demo trained beside its students (mean over seeds): the classifier from scratch on
    every labelled pretraining clip, and the teacher's own linear probe: [(score, colour, style, words)]."""
    lines = []
    if result.get("all_labels"):
        score = mean_std(r["test"] for r in result["all_labels"].values())["mean"]
        lines.append((score, "tab:purple", "-.", "from scratch on every labelled clip"))
    teacher = result.get("clap_teacher") or {}
    if teacher and all("probe_test" in r for r in teacher.values()):
        score = mean_std(r["probe_test"] for r in teacher.values())["mean"]
        lines.append((score, "tab:green", (0, (5, 2, 1, 2)), "the teacher (linear probe)"))
    return lines


def plot_results(result: dict, out: str) -> str:
    """Draw ``result`` (a demo's results.json) into ``out`` (PNG); returns ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = result.get("metric", "accuracy")
    unit = "%" if metric == "accuracy" else ""
    names = [*result["methods"], *([] if "scratch" in result["methods"] else ["scratch"])]
    panels = (("finetuned", "fine-tuned (all layers)"), ("linear_probe", "linear probe (frozen encoder)"))
    fig, axes = plt.subplots(1, 2, figsize=(max(11.0, 2.1 * len(names)), 4.8), sharey=True)
    colours = plt.get_cmap("tab10")
    for ax, (key, title) in zip(axes, panels):
        rows = result.get(key, {})
        for i, name in enumerate(names):
            accuracies = [r["test"] for r in rows.get(name, {}).values()]
            if not accuracies:
                continue
            stats = mean_std(accuracies)
            mean, std = stats["mean"], stats["std"]
            ax.bar(i, mean, width=0.6, color=colours(i), alpha=0.35)
            ax.errorbar(i, mean, yerr=std, color="black", capsize=6, linewidth=1.2)
            jitter = np.linspace(-0.12, 0.12, len(accuracies)) if len(accuracies) > 1 else [0.0]
            ax.scatter(i + np.asarray(jitter), accuracies, color=colours(i), edgecolor="black", zorder=3, s=28)
            ax.text(i, max(mean + std, max(accuracies)) + 2.0, f"{mean:.1f}" + (f"\n+-{std:.1f}" if len(accuracies) > 1 else ""),
                    ha="center", va="bottom", fontsize=8)
        baseline = result.get("mfcc_baseline", {}).get("test")
        if baseline is not None:
            ax.axhline(baseline, color="tab:red", linestyle="--", linewidth=1.2,
                       label=f"MFCC + logistic regression {baseline:.1f}{unit}")
        for score, colour, style, words in bars(result):
            ax.axhline(score, color=colour, linestyle=style, linewidth=1.2, label=f"{words} {score:.1f}{unit}")
        ax.axhline(result["chance"], color="grey", linestyle=":", linewidth=1.0, label=f"chance {result['chance']:.1f}{unit}")
        labels = result.get("labels", {})  # a combined study's own names for its rows
        ax.set_xticks(range(len(names)), [labels[n] if n in labels else tick_label(n, teacher_label(result))
                                          for n in names], fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylim(0, 105)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel(f"held-out test {metric}" + (" (%)" if metric == "accuracy" else ""))
    seeds = len(result.get("seeds", [])) or 1
    clips = result.get("mfcc_baseline", {}).get("clips", {}).get("test")
    fig.suptitle(f"{result.get('title', 'Does pretraining pay?')} {seeds} seed{'s' if seeds > 1 else ''} (dots), mean +- std (bars)"
                 + (f"; {clips} held-out test clips" if clips else ""), fontsize=11)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.035 + 0.04 * ((len(handles) + 1) // 2), 1, 0.95))  # room for the legend's rows
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", help="a demo's results.json")
    parser.add_argument("--out", default="held_out_accuracy.png", help="PNG to write")
    args = parser.parse_args(argv)
    try:
        with open(args.results, encoding="utf-8") as f:
            result = json.load(f)
    except (OSError, ValueError) as e:
        print(f"error: cannot read {args.results}: {e}", file=sys.stderr)
        return 2
    print(f"wrote {plot_results(result, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
