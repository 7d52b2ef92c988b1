"""Does compiling the transformer blocks pay? Whole pretraining steps of one variant, eager against a
copy (same weights, same batch, the recipes' fused AdamW) whose encoder blocks and/or decoder
blocks are each compiled in place (``nn.Module.compile()``: the state_dict keys stay as they are,
so checkpoints would not change). Inductor fuses the LayerNorms, GELUs, residual adds and the
attention's elementwise work around the matrix products; the products themselves stay library
calls. The two models step in turn, alternating which goes first, and the paired ratio
(compiled / eager) of each round is reported with its median, beside the compile time (first
compiled step minus an eager step; inductor keeps compiled graphs in its on-disk cache, so a second
run on the same machine shows much less).

    python -m benchmarks.compiled_blocks --variant audiomae --size vitb --threads 2 --rounds 8
    python -m benchmarks.compiled_blocks --variant supmam_clap --blocks decoder --device cuda --dtype bf16 --batch 32
"""
from __future__ import annotations

import argparse
import statistics

from . import common
from .common import VARIANTS
from .pretraining_step import single_config, train_step

BLOCKS = ("encoder", "decoder", "both")


def compile_blocks(model, which: str, backend: str) -> int:
    """Compile the model's encoder and/or decoder blocks in place; returns how many."""
    blocks = []
    if which in ("encoder", "both"):
        blocks += list(model.encoder.blocks)
    if which in ("decoder", "both"):
        blocks += list(model.decoder.blocks)
    for block in blocks:
        block.compile(backend=backend)
    return len(blocks)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_common_args(parser)
    parser.add_argument("--variant", default="audiomae", choices=VARIANTS)
    parser.add_argument("--size", default="vitb", choices=list(common.SIZES))
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--blocks", default="both", choices=BLOCKS, help="which blocks are compiled")
    parser.add_argument("--backend", default="inductor", help="torch.compile backend")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps of each model after the compile")
    parser.add_argument("--rounds", type=int, default=6, help="timed pairs (eager, compiled)")
    args = parser.parse_args(argv)
    device = common.begin(args)
    configs = {name: single_config(args.variant, args.size, "cached", args.batch, 527, "supmam_adamw-fused", device)
               for name in ("eager", "compiled")}
    configs["compiled"].model.load_state_dict(configs["eager"].model.state_dict())
    count = compile_blocks(configs["compiled"].model, args.blocks, args.backend)

    def step(name: str) -> float:
        return common.timed(lambda: train_step(configs[name], device, args.dtype), device)

    eager_first = step("eager")
    first = step("compiled")
    print(f"{args.variant} {args.size}, batch {args.batch}, {args.dtype}: {count} {args.blocks} block(s) compiled "
          f"({args.backend}); first compiled step {first:.1f} s (an eager one {eager_first:.2f} s)")
    for _ in range(args.warmup):
        step("eager")
        step("compiled")
    times = {"eager": [], "compiled": []}
    for round_index in range(args.rounds):
        order = ("eager", "compiled") if round_index % 2 == 0 else ("compiled", "eager")
        for name in order:
            times[name].append(step(name))
        print(f"  round {round_index + 1}/{args.rounds}: eager {times['eager'][-1]:.3f} s, "
              f"compiled {times['compiled'][-1]:.3f} s", flush=True)
    ratios = [c / e for e, c in zip(times["eager"], times["compiled"])]
    print(f"eager median {statistics.median(times['eager']):.3f} s, compiled median "
          f"{statistics.median(times['compiled']):.3f} s; compiled/eager: paired median "
          f"{statistics.median(ratios):.3f}x (rounds {min(ratios):.3f}-{max(ratios):.3f}); "
          f"compile {first - eager_first:.1f} s")


if __name__ == "__main__":
    main()
