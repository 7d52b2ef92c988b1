"""The demo's result line: held-out scores of every method (mean +- std over seeds), the baselines,
the probes, the teacher trained here, chance and the setting, read from results.json's dict."""
from __future__ import annotations

from ..evaluation.results import mean_std, method_label, teacher_label

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
