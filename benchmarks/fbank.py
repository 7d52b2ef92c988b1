"""Kaldi fbank throughput, and the data loader's clips/s.

1. ``batch_fbank`` (the model's input: Kaldi fbank, pad to 1024 frames, AudioSet normalisation)
   on 10 s clips at 16 kHz, batch sizes 1, 8, 32, with torch's threads as set.
2. The real data path: N real-looking 10 s files written with soundfile to a temporary folder
   (WAV 16 kHz, FLAC 16 kHz; FLAC 48 kHz for the teacher's audio), a manifest, the
   ``supmam_pretraining`` task built by fairseq's ``tasks.setup_task``, and
   ``task.get_batch_iterator(...)`` iterated with num_workers 0, 1, 2; with and without
   ``fbank_in_dataloader``, and with teacher audio at 48 kHz (``TeacherInputDataset``, LAION-CLAP's input).
   clips/s counts the whole epoch (workers' start-up included); "steady" drops the first batch.

    python -m benchmarks.fbank
    python -m benchmarks.fbank --clips 128 --loader-batch 16 --workers 0 2
    python -m benchmarks.fbank --skip-loader --device cuda
"""
from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import tempfile
import time

import torch

from . import common
from .common import CLIP_SECONDS, SAMPLE_RATE, TEACHER_RATE


def bench_batch_fbank(args, device) -> list[dict]:
    """batch_fbank on whole batches (``cpu_chunk=0``: what it did before issue 26), then the largest
    batch with ``cpu_chunk`` = each of --chunks (on the CPU it now computes CPU_CHUNK clips at a
    time; the output is the same)."""
    from supmam_plugin.core.fbank import batch_fbank

    rows = []
    clips = common.synthetic_batch(max(args.batch_sizes), CLIP_SECONDS, SAMPLE_RATE, seed=0)
    plans = [(b, 0) for b in args.batch_sizes]
    plans += [(max(args.batch_sizes), c) for c in args.chunks if c < max(args.batch_sizes)]
    for batch, chunk in plans:
        waves = clips[:batch].to(device)
        lengths = torch.full((batch,), waves.size(1), dtype=torch.long, device=device)

        def run():
            return batch_fbank(waves, lengths, cpu_chunk=chunk)

        for _ in range(2):
            run()
        times = []
        deadline = time.perf_counter() + args.seconds
        while len(times) < 3 or (time.perf_counter() < deadline and len(times) < 200):
            times.append(common.timed(run, device))
        best, median = min(times), statistics.median(times)
        rows.append({"batch": batch, "chunk": chunk, "best_s": best, "median_s": median, "clips_per_s": batch / median,
                     "clips_per_s_best": batch / best, "reps": len(times)})
    return rows


def write_files(folder: str, count: int, rate: int, fmt: str, labels: bool) -> str:
    """count 10 s files at ``rate`` in ``fmt`` (WAV/FLAC) + train.tsv (+ labels) in ``folder``."""
    import soundfile as sf
    from supmam_plugin.core.manifest import write_class_list, write_manifest

    audio = os.path.join(folder, "audio")
    os.makedirs(audio, exist_ok=True)
    entries, names = [], []
    classes = ["speech", "music", "dog", "rain"]
    for i in range(count):
        wave = common.synthetic_clip(CLIP_SECONDS, rate, seed=i)
        name = f"clip{i:05d}.{fmt.lower()}"
        sf.write(os.path.join(audio, name), wave, rate, subtype="PCM_16", format=fmt)
        entries.append((name, len(wave)))
        names.append([classes[i % 4], classes[(i + 1) % 4]])
    write_manifest(folder, "train", audio, entries, names if labels else None, "label")
    if labels:
        write_class_list(folder, classes, "label")
    return folder


def bench_loader(data: str, workers: int, batch: int, overrides: dict) -> dict:
    from fairseq import tasks
    from omegaconf import OmegaConf

    import supmam_plugin  # noqa: F401  registers the tasks

    from supmam_plugin.data.teacher_input_dataset import TeacherInputDataset

    overrides = dict(overrides)
    teacher_rate = overrides.pop("teacher_sample_rate", 0)
    cfg = OmegaConf.create({"_name": "supmam_pretraining", "data": data, "seed": 1, **overrides})
    task = tasks.setup_task(cfg)
    dataset = task.load_dataset("train")
    if teacher_rate:  # what the task adds for LAION-CLAP (10 s at 48 kHz)
        dataset = TeacherInputDataset(dataset, teacher_rate, int(CLIP_SECONDS * teacher_rate))
    iterator = task.get_batch_iterator(dataset, max_sentences=batch, seed=1, num_workers=workers,
                                       required_batch_size_multiple=1)
    start = time.perf_counter()
    epoch = iterator.next_epoch_itr(shuffle=True)  # starts the workers
    first = None
    clips = clips_after_first = 0
    for b in epoch:
        n = len(b["id"])
        clips += n
        if first is None:
            first = time.perf_counter()
        else:
            clips_after_first += n
    end = time.perf_counter()
    keys = sorted(b["net_input"].keys())
    del epoch, iterator, b
    gc.collect()
    return {"workers": workers, "clips": clips, "seconds": end - start, "clips_per_s": clips / (end - start),
            "first_batch_s": first - start,
            "steady_clips_per_s": clips_after_first / (end - first) if end > first else float("nan"),
            "net_input": keys}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_common_args(parser)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=3.0, help="time spent per fbank batch size")
    parser.add_argument("--chunks", type=int, nargs="*", default=[1, 4, 8],
                        help="also run the largest batch with batch_fbank(cpu_chunk=N) (N clips at a time on the CPU)")
    parser.add_argument("--repeats", type=int, default=2, help="epochs per loader case (fresh iterator each)")
    parser.add_argument("--skip-loader", action="store_true")
    parser.add_argument("--clips", type=int, default=64, help="files written for the loader")
    parser.add_argument("--loader-batch", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tmpdir", default=None, help="where to write the audio (default: the system's)")
    args = parser.parse_args()
    device = common.begin(args, seed=None)

    print(f"\nbatch_fbank (Kaldi fbank 25/10 ms, 128 mel, pad to 1024 frames, normalise), 10 s clips at 16 kHz, "
          f"device {device}, threads {torch.get_num_threads()}:")
    print(f"  {'batch':>5s} {'chunk':>5s} {'median s':>9s} {'best s':>8s} {'clips/s':>8s} {'best clips/s':>12s} {'reps':>5s}")
    for r in bench_batch_fbank(args, device):
        chunk = "all" if r["chunk"] in (0, r["batch"]) else str(r["chunk"])  # all: the whole batch at once
        print(f"  {r['batch']:5d} {chunk:>5s} {r['median_s']:9.4f} {r['best_s']:8.4f} {r['clips_per_s']:8.1f} "
              f"{r['clips_per_s_best']:12.1f} {r['reps']:5d}   (target >= 200 clips/s: "
              f"{'met' if r['clips_per_s'] >= 200 else 'missed'})")

    if args.skip_loader:
        return
    root = tempfile.mkdtemp(prefix="supmam_bench_", dir=args.tmpdir)
    try:
        t0 = time.perf_counter()
        sets = {
            "wav16": write_files(os.path.join(root, "wav16"), args.clips, SAMPLE_RATE, "WAV", labels=True),
            "flac16": write_files(os.path.join(root, "flac16"), args.clips, SAMPLE_RATE, "FLAC", labels=True),
            "flac48": write_files(os.path.join(root, "flac48"), args.clips, TEACHER_RATE, "FLAC", labels=True),
        }
        print(f"\nwrote {3 * args.clips} files of {CLIP_SECONDS:.0f} s in {time.perf_counter() - t0:.1f} s under {root}")
        cases = [
            ("WAV 16 kHz", "wav16", {}),
            ("WAV 16 kHz, labels (SupMAM)", "wav16", {"labels": "label", "multi_label": True}),
            ("WAV 16 kHz, fbank_in_dataloader", "wav16", {"fbank_in_dataloader": True}),
            ("FLAC 16 kHz", "flac16", {}),
            ("FLAC 16 kHz, fbank_in_dataloader", "flac16", {"fbank_in_dataloader": True}),
            ("FLAC 48 kHz -> 16 kHz (resampled)", "flac48", {}),
            ("FLAC 48 kHz + teacher audio 48 kHz", "flac48", {"teacher_sample_rate": TEACHER_RATE}),
            ("WAV 16 kHz + teacher audio 48 kHz (upsampled)", "wav16", {"teacher_sample_rate": TEACHER_RATE}),
        ]
        print(f"\ndata loader: supmam_pretraining task, {args.clips} clips of {CLIP_SECONDS:.0f} s, batch "
              f"{args.loader_batch}, one epoch each (clips/s over the epoch incl. worker start-up; steady = "
              f"after the first batch)")
        print(f"  (each case {args.repeats} epochs with a fresh iterator; best epoch shown, worst in brackets)")
        print(f"  {'case':48s} {'workers':>7s} {'clips/s':>8s} {'(worst)':>8s} {'steady':>8s} {'1st batch s':>11s}  net_input")
        for label, key, overrides in cases:
            for workers in args.workers:
                runs = [bench_loader(sets[key], workers, args.loader_batch, overrides) for _ in range(args.repeats)]
                r = max(runs, key=lambda x: x["clips_per_s"])
                worst = min(x["clips_per_s"] for x in runs)
                print(f"  {label:48s} {workers:7d} {r['clips_per_s']:8.1f} {worst:8.1f} {r['steady_clips_per_s']:8.1f} "
                      f"{r['first_batch_s']:11.2f}  {','.join(r['net_input'])}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\nload average at the end: {common.load_average()}")


if __name__ == "__main__":
    main()
