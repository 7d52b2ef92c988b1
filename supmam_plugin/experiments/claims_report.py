"""The claims study's tables and pictures, read from its ledger: Table 1 and the ablations with Welch
verdicts, the teacher-strength curve, Table 1 in the labelled-pool setting, the fine-tuning length."""
from __future__ import annotations

import json
import os

from ..evaluation.results import mean_std
from .claims import (
    ABLATION_TASKS, ARMS, LABELLED_POOL_TEACHER, LONGER_FINETUNE_ARMS, SIZES, TASKS, TEACHERS,
)
from .folders import chance_score, is_multi_label


# The paper's claims as (better arm, worse arm, where the paper says so), each tested on each task
# the two arms ran on: the fine-tuned held-out score (the paper's Table 1 measure) and the probe.
CLAIMS = (
    ("mam_clap", "audiomae", "Table 1"), ("supmam", "audiomae", "Table 1"),
    ("supmam_clap", "audiomae", "Table 1"), ("supmam_clap", "mam_clap", "Table 1"),
    ("supmam_clap", "supmam", "Table 1"), ("supmam_clap", "audiomae_teacher_compute", "equal compute"),
    ("audiomae", "scratch", "pretraining pays"),
    ("mam_clap", "mam_clap_mask0.4", "Table 2"), ("mam_clap", "mam_clap_mask0.8", "Table 2"),
    ("mam_clap", "mam_clap_masked_only", "eq. 1"),
    ("supmam", "supmam_rec", "Table 5"), ("supmam", "supmam_cls", "Table 5"),
    ("supmam_clap", "supmam_clap_lambda0.01", "Table 6"),
    ("supmam_clap_clone4", "supmam_clap", "clone_batch at equal compute"),
)


def welch(better: list, worse: list) -> dict:
    """Mean difference, Welch's t and its two-sided p (scipy) of two lists of per-seed scores, and
    the verdict: "holds" (better is higher, p < 0.05), "does not hold here" (it is lower, p < 0.05),
    "within the spread" (p >= 0.05) or "pending" (fewer than 2 seeds on a side)."""
    from scipy.stats import ttest_ind

    difference = float(sum(better) / len(better) - sum(worse) / len(worse)) if better and worse else float("nan")
    if min(len(better), len(worse)) < 2:
        return {"difference": difference, "t": float("nan"), "p": float("nan"), "verdict": "pending"}
    test = ttest_ind(better, worse, equal_var=False)
    t, p = float(test.statistic), float(test.pvalue)
    verdict = "within the spread" if not p < 0.05 else ("holds" if t > 0 else "does not hold here")
    return {"difference": difference, "t": t, "p": p, "verdict": verdict}


def verdicts(rows: dict) -> list[dict]:
    """One verdict per claim, task and measure ("finetuned" test, "probe" test) of the ledger's rows."""
    found = []
    for task in TASKS:
        def scores(arm, measure):
            mine = [v for k, v in rows.items() if k.startswith(f"{task}/{arm}/s")]
            return [v[measure]["test"] for v in mine if measure in v]

        for better, worse, where in CLAIMS:
            groups = {ARMS.get(better, ("", [], "table"))[2], ARMS.get(worse, ("", [], "table"))[2]}
            if groups != {"table"} and task not in ABLATION_TASKS:
                continue
            for measure in ("finetuned", "probe"):
                a, b = scores(better, measure), scores(worse, measure)
                if a or b:
                    found.append({"task": task, "claim": f"{better} > {worse}", "paper": where, "measure": measure,
                                  "n": (len(a), len(b)), **welch(a, b)})
    return found


def report(ledger_path: str) -> str:
    """Markdown tables (mean +- std over seeds, the seeds, n) of the ledger's rows."""
    with open(ledger_path, encoding="utf-8") as f:
        rows = json.load(f)["rows"]
    lines = []
    for task in TASKS:
        mine = {k: v for k, v in rows.items() if k.startswith(task + "/")}
        if not mine:
            continue
        metric = next(iter(mine.values())).get("metric", "")
        lines += [f"\n{task} (held-out test {metric}; mean +- std over seeds, then the seeds)", "",
                  "| row | fine-tuned | linear probe | zero-shot | n |", "|---|---|---|---|---|"]
        arms = dict.fromkeys(k.split("/")[1] for k in mine)
        for arm in arms:
            seeds = {k.split("/")[2]: v for k, v in mine.items() if k.split("/")[1] == arm}

            def cell(get):
                values = [get(v) for v in seeds.values()]
                values = [x for x in values if x is not None]
                if not values:
                    return ""
                stats = mean_std(values)
                return f"{stats['mean']:.1f} +- {stats['std']:.1f} ({', '.join(f'{x:.1f}' for x in values)})"

            lines.append(f"| {arm} | {cell(lambda v: v.get('finetuned', {}).get('test'))} | "
                         f"{cell(lambda v: (v.get('probe') or v.get('baseline') or {}).get('test'))} | "
                         f"{cell(lambda v: v.get('zero_shot'))} | {len(seeds)} |")
    lines += ["", "claims (Welch t over seeds; verdict at p < 0.05, two-sided)", "",
              "| task | claim | paper | measure | difference | Welch t | p | n | verdict |",
              "|---|---|---|---|---|---|---|---|---|"]
    for v in verdicts(rows):
        lines.append(f"| {v['task']} | {v['claim']} | {v['paper']} | {v['measure']} | {v['difference']:+.1f} | "
                     f"{v['t']:.2f} | {v['p']:.3f} | {v['n'][0]} vs {v['n'][1]} | {v['verdict']} |")
    return "\n".join(lines)


def cell(values) -> str:
    """'mean +- std (each seed)' of a row's per-seed scores (None left out); '' for none."""
    values = [v for v in values if v is not None]
    if not values:
        return ""
    stats = mean_std(values)
    return f"{stats['mean']:.1f} +- {stats['std']:.1f} ({', '.join(f'{x:.1f}' for x in values)})"


def strength_rows(rows: dict, task: str = "sound_events") -> list[dict]:
    """Per teacher of TEACHERS with rows in the ledger: its scores and its MAM-CLAP student's, per seed."""
    def per_seed(arm):
        return {k.split("/")[2]: v for k, v in rows.items() if k.startswith(f"{task}/{arm}/s")}

    found = []
    for name, (kind, what) in TEACHERS.items():
        teacher, student = per_seed(f"teacher@{name}"), per_seed(f"mam_clap@{name}")
        if not teacher and not student:
            continue
        found.append({
            "name": name, "kind": kind, "what": what,
            "teacher_probe": [(v.get("probe") or {}).get("test", v.get("probe_test")) for v in teacher.values()],
            "zero_shot": [v["zero_shot"] for v in teacher.values() if "zero_shot" in v],
            "teacher_finetuned": [v["finetuned"]["test"] for v in teacher.values() if "finetuned" in v],
            "student_finetuned": [v["finetuned"]["test"] for v in student.values()],
            "student_probe": [v["probe"]["test"] for v in student.values()],
        })
    return found


def strength_report(ledger_path: str, task: str = "sound_events") -> str:
    """The teacher-strength table: each teacher's own scores and its MAM-CLAP student's, with the
    student's Welch verdict against AudioMAE's fine-tuned score."""
    with open(ledger_path, encoding="utf-8") as f:
        rows = json.load(f)["rows"]

    audiomae = [v["finetuned"]["test"] for k, v in rows.items() if k.startswith(f"{task}/reference@audiomae/s")]
    lines = [f"\n{task}: the teacher-strength curve (held-out test mAP; mean +- std over seeds, then the seeds)", "",
             "| teacher | teacher probe | teacher zero-shot | teacher fine-tuned | MAM-CLAP student fine-tuned | "
             "student probe | student vs AudioMAE (fine-tuned) |", "|---|---|---|---|---|---|---|"]
    for row in strength_rows(rows, task):
        verdict = welch(row["student_finetuned"], audiomae) if row["student_finetuned"] else None
        versus = "" if not verdict else (
            f"{verdict['difference']:+.1f}: pending (n = {len(row['student_finetuned'])} vs {len(audiomae)})"
            if verdict["verdict"] == "pending" else
            f"{verdict['difference']:+.1f}, t = {verdict['t']:.2f}, p = {verdict['p']:.3f}: {verdict['verdict']}")
        lines.append(f"| {row['name']}: {row['what']} | {cell(row['teacher_probe'])} | {cell(row['zero_shot'])} | "
                     f"{cell(row['teacher_finetuned'])} | {cell(row['student_finetuned'])} | {cell(row['student_probe'])} | "
                     f"{versus} |")
    return "\n".join(lines)


# The labelled-pool Table 1: (row, ledger arm, measure of the "fine-tuned" column)
LABELLED_TABLE_ROWS = (
    ("from scratch on the training clips", "teacher@classifier_train"),
    ("from scratch on every labelled clip (pool + train)", "teacher@classifier_pool"),
    ("AudioMAE, then supervised on every labelled clip (the teacher's start)", "teacher@classifier_pool_mae"),
    ("the teacher: LAION-CLAP's recipe (zero-shot)", f"teacher@{LABELLED_POOL_TEACHER}"),
    ("AudioMAE", "reference@audiomae"),
    ("MAM-CLAP", f"mam_clap@{LABELLED_POOL_TEACHER}"),
    ("SupMAM (cls branch on every label)", "labelled_pool@supmam"),
    ("SupMAM-CLAP (cls branch on every label)", "labelled_pool@supmam_clap"),
)


def labelled_table_report(ledger_path: str, task: str = "sound_events") -> str:
    """Table 1 in the labelled-pool setting, with each row's Welch verdict against AudioMAE and
    against SupMAM-CLAP (fine-tuned test score)."""
    with open(ledger_path, encoding="utf-8") as f:
        rows = json.load(f)["rows"]

    def scores(arm, measure):
        found = [v for k, v in rows.items() if k.startswith(f"{task}/{arm}/s")]
        if measure == "finetuned":
            return [v["zero_shot"] if "zero_shot" in v else v["finetuned"]["test"] for v in found
                    if "zero_shot" in v or "finetuned" in v]
        return [v["probe"]["test"] for v in found if "probe" in v]

    def versus(a, b):
        if not a or not b:
            return ""
        v = welch(a, b)
        return f"{v['difference']:+.1f} ({v['verdict']}{'' if v['verdict'] == 'pending' else f', p = {v[chr(112)]:.3f}'})"

    audiomae, supmam_clap = scores("reference@audiomae", "finetuned"), scores("labelled_pool@supmam_clap", "finetuned")
    mfcc = [v["baseline"]["test"] for k, v in rows.items() if k.startswith(f"{task}/mfcc/")]
    lines = [f"\n{task}: Table 1 in the labelled-pool setting (held-out test mAP; mean +- std, then the seeds)", "",
             "| row | fine-tuned (teacher: zero-shot) | linear probe | vs AudioMAE | SupMAM-CLAP vs it |",
             "|---|---|---|---|---|"]
    for label, arm in LABELLED_TABLE_ROWS:
        main_scores = scores(arm, "finetuned")
        lines.append(f"| {label} | {cell(main_scores)} | {cell(scores(arm, 'probe'))} | "
                     f"{'' if arm in ('reference@audiomae', f'teacher@{LABELLED_POOL_TEACHER}') else versus(main_scores, audiomae)} | "
                     f"{'' if arm in ('labelled_pool@supmam_clap', f'teacher@{LABELLED_POOL_TEACHER}') else versus(supmam_clap, main_scores)} |")
    if mfcc:
        lines.append(f"| MFCC + logistic regression | | {mfcc[0]:.1f} | | |")
    return "\n".join(lines)


def finetune_length_report(ledger_path: str, task: str = "sound_events") -> str:
    """Each LONGER_FINETUNE_ARMS row at the study's fine-tuning length and at twice it (best on valid
    both times): test and training-clip mAP, and the update valid chose."""
    with open(ledger_path, encoding="utf-8") as f:
        rows = json.load(f)["rows"]

    lines = [f"\n{task}: fine-tuning length chosen on valid (held-out test / training-clip mAP)", "",
             f"| pretrained by | test, {SIZES[task]['finetune_updates']} updates | train | test, "
             f"{2 * SIZES[task]['finetune_updates']} updates | train | longer - study (test) |", "|---|---|---|---|---|---|"]
    for arm in LONGER_FINETUNE_ARMS:
        short = [v["finetuned"] for k, v in rows.items() if k.startswith(f"{task}/{arm}/s")]
        longer = [v["finetuned"] for k, v in rows.items() if k.startswith(f"{task}/longer_finetune@{arm}/s")]
        if not longer:
            continue
        verdict = welch([r["test"] for r in longer], [r["test"] for r in short])
        lines.append(f"| {arm} | {cell([r['test'] for r in short])} | {cell([r['train'] for r in short])} | "
                     f"{cell([r['test'] for r in longer])} | {cell([r['train'] for r in longer])} | "
                     f"{verdict['difference']:+.1f} ({verdict['verdict']}) |")
    return "\n".join(lines)


def draw_strength(ledger_path: str, out_png: str, task: str = "sound_events") -> str:
    """Student fine-tuned mAP against its teacher's probe mAP (mean +- std over seeds, a dot per seed),
    AudioMAE and SupMAM as mean +- std bands, the MFCC baseline, and the line where a student equals
    its teacher's probe."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    with open(ledger_path, encoding="utf-8") as f:
        rows = json.load(f)["rows"]
    figure, axis = plt.subplots(figsize=(8.5, 6))
    for index, (arm, label) in enumerate((("audiomae", "AudioMAE"), ("supmam", "SupMAM"))):
        scores = [v["finetuned"]["test"] for k, v in rows.items() if k.startswith(f"{task}/reference@{arm}/s")]
        if scores:
            stats = mean_std(scores)
            axis.axhspan(stats["mean"] - stats["std"], stats["mean"] + stats["std"], color=f"C{index + 7}", alpha=0.25)
            axis.axhline(stats["mean"], color=f"C{index + 7}", lw=1.2,
                         label=f"{label} fine-tuned {stats['mean']:.1f} +- {stats['std']:.1f} (n={stats['n']})")
    scratch = [v["finetuned"]["test"] for k, v in rows.items() if k.startswith(f"{task}/teacher@classifier_train/s")]
    if scratch:
        axis.axhline(np.mean(scratch), color="C3", ls=":", lw=1,
                     label=f"from scratch on the training clips {np.mean(scratch):.1f} (n={len(scratch)})")
    mfcc = [v["baseline"]["test"] for k, v in rows.items() if k.startswith(f"{task}/mfcc/")]
    if mfcc:
        axis.axhline(mfcc[0], color="k", ls="--", lw=1, label=f"MFCC baseline {mfcc[0]:.1f} (also as a teacher's probe: |)")
        axis.axvline(mfcc[0], color="k", ls="--", lw=1)
    points, named = [], []
    for index, row in enumerate(strength_rows(rows, task)):
        pairs = [(t, s) for t, s in zip(row["teacher_probe"], row["student_finetuned"]) if t is not None]
        if not pairs:
            continue
        teacher, student = np.array(pairs).T
        colour = f"C{index}"
        axis.plot(teacher, student, "o", color=colour, alpha=0.45, ms=5)
        axis.errorbar(teacher.mean(), student.mean(), xerr=teacher.std(ddof=1) if len(teacher) > 1 else 0,
                      yerr=student.std(ddof=1) if len(student) > 1 else 0, fmt="s", color=colour, ms=8, capsize=3,
                      label=f"{row['name']} ({len(pairs)} seed{'s' * (len(pairs) > 1)})")
        near = any(abs(teacher.mean() - x) < 2.5 and abs(student.mean() - y) < 1.5 for x, y in named)
        axis.annotate(row["name"], (teacher.mean(), student.mean()), textcoords="offset points",
                      xytext=(6, 7) if near else (6, -10), fontsize=7, color=colour)  # a neighbour's name: above
        named.append((teacher.mean(), student.mean()))
        points += list(teacher) + list(student)
    if points:
        low, high = min(points + mfcc) - 3, max(points + mfcc) + 3
        axis.plot([low, high], [low, high], color="grey", lw=0.8, ls=":", label="student = its teacher's probe")
        axis.set_xlim(low, high + 7)  # room for the names
    axis.set_xlabel(f"teacher: linear probe, held-out test mAP")
    axis.set_ylabel(f"MAM-CLAP student: fine-tuned, held-out test mAP")
    axis.set_title("Where does the CLAP target start to pay? (sound events; a dot per seed, squares: mean +- std)",
                   fontsize=10)
    axis.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    figure.savefig(out_png, dpi=110)
    plt.close(figure)
    return out_png


TABLE_ROWS = ("scratch", "audiomae", "audiomae_teacher_compute", "mam_clap", "supmam", "supmam_clap", "teacher")
ROW_LABELS = {"scratch": "from\nscratch", "audiomae": "AudioMAE", "audiomae_teacher_compute": "AudioMAE\n+teacher's\ncompute",
              "mam_clap": "MAM-CLAP", "supmam": "SupMAM", "supmam_clap": "SupMAM-\nCLAP", "teacher": "the CLAP\nteacher"}


def draw(ledger_path: str, out_png: str) -> str:
    """Each table row's held-out score per seed on both tasks: fine-tuned (filled dots; the teacher:
    zero-shot) and linear probe (hollow), the mean as a bar; the MFCC baseline, the scratch model's
    mean and chance as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    with open(ledger_path, encoding="utf-8") as f:
        rows = json.load(f)["rows"]
    figure, axes = plt.subplots(1, len(TASKS), figsize=(7 * len(TASKS), 5.2))
    for axis, task in zip(np.atleast_1d(axes), TASKS):
        mine = {k: v for k, v in rows.items() if k.startswith(task + "/")}
        metric = next(iter(mine.values()), {}).get("metric", "score")
        for x, arm in enumerate(TABLE_ROWS):
            seeds = [v for k, v in mine.items() if k.split("/")[1] == arm]
            main_scores = [v["zero_shot"] if arm == "teacher" else v["finetuned"]["test"] for v in seeds]
            probes = [v["probe"]["test"] for v in seeds]
            if main_scores:
                axis.bar(x - 0.18, np.mean(main_scores), width=0.34, color="C0", alpha=0.35)
                axis.plot([x - 0.18] * len(main_scores), main_scores, "o", color="C0")
            if probes:
                axis.bar(x + 0.18, np.mean(probes), width=0.34, color="C1", alpha=0.35)
                axis.plot([x + 0.18] * len(probes), probes, "o", mfc="none", color="C1")
        mfcc = [v["baseline"]["test"] for k, v in mine.items() if k.split("/")[1] == "mfcc"]
        if mfcc:
            axis.axhline(mfcc[0], color="k", ls="--", lw=1, label=f"MFCC baseline {mfcc[0]:.1f}")
        scratch = [v["finetuned"]["test"] for k, v in mine.items() if k.split("/")[1] == "scratch"]
        if scratch:
            axis.axhline(np.mean(scratch), color="C3", ls=":", lw=1, label=f"from scratch (mean) {np.mean(scratch):.1f}")
        data = os.path.abspath(TASKS[task][0])
        if os.path.isdir(data):
            chance = chance_score(data, is_multi_label(data))
            axis.axhline(chance, color="grey", ls="-.", lw=1, label=f"chance {chance:.1f}")
        axis.plot([], [], "o", color="C0", label="fine-tuned (teacher: zero-shot), a dot per seed")
        axis.plot([], [], "o", mfc="none", color="C1", label="linear probe, a dot per seed")
        axis.set_xticks(range(len(TABLE_ROWS)), [ROW_LABELS[a] for a in TABLE_ROWS], fontsize=8)
        axis.set_ylim(0, axis.get_ylim()[1] * 1.3)  # room for the legend above the bars
        axis.set_ylabel(f"held-out test {metric}")
        axis.set_title(f"{task.replace('_', ' ')}: bars = mean over seeds")
        axis.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    figure.savefig(out_png, dpi=100)
    plt.close(figure)
    return out_png
