"""The informed-teacher study of RESULTS.md: one table and one picture from the
``results.json`` of the demo runs it combines (``supmam-demo --out DIR``, 3 seeds each).

    python scripts/teacher_study.py --study exp/study --informed-mam-clap exp/informed_mam_clap \\
        --informed-supmam-clap exp/informed_supmam_clap --random-mam-clap exp/random_mam_clap \\
        --out docs/teacher_transfer.png

Prints, per row, the held-out test accuracy of the fine-tuned model and of the linear probe (mean
+- sample std over seeds, and per seed).
"""
from __future__ import annotations

import argparse
import json
import os

from supmam_plugin.evaluation.results import mean_std
from supmam_plugin.commands.plot_results import plot_results

# (row key, label, which study's results.json, method in it)
ROWS = [
    ("audiomae", "AudioMAE\n(spectrogram)", "study", "audiomae"),
    ("supmam_clap_random", "SupMAM-CLAP\n(random\nteacher)", "study", "supmam_clap"),
    ("mam_clap_random", "MAM-CLAP\n(random\nteacher)", "random_mam_clap", "mam_clap"),
    ("mam_clap_informed", "MAM-CLAP\n(classifier\nteacher)", "informed_mam_clap", "mam_clap"),
    ("supmam_clap_informed", "SupMAM-CLAP\n(classifier\nteacher)", "informed_supmam_clap", "supmam_clap"),
    ("scratch", "scratch /\nrandom init", "informed_mam_clap", "scratch"),
]


def combine(folders: dict) -> dict:
    results = {name: json.load(open(os.path.join(folder, "results.json"))) for name, folder in folders.items() if folder}
    first = next(iter(results.values()))
    combined = {"methods": [], "labels": {}, "finetuned": {}, "linear_probe": {}, "seeds": first["seeds"],
                "chance": first["chance"], "mfcc_baseline": first.get("mfcc_baseline", {}),
                "title": "Does the teacher's knowledge transfer?"}
    for key, label, study, method in ROWS:
        if study not in results or method not in results[study]["finetuned"]:
            continue
        combined["methods"].append(key)
        combined["labels"][key] = label
        combined["finetuned"][key] = results[study]["finetuned"][method]
        if method in results[study].get("linear_probe", {}):
            combined["linear_probe"][key] = results[study]["linear_probe"][method]
    return combined


def table(combined: dict) -> str:
    lines = ["| row | fine-tuned test | per seed | linear probe test | per seed |", "|---|---|---|---|---|"]
    for key in combined["methods"]:
        cells = []
        for part in ("finetuned", "linear_probe"):
            per_seed = combined[part].get(key, {})
            values = [per_seed[s]["test"] for s in sorted(per_seed)]
            stats = mean_std(values) if values else None
            cells += [f"{stats['mean']:.1f} +- {stats['std']:.1f}" if stats else "", " / ".join(f"{v:.1f}" for v in values)]
        lines.append(f"| {combined['labels'][key].replace(chr(10), ' ')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("study", "informed-mam-clap", "informed-supmam-clap", "random-mam-clap"):
        parser.add_argument(f"--{name}", required=name != "random-mam-clap")
    parser.add_argument("--out", default="docs/teacher_transfer.png")
    args = parser.parse_args()
    combined = combine({"study": args.study, "informed_mam_clap": args.informed_mam_clap,
                        "informed_supmam_clap": args.informed_supmam_clap, "random_mam_clap": args.random_mam_clap})
    print(table(combined))
    print(f"MFCC baseline {combined['mfcc_baseline'].get('test')}; wrote {plot_results(combined, args.out)}")


if __name__ == "__main__":
    main()
