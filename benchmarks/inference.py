"""Encoder inference (embedding extraction) throughput: eval mode, torch.inference_mode, all 512
patches visible, batch 8 (default), for ViT-B and the tiny encoder.

Two figures per size:
  encoder   ``VitEncoder.features(fbank)`` on a precomputed (B, 1024, 128) fbank;
  embed     ``supmam_plugin.inference.encoder.AudioEncoder.embed(waveforms)``, the user-facing path:
            10 s waveforms at 16 kHz -> fbank -> encoder -> numpy clip embeddings.
GFLOP/s and % of a matmul peak measured in the same run (analytic FLOPs, see flops.py).

    python -m benchmarks.inference
    python -m benchmarks.inference --sizes vitb --batch 16 --device cuda --dtype bf16
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from . import common, flops
from .common import CLIP_SECONDS, SAMPLE_RATE


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_common_args(parser)
    parser.add_argument("--sizes", nargs="+", default=["vitb", "tiny"], choices=list(common.SIZES))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0, help="time spent per size and path (at least 3 reps)")
    common.add_peak_size_arg(parser)
    args = parser.parse_args()
    device = common.begin(args)

    from supmam_plugin.core.fbank import batch_fbank
    from supmam_plugin.inference.encoder import AudioEncoder
    from supmam_plugin.core.vit import VitEncoder, VitEncoderConfig

    waves = common.synthetic_batch(args.batch, CLIP_SECONDS, SAMPLE_RATE, seed=0)
    lengths = torch.full((args.batch,), waves.size(1), dtype=torch.long)
    fbank = batch_fbank(waves, lengths).to(device)
    waves_np = waves.numpy()
    print(f"\nbatch {args.batch} clips of {CLIP_SECONDS:.0f} s, {args.dtype}, device {device}, all 512 patches visible")
    print(f"  {'size':5s} {'path':8s} {'median s':>9s} {'best s':>8s} {'clips/s':>8s} {'GFLOP/batch':>11s} "
          f"{'GFLOP/s':>8s} {'%peak':>6s} {'peak GFLOP/s':>12s}")
    for size in args.sizes:
        settings = {k: v for k, v in common.SIZES[size].items() if k in VitEncoderConfig.__dataclass_fields__}
        cfg = VitEncoderConfig(**settings)
        encoder = VitEncoder(cfg)
        encoder.apply(encoder.init_module_weights)
        encoder.to(device).eval()
        wrapper = AudioEncoder(encoder, device=device)
        batch_flops = flops.encoder_inference_flops(cfg, args.batch)

        def run_encoder():
            with torch.inference_mode(), common.autocast(device, args.dtype):
                encoder.features(fbank)

        def run_embed():
            with common.autocast(device, args.dtype):
                wrapper.embed(waves_np, batch_size=args.batch)

        for path, fn in (("encoder", run_encoder), ("embed", run_embed)):
            fn()
            times, peaks = [], []
            deadline = time.perf_counter() + args.seconds
            while len(times) < 3 or (time.perf_counter() < deadline and len(times) < 100):
                peaks.append(common.matmul_peak(device, args.peak_size, reps=2, dtype=common.peak_dtype(args.dtype)))
                times.append(common.timed(fn, device))
            best, median = min(times), statistics.median(times)
            peak = max(peaks)
            rate = batch_flops / best / 1e9
            print(f"  {size:5s} {path:8s} {median:9.3f} {best:8.3f} {args.batch / median:8.2f} {batch_flops / 1e9:11.1f} "
                  f"{rate:8.1f} {100 * rate / peak:5.1f}% {peak:12.1f}", flush=True)
    print(f"\nclips/s from the median time; GFLOP/s and %peak from the best time and the best peak of the run. "
          f"load average at the end: {common.load_average()}")


if __name__ == "__main__":
    main()
