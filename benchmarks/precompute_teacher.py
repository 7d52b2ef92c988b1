"""``supmam-precompute-teacher`` throughput: clips/s of the whole command path (read the 10 s
file, resample to 48 kHz, HTS-AT forward, write the float16 map with its done mark), on
synthetic 10 s clips at 16 kHz, for each batch size; and the cost of a rerun over a finished cache
(every clip already marked: what a resume pays to find where it stopped).

The teacher is the random HTSAT-tiny by default (no released weights here: a released checkpoint
has the same shapes, so the same cost), or ``--teacher supmam --teacher-checkpoint FILE`` (an
encoder of this plugin or AudioMAE: it hears the student's own 16 kHz crop).

    python -m benchmarks.precompute_teacher [--clips 48] [--batches 1 8] [--device cuda]
        [--teacher supmam --teacher-checkpoint FILE]
"""
from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time

from . import common
from .fbank import write_files


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_common_args(parser)
    parser.add_argument("--clips", type=int, default=48)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--teacher", default="laion_clap", choices=["laion_clap", "supmam"])
    parser.add_argument("--teacher-checkpoint", default="random", help="laion_clap: 'random'; supmam: a checkpoint")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    device = common.begin(args, seed=None)
    import supmam_plugin  # noqa: F401  registers the task
    from supmam_plugin.commands.precompute_teacher import precompute
    from supmam_plugin.teachers import TeacherConfig

    teacher = TeacherConfig(teacher=args.teacher, teacher_checkpoint=args.teacher_checkpoint)

    with tempfile.TemporaryDirectory() as folder:
        data = write_files(os.path.join(folder, "data"), args.clips, common.SAMPLE_RATE, "WAV", labels=False)
        print("| batch | clips | seconds | clips/s | hours for AS-2M (2M clips) |")
        print("|---|---|---|---|---|")
        for batch in args.batches:
            out = os.path.join(folder, f"cache{batch}")
            start = time.perf_counter()
            precompute(data, "train", out, teacher, batch_size=batch, device=str(device))
            seconds = time.perf_counter() - start
            rate = args.clips / seconds
            print(f"| {batch} | {args.clips} | {seconds:.1f} | {rate:.2f} | {2e6 / rate / 3600:.0f} |", flush=True)
        start = time.perf_counter()
        precompute(data, "train", out, teacher, batch_size=args.batches[-1], device=str(device))
        print(f"\nrerun over the finished cache (nothing to compute; teacher load included): "
              f"{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
