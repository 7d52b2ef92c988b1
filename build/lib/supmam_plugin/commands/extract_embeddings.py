"""``supmam-extract-embeddings``: encoder embeddings of audio files, as numpy arrays.

    supmam-extract-embeddings CHECKPOINT (--manifest DATA/SPLIT.tsv | FILE [FILE ...]) --out-dir OUT \\
        [--patches] [--layers 3,7,11] [--frames [--frame-layer N]] [--batch-size 16] [--device cpu] [--dtype float32]

CHECKPOINT: a supmam pretraining or supmam_classifier fine-tuning checkpoint (.pt), or AudioMAE's
pretrained.pth / finetuned.pth. Writes, row i for input file i:

    OUT/clip.npy       (N, D) float32   mean of the final (normed) encoder outputs over the patches
    OUT/patches.npy    (N, L, D) float16  the final encoder outputs (--patches)
    OUT/layer_{i}.npy  (N, L, D) float16  output of block i, 0-based, before the final norm (--layers)
    OUT/frames.npy     (F, D) float16   frame embeddings of all files, one every 160 ms (--frames;
                                        file i's are rows frame_offsets[i]:frame_offsets[i + 1])
    OUT/frame_offsets.npy (N + 1,) int64, OUT/frame_times_ms.npy (F,) float32: their timestamps
    OUT/files.txt      the input paths, one a line, in row order

Clips longer than the encoder's window (10.24 s) are cut into windows and averaged (see
supmam_plugin.inference.encoder). Every file is checked before the model runs.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch


class UsageError(ValueError):
    pass


def _parse_layers(text: str) -> list[int]:
    if not text:
        return []
    try:
        return sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise UsageError(f"--layers {text!r}: give comma-separated block numbers, e.g. 3,7,11") from None


def _inputs(args) -> tuple[list[str], list[str] | None]:
    """(paths, manifest 'file:line' of each path or None); checks that every file exists."""
    from ..core.audio import AudioFileError
    from ..core.manifest import read_manifest

    if args.manifest and args.files:
        raise UsageError("give either --manifest or FILEs, not both")
    if args.manifest:
        manifest = read_manifest(args.manifest)
        paths = [manifest.audio_path(i) for i in range(len(manifest))]
        where = [manifest.where(i) for i in range(len(manifest))]
    elif args.files:
        paths, where = list(args.files), None
    else:
        raise UsageError("no input: give --manifest DATA/SPLIT.tsv or audio FILEs")
    missing = [i for i, p in enumerate(paths) if not os.path.isfile(p)]
    if missing:
        shown = "; ".join(f"{where[i]}: {paths[i]}" if where else paths[i] for i in missing[:5])
        more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
        raise AudioFileError(f"{len(missing)} audio file(s) not found: {shown}{more}")
    return paths, where


DTYPES = {"float32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class FrameWriter:
    """Frame embeddings of files of any lengths, streamed to disk (their total count is known only
    at the end): rows go to a raw float16 file, then into ``frames.npy``."""

    def __init__(self, out_dir: str, dim: int):
        self.out_dir, self.dim = out_dir, dim
        self.raw_path = os.path.join(out_dir, "frames.f16.tmp")
        self.raw = open(self.raw_path, "wb")
        self.offsets, self.times = [0], []

    def add(self, frames: list, times: list) -> None:
        for rows, stamps in zip(frames, times):
            self.raw.write(np.ascontiguousarray(rows, dtype=np.float16).tobytes())
            self.offsets.append(self.offsets[-1] + len(rows))
            self.times.append(np.asarray(stamps, dtype=np.float32))

    def finish(self) -> dict[str, str]:
        self.raw.close()
        paths = {k: os.path.join(self.out_dir, f"{k}.npy") for k in ("frames", "frame_offsets", "frame_times_ms")}
        total = self.offsets[-1]
        array = np.lib.format.open_memmap(paths["frames"], mode="w+", dtype=np.float16, shape=(total, self.dim))
        if total:
            array[:] = np.memmap(self.raw_path, dtype=np.float16, mode="r", shape=(total, self.dim))
        array.flush()
        del array
        os.remove(self.raw_path)
        np.save(paths["frame_offsets"], np.asarray(self.offsets, dtype=np.int64))
        np.save(paths["frame_times_ms"], np.concatenate(self.times) if self.times else np.zeros(0, np.float32))
        return paths


def extract(checkpoint, paths, out_dir, where=None, patches=False, layers=(), batch_size=16, device="cpu",
            progress_every=100, log=print, dtype="float32", frames=False, frame_layer=None) -> dict[str, str]:
    """Write the arrays and files.txt to ``out_dir``; returns {name: path written}."""
    from ..inference.encoder import load_encoder

    encoder = load_encoder(checkpoint, device=device, dtype=DTYPES[dtype])
    for i in layers:
        if not 0 <= i < encoder.num_layers:
            raise UsageError(f"--layers: block {i} does not exist; {checkpoint} has blocks 0..{encoder.num_layers - 1}")
    os.makedirs(out_dir, exist_ok=True)
    n, d, L = len(paths), encoder.embed_dim, encoder.num_patches
    specs = {"clip": ((n, d), np.float32)}
    if patches:
        specs["patches"] = ((n, L, d), np.float16)
    for i in layers:
        specs[f"layer_{i}"] = ((n, L, d), np.float16)
    written = {k: os.path.join(out_dir, f"{k}.npy") for k in specs}
    arrays = {k: np.lib.format.open_memmap(written[k], mode="w+", dtype=dt, shape=shape)
              for k, (shape, dt) in specs.items()}
    frame_rows = FrameWriter(out_dir, d) if frames else None
    start, done, next_report = time.time(), 0, progress_every
    for first, out in encoder.iter_files(paths, layers, patches, batch_size, where=where, frames=frames,
                                         frame_layer=frame_layer):
        count = len(out["clip"])
        for k, array in arrays.items():
            array[first:first + count] = out[k]
        if frame_rows is not None:
            frame_rows.add(out["frames"], out["frame_times_ms"])
        done = first + count
        if done >= next_report or done == n:
            log(f"{done}/{n} files ({done / max(time.time() - start, 1e-9):.1f} files/s)", flush=True)
            next_report = (done // progress_every + 1) * progress_every
    for array in arrays.values():
        array.flush()
    del arrays
    if frame_rows is not None:
        written.update(frame_rows.finish())
    written["files"] = os.path.join(out_dir, "files.txt")
    with open(written["files"], "w", encoding="utf-8") as f:
        for p in paths:
            f.write(f"{p}\n")
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="supmam-extract-embeddings", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="supmam / supmam_classifier .pt, or AudioMAE .pth")
    parser.add_argument("files", nargs="*", metavar="FILE", help="audio files (or use --manifest)")
    parser.add_argument("--manifest", help="fairseq manifest DATA/SPLIT.tsv (root line + path<TAB>samples)")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--patches", action="store_true", help="also write patches.npy (N, L, D) float16")
    parser.add_argument("--layers", default="", help="blocks whose outputs to write, 0-based, e.g. 3,7,11")
    parser.add_argument("--frames", action="store_true",
                        help="also write frame embeddings (one every 160 ms) with their offsets and timestamps")
    parser.add_argument("--frame-layer", type=int, default=None,
                        help="frames from block N's output (0-based) instead of the final outputs")
    parser.add_argument("--batch-size", type=int, default=16, help="10.24 s windows per encoder call")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES),
                        help="encoder weights' precision (bf16/fp16 for speed on a GPU); the fbank is float32")
    parser.add_argument("--progress-every", type=int, default=100, help="print progress every N files")
    args = parser.parse_args(argv)

    from ..core.audio import AudioFileError
    from ..core.manifest import ManifestError
    from ..core.checkpoints import CheckpointError

    try:
        layers = _parse_layers(args.layers)
        paths, where = _inputs(args)
        written = extract(args.checkpoint, paths, args.out_dir, where, args.patches, layers, args.batch_size,
                          args.device, max(1, args.progress_every), dtype=args.dtype, frames=args.frames,
                          frame_layer=args.frame_layer)
    except (UsageError, AudioFileError, ManifestError, CheckpointError, FileNotFoundError, ValueError) as e:
        print(f"supmam-extract-embeddings: error: {e}", file=sys.stderr)
        return 1
    for name, path in written.items():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
