"""Shared test helpers: real audio files on disk and manifest folders."""
from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import soundfile as sf

warnings.filterwarnings("ignore", category=FutureWarning)

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def tone(seconds: float, sample_rate: int, freq: float = 440.0, channels: int = 1, seed: int = 0) -> np.ndarray:
    """A sine plus a little noise, float32, (N,) or (N, channels)."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    rng = np.random.default_rng(seed)
    wave = 0.5 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(len(t))
    wave = wave.astype(np.float32)
    if channels > 1:
        wave = np.stack([wave * (c + 1) / channels for c in range(channels)], axis=1)
    return wave


def write_audio(path, wave: np.ndarray, sample_rate: int, subtype: str | None = None) -> str:
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    sf.write(str(path), wave, sample_rate, subtype=subtype)
    return str(path)


def make_labelled_folder(root, classes, clips, split="train", ext="label"):
    """Write audio files and a manifest/labels/dict. clips: list of (name, seconds, rate, labels)."""
    from supmam_plugin.data.manifest import write_class_list, write_manifest

    audio_root = os.path.join(str(root), "audio")
    entries, labels = [], []
    for i, (name, seconds, rate, clip_labels) in enumerate(clips):
        wave = tone(seconds, rate, freq=200.0 + 50 * i, seed=i)
        write_audio(os.path.join(audio_root, name), wave, rate)
        entries.append((name, len(wave)))
        labels.append(clip_labels)
    write_manifest(str(root), split, audio_root, entries, labels, ext)
    write_class_list(str(root), classes, ext)
    return str(root)


@pytest.fixture
def fixtures_dir():
    return FIXTURES
