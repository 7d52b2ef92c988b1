"""Linear probes of encoders and the MFCC baseline on a manifest folder's labelled splits.

    splits = read_labelled_splits("data/demo")                       # train / valid / test
    probe_checkpoint("pretrain/checkpoint_last.pt", splits)          # the pretrained encoder
    probe_checkpoint("pretrain/checkpoint_last.pt", splits, random_init=True)  # its random twin
    mfcc_baseline(splits)

Each returns a row (dict): name, kind ("pretrained" / "random_init" / "mfcc"), source, metric,
C (chosen on the valid split), the score (%) of every split, valid score per C, clips per split,
feature size and seconds. An encoder's clip embedding is the mean of its final (normed) patch
tokens, or with ``layer`` the mean of block ``layer``'s outputs (0-based, before the final norm).
"""
from __future__ import annotations

import os
import time
from typing import Callable, Sequence

import numpy as np

from .labelled_splits import LabelledSplit
from .logistic_probe import DEFAULT_C_GRID, fit_probe
from .mfcc import MfccConfig, mfcc_features

Log = Callable[..., None]


def _quiet(*args, **kwargs) -> None:
    pass


def encoder_features(encoder, split: LabelledSplit, layer: int | None = None, batch_size: int = 16,
                     log: Log = _quiet, label: str = "") -> np.ndarray:
    """(N, D) clip embeddings of a split's files (see the module docstring), with progress."""
    layers = () if layer is None else (layer,)
    paths, where = split.paths, split.where
    out = np.zeros((len(paths), encoder.embed_dim), dtype=np.float32)
    start, next_report = time.time(), 100
    for first, part in encoder.iter_files(paths, layers, batch_size=batch_size, where=where):
        values = part["clip"] if layer is None else part[f"layer_{layer}"].mean(axis=1)
        out[first:first + len(values)] = values
        done = first + len(values)
        if done >= next_report or done == len(paths):
            log(f"[probe] {label}: {split.name} {done}/{len(paths)} clips "
                f"({done / max(time.time() - start, 1e-9):.1f} clips/s)", flush=True)
            next_report = (done // 100 + 1) * 100
    return out


def probe_features(name: str, kind: str, source: str, features: dict[str, np.ndarray],
                   splits: dict[str, LabelledSplit], multi_label: bool, c_grid, train: str, valid: str,
                   seconds_before: float = 0.0) -> dict:
    """Fit the probe on ``features`` ({split: (N, D)}) and describe it as a result row."""
    start = time.time()
    targets = {s: splits[s].targets(multi_label) for s in features}
    found = fit_probe(features, targets, multi_label, c_grid, train, valid)
    return {
        "name": name, "kind": kind, "source": source, "metric": found.metric, "C": found.C,
        **{s: round(v, 3) for s, v in found.scores.items()},
        "valid_by_C": {str(c): round(v, 3) for c, v in found.valid_by_C.items()},
        "clips": {s: len(splits[s]) for s in features},
        "feature_dim": int(next(iter(features.values())).shape[1]),
        "seconds": round(seconds_before + time.time() - start, 1),
    }


def probe_encoder(encoder, splits: dict[str, LabelledSplit], name: str, kind: str = "pretrained",
                  multi_label: bool = False, c_grid=DEFAULT_C_GRID, train: str = "train", valid: str = "valid",
                  layer: int | None = None, batch_size: int = 16, log: Log = _quiet) -> dict:
    """The probe row of a loaded :class:`supmam_plugin.inference.encoder.AudioEncoder` on every split."""
    if layer is not None and not 0 <= layer < encoder.num_layers:
        raise ValueError(f"--layer {layer}: {encoder.source} has blocks 0..{encoder.num_layers - 1}")
    start = time.time()
    features = {s: encoder_features(encoder, split, layer, batch_size, log, name) for s, split in splits.items()}
    row = probe_features(name, kind, encoder.source, features, splits, multi_label, c_grid, train, valid,
                         time.time() - start)
    row["layer"] = "final" if layer is None else layer
    return row


def probe_checkpoint(checkpoint: str, splits: dict[str, LabelledSplit], random_init: bool = False, seed: int = 0,
                     name: str | None = None, device: str = "cpu", **kwargs) -> dict:
    """Load ``checkpoint``'s encoder (or, with ``random_init``, its architecture randomly initialised
    from ``seed``: no weight of the file is used) and probe it (``kwargs``: see :func:`probe_encoder`)."""
    from ..inference.encoder import load_encoder

    encoder = load_encoder(checkpoint, device=device, random_init=random_init, seed=seed)
    if name is None:
        name = ("random-init " if random_init else "") + os.path.basename(os.path.dirname(os.path.abspath(checkpoint))) \
            + "/" + os.path.basename(checkpoint)
    row = probe_encoder(encoder, splits, name, "random_init" if random_init else "pretrained", **kwargs)
    row["checkpoint"] = os.path.abspath(checkpoint)
    if random_init:
        row["seed"] = seed
    return row


def mfcc_baseline(splits: dict[str, LabelledSplit], multi_label: bool = False, c_grid=DEFAULT_C_GRID,
                  train: str = "train", valid: str = "valid", config: MfccConfig = MfccConfig(),
                  log: Log = _quiet, name: str = "MFCC + logistic regression") -> dict:
    """The baseline row: MFCC statistics (:mod:`.mfcc`) + StandardScaler + LogisticRegression."""
    start = time.time()
    features = {}
    for s, split in splits.items():
        def progress(done, total, seconds, s=s):
            log(f"[probe] {name}: {s} {done}/{total} clips ({done / max(seconds, 1e-9):.1f} clips/s)", flush=True)

        features[s] = mfcc_features(split.paths, config, split.where, progress)
    source = (f"{config.n_mfcc} MFCCs + deltas, mean and std over frames ({config.window_ms:g} ms window, "
              f"{config.hop_ms:g} ms hop, {config.sample_rate} Hz)")
    return probe_features(name, "mfcc", source, features, splits, multi_label, c_grid, train, valid,
                          time.time() - start)


def format_table(rows: Sequence[dict], splits: Sequence[str]) -> str:
    """A plain-text table of result rows: name, C, score per split, seconds."""
    if not rows:
        return "(no results)"
    metric = rows[0]["metric"]
    width = max(len("encoder"), *(len(r["name"]) for r in rows))
    head = f"{'encoder':<{width}}  {'C':>6}  " + "  ".join(f"{s + ' ' + metric:>14}" for s in splits) + "  seconds"
    lines = [head, "-" * len(head)]
    for r in rows:
        scores = "  ".join(f"{r[s]:>14.1f}" for s in splits)
        lines.append(f"{r['name']:<{width}}  {r['C']:>6g}  {scores}  {r['seconds']:>7.1f}")
    return "\n".join(lines)
