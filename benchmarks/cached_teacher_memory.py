"""What a run with a teacher cache (``task.teacher_cache``) saves by not building HTS-AT: peak RSS of a
fresh process that builds the supmam_clap model and takes one training step from a cached map,
with the teacher built whole (before issue 26) and left unbuilt (``teacher_cached``, what
``supmam_pretraining`` does with a cache), each in its own process, in one run.

    python -m benchmarks.cached_teacher_memory [--size vitb] [--batch 2]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from . import common


def one_process(size: str, batch: int, teacher_cached: bool) -> dict:
    """Runs in the child: build, one step, report."""
    import resource

    import torch

    from .pretraining_step import make_sample
    from supmam_plugin.criterions.supmam_loss import SupmamCriterion, SupmamCriterionConfig
    from supmam_plugin.models.supmam_model import SupmamConfig, SupmamModel

    torch.manual_seed(0)
    model_settings, criterion_settings = common.recipe("supmam_clap")
    model_settings.update(common.SIZES[size], teacher_checkpoint="random")
    model = SupmamModel(SupmamConfig(**model_settings), num_classes=527, teacher_cached=teacher_cached).train()
    criterion = SupmamCriterion(SupmamCriterionConfig(**criterion_settings), task=None)
    token_map = torch.randn(batch, model.teacher.token_width, 2, 32).half()
    sample = make_sample(batch, 527, torch.device("cpu"), with_teacher_audio=False, token_map=token_map)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-4)
    loss, _, _ = criterion(model, sample)
    loss.backward()
    optimizer.step()
    return {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "teacher_parameters": sum(p.numel() for p in model.teacher.parameters()),
            "htsat_imported": any(name.startswith("laion_clap.clap_module.htsat") for name in sys.modules)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="vitb", choices=list(common.SIZES))
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--child", choices=["built", "cached"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(one_process(args.size, args.batch, args.child == "cached")))
        return
    common.begin(argparse.Namespace(device="cpu", dtype="fp32", threads=1), seed=None, command=False)
    rows = {}
    for mode in ("built", "cached"):
        out = common.run_module(__spec__.name, ["--size", args.size, "--batch", str(args.batch), "--child", mode],
                                stdout=subprocess.PIPE, text=True, check=True,
                                env={**os.environ, "OMP_NUM_THREADS": "1"})
        rows[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"\nsupmam_clap {args.size}, batch {args.batch}, targets from a cached map, one training step:\n")
    print("| teacher | peak RSS (MB) | teacher parameters | laion-clap's HTS-AT imported |")
    print("|---|---|---|---|")
    for mode, row in rows.items():
        label = "built whole (before)" if mode == "built" else "teacher_cached (after)"
        print(f"| {label} | {row['peak_rss_mb']:.0f} | {row['teacher_parameters']:,} | {row['htsat_imported']} |")
    saved = rows["built"]["peak_rss_mb"] - rows["cached"]["peak_rss_mb"]
    print(f"\nsaved: {saved:.0f} MB peak RSS ({rows['cached']['peak_rss_mb'] / rows['built']['peak_rss_mb']:.2f}x)")


if __name__ == "__main__":
    main()
