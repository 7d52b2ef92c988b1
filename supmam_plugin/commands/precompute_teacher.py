"""``supmam-precompute-teacher``: run the frozen CLAP teacher once over a manifest and store its
native token maps, so long pretraining runs do not pay for the teacher every epoch.

    supmam-precompute-teacher DATA SPLIT --out-dir CACHE --clap-checkpoint 630k-audioset-best.pt \\
        [--clap-model HTSAT-tiny] [--batch-size 16] [--num-workers 4] [--device cuda]

then pretrain with ``task.teacher_cache=CACHE``. Each clip's first 10 s (at 48 kHz, read from the
file) are used, as in validation. A killed run continues where it stopped when run again (the same
command). ``--shard K/N`` splits the clips over N processes, GPUs or machines writing one cache;
the cache is complete, and readable, once every shard has finished. The cache records the
teacher (checkpoint SHA-256) and manifest (SHA-256) that made it; continuing it with another, or
pretraining with another teacher, is refused.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time

import numpy as np
import torch
from omegaconf import OmegaConf

from ..data.teacher_cache import Shard, cache_paths, file_sha256, finish, open_for_writing, record

logger = logging.getLogger("supmam_plugin.precompute_teacher")


def precompute(data, split, out_dir, clap_checkpoint, clap_model="HTSAT-tiny", batch_size=16,
               num_workers=0, device="cpu", progress_every=50, shard: Shard = Shard()) -> str:
    """Fill this shard's clips of ``{out_dir}/{split}.teacher.npy``, skipping those already marked
    done (a rerun continues a killed one); marks the cache complete when every shard is done.
    Returns the array's path."""
    from fairseq import tasks

    from ..models.clap_teacher import ClapTeacher, teacher_identity

    task = tasks.setup_task(OmegaConf.create({
        "_name": "supmam_pretraining", "data": data, "labels": None, "teacher_sample_rate": 48000,
        "random_crop": False,
    }))
    dataset = task.load_dataset(split)
    teacher = ClapTeacher(clap_checkpoint, clap_model, feature="tokens").to(device)
    if device.startswith("cuda"):
        teacher.half()
    with torch.no_grad():  # the map's shape, from one silent clip
        map_shape = tuple(teacher.token_map(torch.zeros(1, dataset.teacher_samples, device=device)).shape[1:])
    meta = {**teacher_identity(clap_checkpoint, clap_model), "clap_checkpoint": clap_checkpoint,
            "manifest": dataset.manifest.path, "manifest_sha256": file_sha256(dataset.manifest.path),
            "teacher_seconds": dataset.teacher_samples / 48000, "layout": "(clip, channel, freq 2, time 32)"}
    maps, done = open_for_writing(out_dir, split, len(dataset), map_shape, meta, shard)
    mine = shard.clips(len(dataset))
    todo = mine[np.asarray(done)[mine] == 0]
    logger.info(f"{split} shard {shard}: {len(mine) - len(todo)} of {len(mine)} clips already done, {len(todo)} to go")
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, todo.tolist()), batch_size=batch_size,
                                         num_workers=num_workers, collate_fn=dataset.collater, shuffle=False)
    start, computed = time.time(), 0
    for step, batch in enumerate(loader, start=1):
        with torch.no_grad():
            token_map = teacher.token_map(batch["net_input"]["teacher_source"].to(device))  # (B, C, 2, 32)
        record(maps, done, batch["id"].numpy(), token_map.float().cpu().numpy().astype("float16"))
        computed += len(batch["id"])
        if step % progress_every == 0 or computed == len(todo):
            rate = computed / max(time.time() - start, 1e-9)
            logger.info(f"{split} shard {shard}: {len(mine) - len(todo) + computed}/{len(mine)} clips, "
                        f"{rate:.2f} clips/s, {(len(todo) - computed) / max(rate, 1e-9) / 60:.1f} min left")
    complete, missing = finish(out_dir, split)
    logger.info(f"{split}: cache complete" if complete else f"{split}: shard {shard} done; {missing}")
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
    parser.add_argument("--shard", type=Shard.parse, default=Shard(),
                        help="K/N: compute only clips i with i %% N == K, into the same cache (one process, "
                             "GPU or machine per shard, sharing --out-dir); the last shard to finish marks it complete")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import supmam_plugin  # noqa: F401  registers the task

    path = precompute(args.data, args.split, args.out_dir, args.clap_checkpoint, args.clap_model,
                      args.batch_size, args.num_workers, args.device, shard=args.shard)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
