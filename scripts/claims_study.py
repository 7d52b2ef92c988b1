"""The paper's claims in miniature (issue 25): its Table 1 and ablations (Tables 2, 5, 6 and eq. 1's
visible + masked target) on this machine's two tasks, with a CLAP teacher trained here on the
pool's captions only, 3 seeds, every row at the demo's budget.

    .venv/bin/python scripts/claims_study.py --out claims_study                # everything, 2 runs at a time
    .venv/bin/python scripts/claims_study.py --tasks sound_events --arms table # only the table's rows
    .venv/bin/python scripts/claims_study.py --report                          # the tables of what is done
    .venv/bin/python scripts/claims_study.py --arms teacher_strength labelled_table --tasks sound_events
                                        # issue 38: the teacher-strength curve, Table 1 on the labelled pool

A UNIT is one row of one task and seed: ``teacher`` (the CLAP teacher trained on the pool's captions:
zero-shot and linear probe on test), ``scratch`` (fine-tuned from a random init, and the random-init
probe), ``mfcc`` (the baseline, once per task), or a pretraining ARM (``ARMS``: a recipe and the
overrides that make it an ablation) pretrained, fine-tuned and probed exactly as supmam-demo does
(the same runs of ``supmam_plugin.experiments``; the study itself is ``experiments/claims.py``, its
tables ``experiments/claims_report.py``). Each finished unit is written at once to the LEDGER
(``results/claims_study.json``, committed), keyed by task/arm/seed with the sizes it ran at: a study
stopped anywhere, in this session or the next, continues with the units missing (runs whose fairseq
logs under OUT hold a finished run are reused too). ``--workers`` units run at a time, each fairseq
process on one thread (the 2-core machine: two independent 1-thread runs).

Nothing is chosen on test: fine-tuning keeps its best checkpoint by valid, probes choose C on valid,
the teacher keeps its last checkpoint (it never sees a labelled split).
"""
from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")  # every fairseq process (and this one) on one thread
os.environ.setdefault("MKL_NUM_THREADS", "1")

from supmam_plugin.experiments import claims, claims_report  # noqa: E402
from supmam_plugin.experiments.claims import CLASSIFIER_POOL_UPDATES, GROUPS, SIZES, TASKS  # noqa: E402

LEDGER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "results", "claims_study.json")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="claims_study", help="folder of the runs (checkpoints, logs)")
    parser.add_argument("--ledger", default=os.path.normpath(LEDGER), help="the finished units (JSON, committed)")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--arms", nargs="+", default=["table", "ablation"], choices=list(GROUPS),
                        help="groups of rows; clone_batch (issue 26) and teacher_strength (issue 38) run only when named")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--only", nargs="+", default=None, metavar="ARM",
                        help="only these rows (mfcc, teacher, scratch or an arm of ARMS), e.g. to order a short session")
    parser.add_argument("--workers", type=int, default=2, help="units at a time (one thread each)")
    parser.add_argument("--report", action="store_true", help="print the ledger's tables and stop")
    parser.add_argument("--picture", default=None, metavar="PNG", help="draw the table's scores per seed and stop")
    parser.add_argument("--strength-picture", default=None, metavar="PNG",
                        help="draw the teacher-strength curve (students against their teachers' probes) and stop")
    parser.add_argument("--quick", action="store_true",
                        help="2 updates for every run (a check that every unit runs; give it its own --ledger and --out)")
    cfg = parser.parse_args()
    if cfg.quick:
        if os.path.abspath(cfg.ledger) == os.path.abspath(LEDGER):
            raise SystemExit("claims_study: --quick writes 2-update rows: give it a --ledger of its own")
        for sizes in SIZES.values():
            sizes.update(pretrain_updates=2, finetune_updates=2, teacher_updates=2, validate_interval=1)
        CLASSIFIER_POOL_UPDATES.update(dict.fromkeys(CLASSIFIER_POOL_UPDATES, 2))
    if cfg.report or cfg.picture or cfg.strength_picture:
        print(claims_report.report(cfg.ledger))
        print(claims_report.strength_report(cfg.ledger))
        print(claims_report.labelled_table_report(cfg.ledger))
        print(claims_report.finetune_length_report(cfg.ledger))
        if cfg.picture:
            print(f"picture: {claims_report.draw(cfg.ledger, cfg.picture)}")
        if cfg.strength_picture:
            print(f"picture: {claims_report.draw_strength(cfg.ledger, cfg.strength_picture)}")
        return 0
    failed = claims.run(claims.StudySettings(ledger=cfg.ledger, out=cfg.out, arms=cfg.arms, tasks=cfg.tasks,
                                             seeds=cfg.seeds, only=cfg.only, workers=cfg.workers))
    print(claims_report.report(cfg.ledger), flush=True)
    if failed:
        raise SystemExit(f"claims_study: {failed} unit(s) failed (above); rerun to retry them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
