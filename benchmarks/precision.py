"""Training-step speed of fairseq's precision modes, through fairseq's own Trainer.

Each mode builds the real ``Trainer`` (task, ``supmam`` model, ``supmam`` criterion, the recipe's
optimizer and scheduler) from ``examples/supmam/pretraining/{variant}.yaml`` and times
``trainer.train_step([sample])`` on one fixed batch of 10 s clips (teacher targets from a cached
native map, as long runs use):

  fp32          common.bf16=false
  bf16          common.bf16=true: model and batch cast to bf16 by fairseq, fp32 master weights
                (fairseq's FP16Optimizer); waveforms stay float64, fbank float32
  autocast      float32 model, ``torch.autocast(bfloat16)`` around the step (what fairseq's
                common.amp does on a GPU, with fp16 there; on the CPU fairseq's amp casts nothing)
  fp16, amp     CUDA only: common.fp16=true / common.amp=true

Modes are stepped in turn, round after round, so the ratios compare steps under the same load.
On a GPU it also reports peak memory and MFU against the card's dense peak (``--peak-tflops``).

    python -m benchmarks.precision                                   # CPU, tiny and ViT-B, batch 2
    python -m benchmarks.precision --device cuda --batch 32 --sizes vitb --peak-tflops 989
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from contextlib import nullcontext

import torch

from . import common, flops

CPU_MODES = ("fp32", "bf16", "autocast")
CUDA_MODES = ("fp32", "bf16", "fp16", "amp", "autocast")


def build_trainer(variant: str, size: str, mode: str, device: torch.device):
    """fairseq's Trainer for the recipe at a size, in a precision mode (labels: the shipped demo's
    10 classes, for the classification branch)."""
    from fairseq import tasks
    from fairseq.dataclass.configs import FairseqConfig
    from fairseq.dataclass.initialize import add_defaults
    from fairseq.trainer import Trainer
    from omegaconf import OmegaConf

    import supmam_plugin  # noqa: F401  registers the task, model and criterion
    from supmam_plugin.recipes.compose import compose_recipe

    raw = compose_recipe("pretraining", variant)
    cfg = OmegaConf.structured(FairseqConfig)
    OmegaConf.set_struct(cfg, False)
    for group in ("common", "checkpoint", "dataset", "optimization", "task", "criterion", "optimizer",
                  "lr_scheduler", "model"):
        cfg[group] = OmegaConf.merge(cfg[group], raw[group]) if cfg.get(group) is not None else raw[group]
    cfg.common.user_dir = None
    cfg.common.seed = 1
    cfg.common.cpu = device.type == "cpu"
    cfg.common.bf16 = mode == "bf16"
    cfg.common.fp16 = mode == "fp16"
    cfg.common.amp = mode == "amp"
    cfg.distributed_training.distributed_world_size = 1
    cfg.task.data = os.path.join(common.REPO, "data", "demo")
    cfg.task.seed = 1
    cfg.model.update(common.SIZES[size], seed=1, input_frames=1024)
    if cfg.model.target == "teacher":
        cfg.model.teacher_checkpoint = "random"
    add_defaults(cfg)
    task = tasks.setup_task(cfg.task)
    model = task.build_model(cfg.model)
    criterion = task.build_criterion(cfg.criterion)
    return Trainer(cfg, task, model, criterion), cfg


def make_sample(model, batch: int, num_classes: int, cls_branch: bool, clap: bool) -> dict:
    source = common.synthetic_batch(batch, common.CLIP_SECONDS, common.SAMPLE_RATE).double()
    net_input = {"source": source, "source_lengths": torch.full((batch,), source.size(1)),
                 "clip_ids": torch.arange(batch)}
    if clap:
        audio = common.synthetic_batch(batch, common.CLIP_SECONDS, common.TEACHER_RATE)
        net_input["teacher_token_map"] = model.teacher.token_map(audio).half()
    sample = {"id": torch.arange(batch), "nsentences": batch, "ntokens": int(source.numel()), "net_input": net_input}
    if cls_branch:
        sample["target"] = torch.arange(batch) % num_classes
    return sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--variant", default="supmam_clap", choices=common.VARIANTS)
    parser.add_argument("--sizes", nargs="+", default=["tiny", "vitb"], choices=sorted(common.SIZES))
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=4, help="timed steps per mode (after one warm-up step)")
    parser.add_argument("--modes", nargs="+", default=None, help=f"default: {CPU_MODES} (cpu) / {CUDA_MODES} (cuda)")
    parser.add_argument("--peak-tflops", type=float, default=0.0,
                        help="the card's dense bf16/fp16 peak for MFU (H100 SXM: 989); 0 = not reported")
    args = parser.parse_args()
    device = common.begin(args, seed=None, command=False)
    modes = args.modes or (CUDA_MODES if device.type == "cuda" else CPU_MODES)
    print(f"variant {args.variant}, batch {args.batch}, {args.rounds} timed steps per mode, round-robin")
    for size in args.sizes:
        runs = {}
        for mode in modes:
            torch.manual_seed(0)
            trainer, cfg = build_trainer(args.variant, size, mode, device)
            num_classes = trainer.task.num_classes or 1
            sample = make_sample(trainer.model, args.batch, num_classes, cfg.model.cls_branch, cfg.model.target == "teacher")
            runs[mode] = {"trainer": trainer, "cfg": cfg, "sample": sample, "times": [], "memory": 0}
        for round_index in range(args.rounds + 1):
            for mode, run in runs.items():
                context = torch.autocast(device.type, dtype=torch.bfloat16) if mode == "autocast" else nullcontext()
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                common.sync(device)
                start = time.perf_counter()
                with context:
                    log = run["trainer"].train_step([run["sample"]])
                common.sync(device)
                elapsed = time.perf_counter() - start
                if round_index == 0:
                    run["first_loss"] = log["loss"]
                else:
                    run["times"].append(elapsed)
                if device.type == "cuda":
                    run["memory"] = max(run["memory"], torch.cuda.max_memory_allocated(device))
        cfg = runs[modes[0]]["cfg"]
        model = runs[modes[0]]["trainer"].model
        target_dim = model.head[0].out_features
        parts = flops.step_flops(cfg.model, args.batch, runs[modes[0]]["sample"]["net_input"]["source"].size(1),
                                 num_classes, target_dim)
        step_flops = flops.totals(parts)["step"]
        base = statistics.median(runs["fp32"]["times"]) if "fp32" in runs else None
        print(f"\n{size}: {flops.fmt_flops(step_flops)} per step (analytic)")
        print(f"{'mode':10s} {'s/step':>8s} {'clips/s':>8s} {'vs fp32':>8s} {'1st loss':>9s} {'TFLOP/s':>8s}"
              + ("  peak GiB    MFU" if device.type == "cuda" else ""))
        for mode, run in runs.items():
            median = statistics.median(run["times"])
            line = (f"{mode:10s} {median:8.3f} {args.batch / median:8.2f} "
                    f"{(base / median if base else float('nan')):7.2f}x {run['first_loss']:9.4f} "
                    f"{step_flops / median / 1e12:8.3f}")
            if device.type == "cuda":
                mfu = f"{100 * step_flops / median / (args.peak_tflops * 1e12):5.1f}%" if args.peak_tflops else "  n/a"
                line += f"  {run['memory'] / 2**30:8.2f}  {mfu}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
