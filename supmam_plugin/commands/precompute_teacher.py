"""``supmam-precompute-teacher``: run a frozen teacher once over a manifest and store its native
maps, so long pretraining runs do not pay for the teacher every epoch.

    supmam-precompute-teacher DATA SPLIT --out-dir CACHE --teacher laion_clap \\
        --teacher-checkpoint 630k-audioset-best.pt [--clap-model HTSAT-tiny] \\
        [--batch-size 16] [--num-workers 4] [--device cuda]
    supmam-precompute-teacher DATA SPLIT --out-dir CACHE --teacher checkpoint_encoder \\
        --teacher-checkpoint finetuned/checkpoint_best.pt [--teacher-layer -1]

then pretrain with the same teacher options (``model.teacher=... model.teacher_checkpoint=...``) and
``task.teacher_cache=CACHE``. Each clip's start is used (what the teacher hears: 10 s at 48 kHz read
from the file for LAION-CLAP), as in validation. A killed run continues where it stopped when run
again (the same command). ``--shard K/N`` splits the clips over N processes, GPUs or machines writing
one cache; the cache is complete, and readable, once every shard has finished. The cache records the
teacher (name, variant, checkpoint SHA-256) and manifest (SHA-256) that made it; continuing it with
another, or pretraining with another teacher, is refused.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time

import numpy as np
import torch
from omegaconf import OmegaConf

from ..core.checkpoints import CheckpointError
from ..core.manifest import ManifestError
from ..core.packed_audio import PackedAudioError, clip_list_sha256
from ..data.teacher_cache import Shard, cache_paths, check_finite, finish, open_for_writing, record
from ..core.checkpoints.legacy import TEACHER_ALIASES
from ..teachers.teacher import TEACHERS

logger = logging.getLogger("supmam_plugin.precompute_teacher")


def precompute(data, split, out_dir, teacher_cfg, batch_size=16, num_workers=0, device="cpu",
               progress_every=50, shard: Shard = Shard()) -> str:
    """Fill this shard's clips of ``{out_dir}/{split}.teacher.npy`` with the maps of the teacher
    ``teacher_cfg`` names (a :class:`~supmam_plugin.teachers.TeacherConfig`), skipping those already
    marked done (a rerun continues a killed one); marks the cache complete when every shard is done.
    Returns the array's path."""
    from fairseq import tasks

    from ..data.teacher_input_dataset import TeacherInputDataset
    from ..teachers import build_teacher

    teacher = build_teacher(teacher_cfg, grid=(1, 1)).follow(torch.device(device))  # the grid is not used here
    task = tasks.setup_task(OmegaConf.create({
        "_name": "supmam_pretraining", "data": data, "labels": None, "random_crop": False,
    }))
    dataset = TeacherInputDataset(task.load_dataset(split), teacher.sample_rate, teacher.num_samples)
    with torch.no_grad():  # the map's shape, from one silent clip
        map_shape = tuple(teacher.token_map(torch.zeros(1, teacher.num_samples, device=device)).shape[1:])
    manifest = dataset.manifest
    meta = {**teacher.identity(), "checkpoint": teacher.checkpoint, "manifest": manifest.path,
            "manifest_sha256": clip_list_sha256(manifest.path), "seconds": teacher.num_samples / teacher.sample_rate,
            "sample_rate": teacher.sample_rate, "layout": "(clip, channel, frequency rows, time steps)"}
    maps, done = open_for_writing(out_dir, split, len(dataset), map_shape, meta, shard)
    mine = shard.clips(len(dataset))
    todo = mine[np.asarray(done)[mine] == 0]
    logger.info(f"{split} shard {shard}: {len(mine) - len(todo)} of {len(mine)} clips already done, {len(todo)} to go")
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, todo.tolist()), batch_size=batch_size,
                                         num_workers=num_workers, collate_fn=dataset.collater, shuffle=False)
    start, computed = time.time(), 0
    for step, batch in enumerate(loader, start=1):
        net_input = batch["net_input"]
        with torch.no_grad():
            token_map = teacher.token_map(net_input["teacher_source"].to(device), net_input["teacher_source_lengths"])
        rows = token_map.float().cpu().numpy().astype("float16")
        for i, clip in enumerate(batch["id"].tolist()):  # never write a NaN or a value beyond float16
            check_finite(rows[i], f"{manifest.where(clip)} (the teacher's map of this clip, before caching)")
        record(maps, done, batch["id"].numpy(), rows)
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
    parser.add_argument("--teacher", default="laion_clap", choices=sorted(TEACHERS) + sorted(TEACHER_ALIASES),
                        help="model.teacher: laion_clap (LAION-CLAP's HTS-AT) or supmam (a plugin or AudioMAE encoder)")
    parser.add_argument("--teacher-checkpoint", "--clap-checkpoint", required=True,
                        help="model.teacher_checkpoint: laion_clap: a LAION-CLAP .pt, a transformers CLAP folder, or "
                             "'random' (tests only); "
                             "supmam: a .pt of this plugin or an AudioMAE .pth")
    parser.add_argument("--clap-model", default="HTSAT-tiny", help="laion_clap: HTSAT-tiny or HTSAT-base")
    parser.add_argument("--clap-front-end", default="checkpoint", choices=["checkpoint", "transformers"],
                        help="laion_clap from a transformers CLAP folder: the mel it hears (model.clap_front_end)")
    parser.add_argument("--teacher-layer", type=int, default=-1,
                        help="supmam: the encoder block whose output is the target (-1: the last)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--shard", type=Shard.parse, default=Shard(),
                        help="K/N: compute only clips i with i %% N == K, into the same cache (one process, "
                             "GPU or machine per shard, sharing --out-dir); the last shard to finish marks it complete")
    args = parser.parse_args(argv)
    import supmam_plugin  # noqa: F401  registers the task
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logger.setLevel(logging.INFO)  # importing fairseq has configured the root logger already (at WARNING)
    from ..teachers import TeacherConfig

    teacher_cfg = TeacherConfig(teacher=args.teacher, teacher_checkpoint=args.teacher_checkpoint,
                                clap_model=args.clap_model, teacher_layer=args.teacher_layer,
                                clap_front_end=args.clap_front_end)
    try:
        path = precompute(args.data, args.split, args.out_dir, teacher_cfg, args.batch_size, args.num_workers,
                          args.device, shard=args.shard)
    except (ManifestError, CheckpointError, PackedAudioError) as e:  # TeacherCacheError is a ManifestError
        print(f"supmam-precompute-teacher: error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
