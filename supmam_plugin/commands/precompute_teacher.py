"""``supmam-precompute-teacher``: run the frozen CLAP teacher once over a manifest and store its
native token maps, so long pretraining runs do not pay for the teacher every epoch.

    supmam-precompute-teacher DATA SPLIT --out-dir CACHE --clap-checkpoint 630k-audioset-best.pt \\
        [--clap-model HTSAT-tiny] [--batch-size 16] [--num-workers 4] [--device cuda]

then pretrain with ``task.teacher_cache=CACHE``. Each clip's first 10 s (at 48 kHz, read from the
file) are used, as in validation.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time

import torch
from omegaconf import OmegaConf

logger = logging.getLogger("supmam_plugin.precompute_teacher")


def precompute(data, split, out_dir, clap_checkpoint, clap_model="HTSAT-tiny", batch_size=16,
               num_workers=0, device="cpu", progress_every=50) -> str:
    """Fill ``{out_dir}/{split}.teacher.npy``; returns its path."""
    from fairseq import tasks

    from ..data.teacher_cache import cache_paths, mark_complete, open_for_writing
    from ..models.clap_teacher import ClapTeacher

    task = tasks.setup_task(OmegaConf.create({
        "_name": "supmam_pretraining", "data": data, "labels": None, "teacher_sample_rate": 48000,
        "random_crop": False,
    }))
    dataset = task.load_dataset(split)
    teacher = ClapTeacher(clap_checkpoint, clap_model, feature="tokens").to(device)
    if device.startswith("cuda"):
        teacher.half()
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=dataset.collater, shuffle=False
    )
    maps = None
    start, done = time.time(), 0
    for step, batch in enumerate(loader, start=1):
        token_map = teacher.token_map(batch["net_input"]["teacher_source"].to(device))  # (B, C, 2, 32)
        if maps is None:
            meta = {"manifest": dataset.manifest.path, "clap_checkpoint": clap_checkpoint, "clap_model": clap_model,
                    "teacher_seconds": dataset.teacher_samples / 48000, "layout": "(clip, channel, freq 2, time 32)"}
            maps = open_for_writing(out_dir, split, len(dataset), tuple(token_map.shape[1:]), meta)
        ids = batch["id"].numpy()
        maps[ids] = token_map.float().cpu().numpy().astype("float16")
        done += len(ids)
        if step % progress_every == 0 or done == len(dataset):
            rate = done / max(time.time() - start, 1e-9)
            logger.info(f"{split}: {done}/{len(dataset)} clips ({rate:.1f} clips/s)")
    maps.flush()
    mark_complete(out_dir, split)
    return cache_paths(out_dir, split)[0]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="folder with {split}.tsv")
    parser.add_argument("split")
    parser.add_argument("--out-dir", required=True, help="cache folder (task.teacher_cache)")
    parser.add_argument("--clap-checkpoint", required=True, help="LAION-CLAP .pt, or 'random' (tests only)")
    parser.add_argument("--clap-model", default="HTSAT-tiny", help="HTSAT-tiny or HTSAT-base")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import supmam_plugin  # noqa: F401  registers the task

    path = precompute(args.data, args.split, args.out_dir, args.clap_checkpoint, args.clap_model,
                      args.batch_size, args.num_workers, args.device)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
