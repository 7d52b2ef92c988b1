"""Several masks per clip (``model.clone_batch=K``) at equal compute: masked samples per second of
whole training steps with M masked samples a step, made of M / K clips masked K times, against K = 1
(M clips masked once), for SupMAM-CLAP with the teacher online (HTS-AT runs on each clip of the
step) and with its cached map, and for AudioMAE (no teacher).

A step here is what one rank does per update minus the file reading: fbank of the clips' waveforms
(in the model, as ``task.fbank_in_dataloader=false``), the teacher (online) or its map's resize
(cached), encoder, decoder, head, loss, backward, AdamW. Reading fewer clips per step also saves
the data loader's work (``benchmarks.reading``, ``benchmarks.packed_reading``), not counted here.

    python -m benchmarks.clone_batch                      # CPU: tiny model, M = 16
    python -m benchmarks.clone_batch --size vitb --masked 8 --clones 1 2 4 8
    python -m benchmarks.clone_batch --device cuda --size vitb --masked 256 --dtype bf16
"""
from __future__ import annotations

import argparse

import torch

from . import common
from .pretraining_step import make_sample


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_common_args(parser)
    parser.add_argument("--size", default="tiny", choices=list(common.SIZES))
    parser.add_argument("--masked", type=int, default=16, help="masked samples per step (clips x K)")
    parser.add_argument("--clones", type=int, nargs="+", default=[1, 2, 4, 8], help="values of K")
    parser.add_argument("--rounds", type=int, default=4, help="timed rounds (each K stepped in turn)")
    args = parser.parse_args(argv)
    device = common.begin(args, seed=None, command=False)
    runs = []  # (label, K, model, criterion, optimizer, sample)
    for variant, modes in (("supmam_clap", ("online", "cached")), ("audiomae", (None,))):
        for mode in modes:
            for k in args.clones:
                if args.masked % k:
                    continue
                clips = args.masked // k
                torch.manual_seed(0)
                model, criterion, cfg, _ = common.build_variant(variant, args.size, overrides={"clone_batch": k})
                model.to(device).train()
                token_map = None
                if cfg.target == "teacher":
                    model.teacher.follow(device)
                    if mode == "cached":
                        with torch.no_grad():
                            audio = common.synthetic_batch(clips, common.CLIP_SECONDS, common.TEACHER_RATE).to(device)
                            token_map = model.teacher.token_map(audio).to(torch.float16)
                sample = make_sample(clips, 527, device, with_teacher_audio=(mode == "online"), token_map=token_map)
                optimizer = torch.optim.AdamW(model.parameters(), lr=2e-4, betas=(0.9, 0.95), weight_decay=0.05)
                label = variant + (f" ({mode})" if mode else "")
                runs.append((label, k, clips, model, criterion, optimizer, sample))

    def step(model, criterion, optimizer, sample):
        common.training_step(model, criterion, optimizer, sample, device, args.dtype)

    times = {id(run): [] for run in runs}
    for round_ in range(args.rounds + 1):  # round 0 warms up
        for run in runs:
            seconds = common.timed(lambda: step(*run[3:]), device)
            if round_:
                times[id(run)].append(seconds)
    print(f"\n{args.size}, {args.masked} masked samples a step, {args.dtype}; best of {args.rounds} rounds "
          "(every K stepped in turn)\n")
    print("| variant | K | clips a step | step (s) | masked samples/s | vs K=1 |")
    print("|---|---|---|---|---|---|")
    base = {}
    for run in runs:
        label, k, clips = run[:3]
        best = min(times[id(run)])
        rate = args.masked / best
        base.setdefault(label, rate if k == 1 else None)
        ratio = f"{rate / base[label]:.2f}x" if base[label] else ""
        print(f"| {label} | {k} | {clips} | {best:.3f} | {rate:.1f} | {ratio} |")
    print(f"\ncommand: {common.command_line(argv)}")


if __name__ == "__main__":
    main()
