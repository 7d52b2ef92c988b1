"""Step time of the current decoder against an older checkout's, in ONE process (paired rounds).

The machine may be shared, so back-to-back runs of ``pretraining_step.py`` at two commits are
compared under different loads. This script builds, for each variant, the current model ("after")
and the same model with an older checkout's ``models/window_decoder.py`` and head ("before"; e.g.
commit 458ab0c: timm's Swin V1 blocks, a LayerNorm after every head, no [CLS], grid positions),
and steps them in turn, round after round (``--steps-per-visit`` steps per visit, the last timed).
The ratio after/before of each round is taken under the same load; their median is the figure.

    git worktree add /tmp/old458 458ab0c
    python benchmarks/decoder_ab.py --old-repo /tmp/old458 --variants audiomae supmam_clap --batch 4
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (puts the repository on sys.path)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from pretraining_step import cached_token_map, make_optimizer, make_sample  # noqa: E402


# The helpers an old window_decoder.py imports relatively (``from .masking import ...``) have since
# moved to core/; their functions are unchanged, so the old names point at the new modules.
MOVED_HELPERS = {"masking": "supmam_plugin.core.masking", "positions": "supmam_plugin.core.positions",
                 "vit_encoder": "supmam_plugin.core.vit"}


def old_decoder_class(old_repo: str):
    """``WindowDecoder`` of ``old_repo``'s window_decoder.py, its relative imports resolved against
    the current package (masking, positions, vit_encoder: unchanged helpers, now in core/)."""
    for old_name, new_name in MOVED_HELPERS.items():
        sys.modules.setdefault(f"supmam_plugin.models.{old_name}", importlib.import_module(new_name))
    path = os.path.join(old_repo, "supmam_plugin", "models", "window_decoder.py")
    spec = importlib.util.spec_from_file_location("supmam_plugin.models._old_window_decoder", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.WindowDecoder


def build_pair(variant: str, size: str, num_classes: int, old_decoder, device, after_cls: bool = True):
    """(before, after): (model, criterion, cfg) each. "after" is the recipe with AudioMAE's
    backbone settings ([CLS] unless ``after_cls`` is false, audiomae positions); "before" swaps in
    the old decoder and head, without [CLS]."""
    after = common.build_variant(variant, size, num_classes, {"cls_token": after_cls, "position_layout": "audiomae"})
    before = common.build_variant(variant, size, num_classes, {"cls_token": False, "position_layout": "grid"})
    model, cfg = before[0], before[2]
    torch.manual_seed(0)
    model.decoder = old_decoder(
        in_dim=cfg.encoder_embed_dim, width=cfg.decoder_embed_dim, depth=cfg.decoder_layers, heads=cfg.decoder_heads,
        grid=model.encoder.grid, window=(cfg.decoder_window_time, cfg.decoder_window_freq),
        shift=(cfg.decoder_shift_time, cfg.decoder_shift_freq), mlp_ratio=cfg.mlp_ratio,
    )
    linear = model.head[0]
    model.head = nn.Sequential(linear, nn.LayerNorm(linear.out_features))  # the old head: LayerNorm on every target
    pair = []
    for m, criterion, c, _ in (before, after):
        m.to(device).train()
        if c.target == "teacher":
            m.teacher.follow(device)  # as the model does on first use, so the cached maps come from there
        pair.append((m, criterion, c))
    return pair


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_common_args(parser)
    parser.add_argument("--old-repo", required=True, help="a checkout of the older commit (e.g. 458ab0c)")
    parser.add_argument("--variants", nargs="+", default=["audiomae", "supmam_clap"], choices=common.VARIANTS)
    parser.add_argument("--size", default="vitb", choices=list(common.SIZES))
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=6, help="timed rounds")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    parser.add_argument("--steps-per-visit", type=int, default=2)
    parser.add_argument("--num-classes", type=int, default=527)
    parser.add_argument("--attention", nargs="+", default=["auto"], choices=["auto", "matmul", "sdpa"],
                        help="the current decoder's attention implementation(s): one 'after' model each")
    parser.add_argument("--also-without-cls", action="store_true",
                        help="also time the current model without [CLS] (the decoder's share of the change alone)")
    args = parser.parse_args()
    device = common.setup(args)
    print(common.machine_summary(device))
    print(f"command: {' '.join(sys.argv)}")
    old_decoder = old_decoder_class(args.old_repo)
    configs = []  # (name, model, criterion, optimizer, sample)
    for variant in args.variants:
        models = list(zip(("before", "after"), build_pair(variant, args.size, args.num_classes, old_decoder, device)))
        for attention in args.attention[1:]:  # more 'after' models, one per attention implementation
            models.append((f"after-{attention}", build_pair(variant, args.size, args.num_classes, old_decoder,
                                                             device)[1]))
        if args.attention[0] != "auto" or len(args.attention) > 1:
            models[1] = (f"after-{args.attention[0]}", models[1][1])
        for label, (model, _, _) in models:
            if label.startswith("after-") and label[len("after-"):] in ("auto", "matmul", "sdpa"):
                for block in model.decoder.blocks:
                    block.attn.attention = label[len("after-"):]
        if args.also_without_cls:
            models.append(("after-no-cls", build_pair(variant, args.size, args.num_classes, old_decoder, device,
                                                      after_cls=False)[1]))
        for label, (model, criterion, cfg) in models:
            token_map = cached_token_map(model, args.batch) if cfg.target == "teacher" else None
            sample = make_sample(args.batch, args.num_classes, device, with_teacher_audio=False, token_map=token_map)
            configs.append((f"{variant} {label}", model, criterion, make_optimizer("torch", model), sample))
            print(f"  {variant} {label}: {common.count_parameters(model) / 1e6:.2f} M parameters, decoder "
                  f"{type(model.decoder.blocks[0]).__name__ if len(model.decoder.blocks) else '-'} x "
                  f"{len(model.decoder.blocks)}, cls_token {cfg.cls_token}")

    def step(model, criterion, optimizer, sample):
        common.training_step(model, criterion, optimizer, sample, device, args.dtype)

    times = {name: [] for name, *_ in configs}
    start = time.time()
    for round_index in range(args.warmup + args.rounds):
        line = []
        for name, model, criterion, optimizer, sample in configs:
            for _ in range(args.steps_per_visit - 1):
                step(model, criterion, optimizer, sample)
            seconds = common.timed(lambda: step(model, criterion, optimizer, sample), device)
            if round_index >= args.warmup:
                times[name].append(seconds)
            line.append(f"{name} {seconds:.3f}s")
        label = "timed" if round_index >= args.warmup else "warm-up"
        print(f"  round {round_index + 1}/{args.warmup + args.rounds} ({label}): " + " | ".join(line), flush=True)
    print(f"\n--- size {args.size}, batch {args.batch}, {args.dtype}, device {device}, load average at the end "
          f"{common.load_average()}, wall {time.time() - start:.0f} s ---")
    for variant in args.variants:
        before = times[f"{variant} before"]
        for label in [n[len(variant) + 1:] for n in times if n.startswith(variant + " after")]:
            after = times[f"{variant} {label}"]
            ratios = [a / b for a, b in zip(after, before)]
            print(f"{variant:12s} before median {statistics.median(before):.3f} s best {min(before):.3f} s | {label} "
                  f"median {statistics.median(after):.3f} s best {min(after):.3f} s | {label}/before: paired median "
                  f"{statistics.median(ratios):.3f}, best/best {min(after) / min(before):.3f}, per round "
                  + " ".join(f"{r:.3f}" for r in ratios))


if __name__ == "__main__":
    main()
