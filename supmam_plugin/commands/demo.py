"""``supmam-demo``: pretraining on unlabelled audio, fine-tuning on a few labelled clips, and the
baselines, end to end on the CPU. ``make demo`` runs it on the real recorded sound events of ``make
sound-events`` in the labelled-pool setting with a CLAP teacher made here by LAION-CLAP's recipe
(``--teacher-recipe laion-clap``; the method: SupMAM-CLAP); independent runs go two at a time (``--workers``);
``make demo DEMO=spoken-words`` on the spoken words of ``data/demo`` (10 words, speakers held out
between splits) and its unlabelled pool ``data/demo_pool`` (``scripts/make_demo_data.py --pool-dir``).

For each seed (``--seeds``; a seed is the whole pipeline: pretraining, fine-tuning, probe):

1. pretrain a small ViT with each method of ``--methods`` (``audiomae``, ``mam_clap``, ``supmam``,
   ``supmam_clap``: the pretraining recipes) on ``--pretrain-data`` (its ``pretrain`` split when
   there is one: the pool, unlabelled, plus the labelled training clips; else its ``train`` split).
   The CLAP methods' teacher is ``--teacher`` (``model.teacher``) with ``--teacher-checkpoint``;
   ``--teacher clap`` without a checkpoint: a tiny CLAP trained first, for each seed, on the captions
   of ``--pretrain-data``'s unlabelled pool only (``experiments/clap_teacher.py``), and scored on test as a model
   of its own (zero-shot, linear probe); by default LAION-CLAP, a real checkpoint when
   ``SUPMAM_CLAP_CHECKPOINT`` names one (HTSAT-tiny, e.g. 630k-audioset-best.pt), otherwise the explicitly requested RANDOM teacher (its targets mean
   nothing; it exercises the pipeline); ``--teacher supmam --teacher-checkpoint CLASSIFIER.pt``: a
   checkpoint of this plugin, e.g. a classifier fine-tuned on the labelled clips (a teacher that
   knows the task, RESULTS.md). Its targets are precomputed once;
2. fine-tune each pretrained encoder, and the same classifier from scratch, with the same updates
   and seed (``SMALL_FINETUNING``: the recipe for small models on small sets, RESULTS.md says why);
   score the checkpoint best on valid with ``fairseq-validate`` on the held-out test split, and on
   the training clips (does it fit them?);
3. linear probes (frozen encoder, logistic regression, C chosen on valid) of each pretrained encoder
   and of its random twin, and once the MFCC baseline (MFCC statistics + logistic regression);
4. write ``results.json`` (per seed, and mean +- std over seeds) and print the result line, before
   any picture;
5. draw ``held_out_accuracy.png`` (every method, every seed, beside the baseline), a reconstruction
   (of the test manifest's first clip), the CLAP teacher-vs-prediction similarity and the training
   curves of the first seed (a picture that fails is reported and loses nothing);
6. end with one line: held-out accuracies (mean +- std over seeds), the baseline, the probes, chance.

``--data`` may be any manifest folder with train/valid/test splits and a ``label`` class list. A
folder where some clip carries several classes (AudioSet's shape, e.g. ``make sound-events``) is
multi-label: fine-tuning with BCE (``task.multi_label=true``, best checkpoint by mAP), one-vs-rest
probes and baseline, and every score is mAP (``results.json``: ``"metric": "mAP"``; chance = the
mAP of a random ranking); fairseq-validate's per-class AP of each fine-tuned model is kept too.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from ..experiments.demo import DemoSettings, run
from ..experiments.demo_result import result_line
from ..experiments.folders import SETTINGS
from ..experiments.settings import Budget, ExperimentError, TeacherSettings
from ..experiments.teacher_recipes import TEACHER_RECIPES
from ..recipes import recipe_names


def teacher_names() -> list[str]:
    """model.teacher's registered names (and their old names), for --teacher."""
    from ..core.checkpoints.legacy import TEACHER_ALIASES
    from ..teachers.config import TEACHERS

    return sorted(TEACHERS) + sorted(TEACHER_ALIASES)


def settings_of(args: argparse.Namespace) -> DemoSettings:
    """The parsed command line as the pipeline's typed settings."""
    budget = Budget(pretrain_updates=args.pretrain_updates, pretrain_batch_size=args.pretrain_batch_size,
                    pretrain_lr=args.pretrain_lr, finetune_updates=args.finetune_updates, batch_size=args.batch_size,
                    validate_interval=args.validate_interval, teacher_updates=args.teacher_updates,
                    classifier_updates=args.classifier_updates, mae_updates=args.mae_updates)
    teacher = TeacherSettings(name=args.teacher, checkpoint=args.teacher_checkpoint, recipe=args.teacher_recipe,
                              start=args.teacher_start)
    return DemoSettings(data=args.data, pretrain_data=args.pretrain_data, methods=list(args.methods),
                        seeds=list(args.seeds), out=args.out, setting=args.setting, frames=args.frames,
                        multi_label=args.multi_label, also_score=list(args.also_score), workers=args.workers,
                        reuse=args.reuse, verbose=args.verbose, budget=budget, teacher=teacher)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.path.join("data", "demo"),
                        help="manifest folder with train/valid/test splits ({split}.tsv, {split}.label, "
                             "dict.label.txt): fine-tuning, probes and the baseline")
    parser.add_argument("--pretrain-data", default=None,
                        help="manifest folder the pretraining reads: its pretrain split (pool + labelled clips, "
                             "scripts/make_demo_data.py --pool-dir) when it has one, else its train split "
                             "(default: --data)")
    parser.add_argument("--methods", nargs="+", default=["supmam"],
                        choices=recipe_names("pretraining"),
                        help="pretraining recipes to compare with fine-tuning from scratch (default: supmam)")
    parser.add_argument("--teacher", default=None, choices=teacher_names(),
                        help="model.teacher of the CLAP methods (default: their recipe's, laion_clap); a teacher "
                             "registered with @register_teacher is a choice")
    parser.add_argument("--teacher-checkpoint", default=None,
                        help="model.teacher_checkpoint: laion_clap: a LAION-CLAP .pt (default: $SUPMAM_CLAP_CHECKPOINT, "
                             "else the RANDOM teacher); checkpoint_encoder (old name: supmam): a checkpoint of this plugin (e.g. a fine-tuned "
                             "classifier) or an AudioMAE .pth; clap: a CLAP trained with this plugin (recipes/clap); "
                             "clap without a checkpoint: one is trained for each seed on the captions of --pretrain-data's "
                             "unlabelled pool (its pool split, else its train split) and nothing else")
    parser.add_argument("--teacher-updates", type=int, default=1200,
                        help="updates of the CLAP teacher trained by --teacher-recipe pool-captions or laion-clap")
    parser.add_argument("--teacher-recipe", default=None, choices=list(TEACHER_RECIPES),
                        help="train the CLAP methods' teacher here, for each seed: pool-captions (a tiny CLAP on the "
                             "unlabelled pool's captions only; what --teacher clap alone trains), "
                             "labelled-pool-classifier (a classifier from scratch on every labelled pretraining clip, "
                             "model.teacher=checkpoint_encoder), laion-clap (LAION-CLAP's recipe: a CLAP whose audio "
                             "tower starts from that classifier, trained on the captions and on captions made from the "
                             "labels); the last two need the labelled-pool setting")
    parser.add_argument("--setting", default="auto", choices=["auto", *SETTINGS],
                        help="information setting of the pretraining (docs/data.md): labelled-pool (the paper's: every "
                             "pretraining clip labelled, --pretrain-data's pretrain_labelled split; also trains and "
                             "scores a classifier from scratch on all those labels) or unlabelled-pool (its pretrain "
                             "split, labels on the training clips only); auto: labelled-pool when the folder has a "
                             "pretrain_labelled split")
    parser.add_argument("--teacher-start", default="audiomae", choices=["audiomae", "scratch"],
                        help="where the classifier of --teacher-recipe labelled-pool-classifier and laion-clap starts: "
                             "audiomae (an AudioMAE pretraining on the pretraining clips, --mae-updates: LAION-CLAP's "
                             "audio tower started from an ImageNet pretraining) or scratch (the classifier that is also "
                             "the all-labels bar)")
    parser.add_argument("--mae-updates", type=int, default=None,
                        help="updates of the AudioMAE pretraining the teacher's classifier starts from "
                             "(--teacher-start audiomae; default: --pretrain-updates)")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                        help="runs at a time, one thread each (default: 2 when the machine has 2 cores): the "
                             "baseline, the model from scratch and the bar run beside the method's chain")
    parser.add_argument("--classifier-updates", type=int, default=2000,
                        help="updates of the classifier trained from scratch on every labelled pretraining clip "
                             "(labelled-pool setting)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1],
                        help="one whole pipeline (pretraining, fine-tuning, probe) per seed; mean +- std over them")
    parser.add_argument("--out", default="demo_output", help="output folder")
    parser.add_argument("--pretrain-updates", type=int, default=2000, help="updates of each pretraining run")
    parser.add_argument("--pretrain-batch-size", type=int, default=32, help="clips per pretraining update")
    parser.add_argument("--pretrain-lr", type=float, default=1e-3, help="peak learning rate of pretraining")
    parser.add_argument("--finetune-updates", type=int, default=2400, help="updates of each fine-tuning run")
    parser.add_argument("--batch-size", type=int, default=16, help="clips per fine-tuning update")
    parser.add_argument("--frames", type=int, default=None,
                        help="fbank frames per clip (default: the training clips' median length rounded to a "
                             "multiple of 64: 1 s -> 128, 2 s -> 192, 10 s -> 1024)")
    parser.add_argument("--multi-label", action="store_true",
                        help="score by mAP with BCE fine-tuning and one-vs-rest probes even if no clip has several "
                             "labels (default: multi-label when any clip of train/valid/test has several)")
    parser.add_argument("--also-score", nargs="*", default=[], metavar="SPLIT",
                        help="more labelled splits the fine-tuned models are scored on (e.g. test_seen of "
                             "scripts/make_sound_events.py)")
    parser.add_argument("--validate-interval", type=int, default=10, help="validate every N epochs")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse the runs of an earlier call with the same --out whose logs hold a finished run "
                             "of the same command, on inputs that were reused too (a long study continues where it "
                             "stopped; likewise the linear probes and the MFCC baseline kept in OUT/logs, so one call "
                             "can merge seeds run by several calls at once); off: every run is made afresh")
    parser.add_argument("--verbose", action="store_true", help="stream fairseq's output")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.workers > 1:  # one thread per run: a 2-thread torch job slows ~5x beside another (BENCHMARKS.md)
        import torch

        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)
    start = time.time()
    try:
        result = run(settings_of(args))
    except ExperimentError as e:
        raise SystemExit(f"supmam-demo: {e}") from None
    print(f"[demo] outputs in {os.path.abspath(args.out)} (held_out_{result['metric']}.png, reconstruction.png, "
          f"training_curves.png, results.json); {time.time() - start:.0f} s in all")
    print(result_line(result))  # again, as the last line
    return 0


if __name__ == "__main__":
    sys.exit(main())
