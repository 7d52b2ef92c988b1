"""CLAP training step time (model ``clap``: ViT tower, HTS-AT tower) as a ratio to the ``supmam``
pretraining step at the same sizes, in one run.

Each configuration is the real model and criterion (``ClapModel`` + ``ClapContrastiveCriterion``;
``SupmamModel`` + ``SupmamCriterion``, settings of examples/supmam/pretraining/supmam.yaml) with
torch.optim.AdamW, stepping a batch of B real-looking 10-s clips (16 kHz; 48 kHz for HTS-AT, as
the htsat recipe reads them) with captions of 16 pieces. The ViT tower has the supmam encoder's
size (--sizes: vitb 12 x 768 or tiny 2 x 192), the caption tower the recipes' (4 x 256); HTS-AT is
HTSAT-tiny whatever the size (LAION-CLAP's 630k releases). The configurations are stepped in turn,
round after round, so that the ratios compare steps taken under the same load.

    python -m benchmarks.clap_step                      # CPU: B=2, sizes tiny and vitb
    python -m benchmarks.clap_step --device cuda --batch 32 --dtype bf16
"""
from __future__ import annotations

import argparse
import statistics
import sys

import torch

from . import common
from .common import CLIP_SECONDS, SAMPLE_RATE, TEACHER_RATE

CAPTION_PIECES = 16
VOCAB = 1000


class Task:
    """What ClapModel.build_model and the criterion read of the clap_pretraining task."""

    def __init__(self, sample_rate: int):
        from types import SimpleNamespace

        self.cfg = SimpleNamespace(target_frames=1024, max_text_tokens=64, sample_rate=sample_rate, multi_label=False)
        self.tokenizer = SimpleNamespace(vocab_size=VOCAB)


def clap_config(size: str, tower: str):
    from supmam_plugin.models.clap_model import ClapConfig

    cfg = ClapConfig(audio_tower=tower, input_frames=1024, text_layers=4, text_embed_dim=256, text_heads=4)
    for key, value in common.SIZES[size].items():
        if key.startswith("encoder_"):
            setattr(cfg, key, value)
    return cfg


def clap_run(size: str, tower: str, batch: int, device):
    from supmam_plugin.criterions.clap_contrastive import ClapContrastiveConfig, ClapContrastiveCriterion
    from supmam_plugin.models.clap_model import ClapModel

    rate = TEACHER_RATE if tower == "htsat" else SAMPLE_RATE
    task = Task(rate)
    model = ClapModel.build_model(clap_config(size, tower), task).to(device).train()
    criterion = ClapContrastiveCriterion(ClapContrastiveConfig(), task)
    source = common.synthetic_batch(batch, CLIP_SECONDS, rate, 0)
    tokens = torch.randint(4, VOCAB, (batch, CAPTION_PIECES))
    sample = {"id": torch.arange(batch), "net_input": {
        "source": source.to(device), "source_lengths": torch.full((batch,), source.size(1), device=device),
        "text_tokens": tokens.to(device)}}
    return model, criterion, sample


def supmam_run(size: str, batch: int, device):
    from .pretraining_step import make_sample

    model, criterion, _, _ = common.build_variant("supmam", size, 527)
    return model.to(device).train(), criterion, make_sample(batch, 527, device, with_teacher_audio=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_common_args(parser)
    parser.add_argument("--sizes", nargs="+", default=["tiny", "vitb"], choices=list(common.SIZES))
    parser.add_argument("--batch", type=int, default=0, help="clips per step (default: 2 on CPU, 32 on GPU)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (one untimed round first)")
    args = parser.parse_args()
    device = common.begin(args, seed=None, command=False)
    args.batch = common.default_batch(args.batch, device)
    print(f"batch {args.batch}, {CLIP_SECONDS:.0f}-s clips, {args.dtype}, {args.rounds} rounds")
    for size in args.sizes:
        runs = {"supmam": supmam_run(size, args.batch, device),
                f"clap, ViT tower ({size})": clap_run(size, "vit", args.batch, device),
                "clap, HTS-AT tower (HTSAT-tiny)": clap_run(size, "htsat", args.batch, device)}
        optimizers = {name: torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
                      for name, (model, _, _) in runs.items()}
        times = {name: [] for name in runs}

        def step(name):
            model, criterion, sample = runs[name]
            with common.autocast(device, args.dtype):
                loss, _, _ = criterion(model, sample)
            loss.backward()
            optimizers[name].step()
            optimizers[name].zero_grad(set_to_none=True)

        for round_index in range(args.rounds + 1):
            for name in runs:
                seconds = common.timed(lambda: step(name), device)
                if round_index:
                    times[name].append(seconds)
            print(f"[{size}] round {round_index}/{args.rounds}", flush=True)
        base = statistics.median(times["supmam"])
        print(f"\n## size {size} (encoder of supmam and the ViT tower)\n")
        print("| step | s/step (median) | clips/s | parameters (M) | / supmam step |")
        print("|---|---|---|---|---|")
        for name, values in times.items():
            median = statistics.median(values)
            params = sum(p.numel() for p in runs[name][0].parameters() if p.requires_grad) / 1e6
            print(f"| {name} | {median:.3f} | {args.batch / median:.2f} | {params:.1f} | {median / base:.2f}x |")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
