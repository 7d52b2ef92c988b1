"""The ceiling of a pretraining step on this CPU: the matmul rate of the step's OWN GEMM shapes
against the square matmul peak the other benchmarks divide by, measured in one run.

A ViT-B step is 95-99% matmul (``benchmarks.step_profile``). Its GEMMs are linear layers:
forward Y = X W^T, backward dX = dY W and dW = dY^T X, with X of rows = clips x tokens. The encoder
sees the visible tokens (AudioMAE at mask 0.8: 102 + [CLS] a clip; 0.4: 307 + 1) at width 768; the
decoder sees all 512 patches at width 512 (MLP 2048). When the rate of these shapes is below the
square peak, no change to the plugin's code outside the GEMM library lifts the step above it.

    python -m benchmarks.gemm_shapes --threads 1 --batch 2
"""
from __future__ import annotations

import argparse

import torch

from . import common


def linear_shapes(rows: int, width: int, mlp: int) -> list[tuple[str, int, int, int]]:
    """(name, M, K, N) of one transformer block's linear layers' forward GEMMs: qkv, proj, fc1, fc2."""
    return [("qkv", rows, width, 3 * width), ("proj", rows, width, width), ("fc1", rows, width, mlp),
            ("fc2", rows, mlp, width)]


def rate(m: int, k: int, n: int, reps: int, device, peak_size: int) -> dict:
    """Each of forward (M,K)x(K,N), dX (M,N)x(N,K) and dW (N,M)x(M,K) as a fraction of the square
    peak, the two timed in turn ``reps`` times (best of each), so a shared machine's load moves both."""
    x, w, dy = torch.randn(m, k, device=device), torch.randn(k, n, device=device), torch.randn(m, n, device=device)
    a, b = torch.randn(peak_size, peak_size, device=device), torch.randn(peak_size, peak_size, device=device)
    out = {}
    for name, run in (("forward", lambda: x @ w), ("grad input", lambda: dy @ w.T), ("grad weight", lambda: dy.T @ x)):
        run()
        shape_best, peak_best = float("inf"), float("inf")
        for _ in range(reps):
            peak_best = min(peak_best, common.timed(lambda: a @ b, device))
            shape_best = min(shape_best, common.timed(run, device))
        out[name] = (2 * m * k * n / shape_best) / (2 * peak_size ** 3 / peak_best)
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_common_args(parser)
    common.add_peak_size_arg(parser)
    parser.add_argument("--batch", type=int, default=2, help="clips a step")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    device = common.begin(args, seed=None, command=False)
    peak = common.matmul_peak(device, args.peak_size, args.reps)
    cases = [("encoder, mask 0.8 (audiomae)", linear_shapes(args.batch * 103, 768, 3072)),
             ("encoder, mask 0.4 (supmam)", linear_shapes(args.batch * 308, 768, 3072)),
             ("decoder, 512 patches (every variant)", linear_shapes(args.batch * 512, 512, 2048))]
    print(f"\nsquare matmul peak ({args.peak_size}^3): {peak:.1f} GFLOP/s at the start; batch {args.batch}; each "
          "shape as a fraction of the peak timed in turn with it\n")
    print("| GEMMs of | layer | M x K x N | forward | grad input | grad weight | FLOP-weighted % of peak |")
    print("|---|---|---|---|---|---|---|")
    for label, shapes in cases:
        flops = seconds = 0.0
        for name, m, k, n in shapes:
            r = rate(m, k, n, args.reps, device, args.peak_size)
            work = 2 * m * k * n
            flops += 3 * work
            seconds += sum(work / v for v in r.values())  # in units of "seconds at the peak"
            print(f"| {label} | {name} | {m} x {k} x {n} | " + " | ".join(f"{v:.0%}" for v in r.values()) + " | |")
        print(f"| {label} | all | | | | | **{flops / seconds:.1%}** |")
    peak_after = common.matmul_peak(device, args.peak_size, args.reps)
    print(f"\npeak again at the end: {peak_after:.1f} GFLOP/s (a shared machine moves it)")


if __name__ == "__main__":
    main()
