"""What an experiment reads from a manifest folder before it runs: its clip length in fbank frames,
whether it is multi-label, the score of chance, its information setting and pretraining split, and
whether every clip can be read (checked before anything trains)."""
from __future__ import annotations

import os

from .settings import ExperimentError, Folders

LABELLED_POOL_SPLIT = "pretrain_labelled"  # make_sound_events.py: the pool with its labels, then train
SETTINGS = ("labelled-pool", "unlabelled-pool")


def has_split(folder: str, split: str) -> bool:
    return os.path.isfile(os.path.join(folder, f"{split}.tsv"))


def frames_for(data: str) -> int:
    """fbank frames per clip for ``data``: its training clips' median length in 10-ms frames, rounded
    to the nearest multiple of 64 (the decoder's 4 x 4 windows over 16-frame patches), at most 1024:
    1 s -> 128, 2 s -> 192, ESC-50's 5 s -> 512, AudioSet's 10 s -> 1024 (the lengths AudioMAE uses)."""
    from ..core.fbank import FbankSettings
    from ..core.manifest import read_manifest

    samples = sorted(e.num_samples for e in read_manifest(os.path.join(data, "train.tsv")).entries)
    frames = FbankSettings().num_frames(samples[len(samples) // 2])
    return min(1024, max(64, 64 * round(frames / 64)))


def is_multi_label(data: str, splits=("train", "valid", "test")) -> bool:
    """Whether any clip of ``data``'s labelled splits carries several classes (AudioSet's shape)."""
    for split in splits:
        path = os.path.join(data, f"{split}.label")
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                if any(len(line.split()) > 1 for line in f):
                    return True
    return False


def chance_score(data: str, multi_label: bool) -> float:
    """What random scores get on the test split (%): 1 / classes (accuracy), or the mean over the
    classes present of their share of test clips (the AP of a random ranking, mAP)."""
    from ..evaluation.labelled_splits import read_labelled_splits

    test = read_labelled_splits(data, ("test",), "label")["test"]
    if not multi_label:
        return 100.0 / len(test.classes)
    share = test.targets(multi_label=True).mean(axis=0)
    return 100.0 * float(share[share > 0].mean())


def pool_setting(pretrain_data: str, asked: str = "auto") -> str:
    """The information setting (docs/data.md): ``labelled-pool`` (the paper's: every pretraining clip
    labelled) when asked, or by default when the folder has a ``pretrain_labelled`` split; else
    ``unlabelled-pool``."""
    if asked == "auto":
        return "labelled-pool" if has_split(pretrain_data, LABELLED_POOL_SPLIT) else "unlabelled-pool"
    if asked == "labelled-pool" and not has_split(pretrain_data, LABELLED_POOL_SPLIT):
        raise ExperimentError(f"--setting labelled-pool: {pretrain_data} has no {LABELLED_POOL_SPLIT}.tsv (the "
                              f"pretraining clips with every label line filled, as make sound-events writes it)")
    return asked


def pretraining_split(pretrain_data: str, setting: str = "unlabelled-pool") -> str:
    """``pretrain_labelled`` in the labelled-pool setting; else ``pretrain`` (pool + labelled clips,
    make_demo_data.py --pool-dir) when the folder has one, else ``train``."""
    if setting == "labelled-pool":
        return LABELLED_POOL_SPLIT
    return "pretrain" if has_split(pretrain_data, "pretrain") else "train"


def read_folders(data: str, pretrain_data: str | None = None, setting: str = "auto", frames: int | None = None,
                 multi_label: bool = False, also_score=()) -> Folders:
    """The Folders of a labelled folder ``data`` and a pretraining folder (default: ``data``): paths made
    absolute, the setting and split chosen, multi-label when asked or when a clip has several classes,
    the frames of :func:`frames_for` unless given."""
    data = os.path.abspath(data)
    pretrain_data = os.path.abspath(pretrain_data or data)
    setting = pool_setting(pretrain_data, setting)
    for extra in also_score:
        if not has_split(data, extra) or not os.path.isfile(os.path.join(data, f"{extra}.label")):
            raise ExperimentError(f"--also-score {extra}: {data} has no {extra}.tsv and {extra}.label")
    return Folders(data=data, pretrain_data=pretrain_data, split=pretraining_split(pretrain_data, setting),
                   setting=setting, multi_label=multi_label or is_multi_label(data), frames=frames or frames_for(data),
                   also_score=list(also_score))


def check_clips(data: str, splits: list[str], pretrain_data: str, pretrain_split: str) -> None:
    """Every split an experiment reads, checked before anything trains (not when the test is scored, an
    hour in): each manifest readable and no clip shorter than one fbank window (the line named), and
    a warning for test classes no training clip has (their AP is scored, nothing was learned)."""
    from ..core.fbank import FbankSettings
    from ..core.manifest import ManifestError, read_manifest
    from ..evaluation.labelled_splits import read_labelled_splits

    window = FbankSettings().window_size
    try:
        for folder, split in [*((data, s) for s in splits), (pretrain_data, pretrain_split)]:
            read_manifest(os.path.join(folder, f"{split}.tsv"), min_samples=window)
        labelled = read_labelled_splits(data, ("train", "test"))
    except (ManifestError, OSError) as e:
        raise ExperimentError(str(e)) from None
    classes = labelled["test"].classes
    learned = {c for clip in labelled["train"].labels for c in clip}
    unseen = sorted({classes[c] for clip in labelled["test"].labels for c in clip if c not in learned})
    if unseen:
        print(f"[demo] warning: test clips carry {len(unseen)} classes no training clip has ({', '.join(unseen[:5])}"
              f"{', ...' if len(unseen) > 5 else ''}): they are scored, but nothing could learn them", flush=True)
