"""What ``task.keep_freed_memory`` buys on the CPU: whole pretraining steps with glibc's default
allocator and with freed memory kept for reuse (``core/host_memory.py``), each in a fresh process
(the setting is per process), the two alternating round after round so that both see the same
load. Each process builds the variant (the recipes' settings, the recipes' fused AdamW), takes
--warmup steps, then times --steps steps and reports their median, the page faults per step and
its peak RSS.

    python -m benchmarks.host_memory --variants audiomae supmam_clap --size vitb --threads 2 --rounds 3
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess

from . import common
from .common import VARIANTS

MODES = ("glibc", "keep")


def one_process(args) -> dict:
    """Runs in the child: build, warm up, time, report."""
    import resource
    import time

    import torch

    from .pretraining_step import single_config, train_step

    device = common.setup(args)  # applies --host-memory
    torch.manual_seed(0)
    config = single_config(args.variant, args.size, "cached", args.batch, 527, "supmam_adamw-fused", device)
    for _ in range(args.warmup):
        train_step(config, device, "fp32")
    times, faults = [], []
    for _ in range(args.steps):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start = time.perf_counter()
        train_step(config, device, "fp32")
        times.append(time.perf_counter() - start)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return {"median_s": statistics.median(times), "times": times, "faults_per_step": statistics.median(faults),
            "peak_rss_mb": common.peak_rss_bytes() / 2**20}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_common_args(parser)
    parser.add_argument("--variants", nargs="+", default=["audiomae", "supmam_clap"], choices=VARIANTS)
    parser.add_argument("--size", default="vitb", choices=list(common.SIZES))
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="process pairs (glibc, keep) per variant")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps in each process")
    parser.add_argument("--steps", type=int, default=4, help="timed steps in each process")
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # the child's
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.device != "cpu":
        parser.error("the host allocator matters for CPU steps: run with --device cpu")
    if args.child:
        print(json.dumps(one_process(args)))
        return
    common.begin(argparse.Namespace(device="cpu", dtype="fp32", threads=args.threads, host_memory="glibc"), seed=None)
    results = {}
    for variant in args.variants:
        rows = {mode: [] for mode in MODES}
        for round_index in range(args.rounds):
            order = MODES if round_index % 2 == 0 else MODES[::-1]  # neither always goes first
            for mode in order:
                options = ["--child", "--variant", variant, "--size", args.size, "--batch", str(args.batch),
                           "--warmup", str(args.warmup), "--steps", str(args.steps), "--threads", str(args.threads),
                           "--device", "cpu", "--host-memory", mode]
                out = common.run_module(__spec__.name, options, stdout=subprocess.PIPE, text=True, check=True)
                row = json.loads(out.stdout.strip().splitlines()[-1])
                rows[mode].append(row)
                print(f"  {variant} round {round_index + 1}/{args.rounds} {mode:5s}: step {row['median_s']:.3f} s, "
                      f"{row['faults_per_step']:.0f} page faults a step, peak RSS {row['peak_rss_mb']:.0f} MB",
                      flush=True)
        ratios = [k["median_s"] / g["median_s"] for k, g in zip(rows["keep"], rows["glibc"])]
        results[variant] = {"rows": rows, "keep_over_glibc": ratios}
    print(f"\n--- size {args.size}, batch {args.batch}, threads {args.threads or 'default'}: "
          f"median over {args.rounds} process pairs ---")
    print(f"{'variant':14s} {'glibc s/step':>12s} {'keep s/step':>11s} {'keep/glibc':>10s} {'faults glibc':>12s} "
          f"{'faults keep':>11s} {'RSS glibc MB':>12s} {'RSS keep MB':>11s}")
    for variant, result in results.items():
        rows = result["rows"]

        def med(mode, key):
            return statistics.median(r[key] for r in rows[mode])

        print(f"{variant:14s} {med('glibc', 'median_s'):12.3f} {med('keep', 'median_s'):11.3f} "
              f"{statistics.median(result['keep_over_glibc']):9.3f}x {med('glibc', 'faults_per_step'):12.0f} "
              f"{med('keep', 'faults_per_step'):11.0f} {med('glibc', 'peak_rss_mb'):12.0f} "
              f"{med('keep', 'peak_rss_mb'):11.0f}")


if __name__ == "__main__":
    main()
