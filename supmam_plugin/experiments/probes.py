"""The in-process scores of an experiment: linear probes of pretrained encoders (and of their random
twin) and the MFCC baseline, on a labelled folder's train/valid/test splits (C chosen on valid)."""
from __future__ import annotations


def progress_only(*args, **kwargs) -> None:
    """Probe log lines, without the per-100-clip progress (the demo's splits are small)."""
    text = " ".join(str(a) for a in args)
    if "clips/s" not in text:
        print(text, **kwargs)


def labelled_splits(data: str) -> dict:
    from ..evaluation.labelled_splits import read_labelled_splits

    return read_labelled_splits(data, ("train", "valid", "test"), "label")


def probe(data: str, checkpoint: str, seed: int, multi_label: bool, random_init: bool = False, log=progress_only,
          name: str | None = None) -> dict:
    """A linear probe of ``checkpoint``'s encoder (``random_init``: of its architecture, initialised with
    ``seed``), as supmam-linear-probe writes it."""
    from ..evaluation.linear_probe import probe_checkpoint

    named = {"name": name} if name else {}
    return probe_checkpoint(checkpoint, labelled_splits(data), random_init=random_init, seed=seed,
                            multi_label=multi_label, log=log, **named)


def linear_probes(data: str, checkpoints: dict[str, str], seed: int, multi_label: bool, log=print) -> dict:
    """Linear probes of each pretrained encoder and of the random twin of their architecture
    (initialised with ``seed``): {name: row, "scratch": twin row}; rows as supmam-linear-probe writes
    them. With no pretrained encoder, nothing."""
    from ..evaluation.linear_probe import probe_checkpoint

    splits = labelled_splits(data)
    rows = {name: probe_checkpoint(checkpoint, splits, name=f"{name} (linear probe)", multi_label=multi_label, log=log)
            for name, checkpoint in checkpoints.items()}
    if checkpoints:
        # every method pretrains the same tiny encoder, so one random twin stands for all
        twin = next(iter(checkpoints.values()))
        rows["scratch"] = probe_checkpoint(twin, splits, random_init=True, seed=seed, multi_label=multi_label,
                                           name="random init (linear probe)", log=log)
    return rows


def mfcc_row(data: str, multi_label: bool, log=print) -> dict:
    """The MFCC baseline (MFCC statistics + logistic regression) on ``data``."""
    from ..evaluation.linear_probe import mfcc_baseline

    return mfcc_baseline(labelled_splits(data), multi_label=multi_label, log=log)
