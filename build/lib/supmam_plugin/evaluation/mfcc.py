"""The small-data baseline's features: MFCC statistics per clip (librosa).

A clip (mono, resampled to ``sample_rate``) -> 20 MFCCs per frame (librosa's defaults: 128 mel
bands, Hann window, log-power, DCT-II ortho) with a 25 ms window and a 10 ms hop (the framing of
the model's own fbank, and speech's usual one), plus their deltas (librosa, width 9) -> the mean and
the standard deviation of each of the 40 rows over the frames: an (80,) vector, [mean(mfcc),
mean(delta), std(mfcc), std(delta)]. librosa's default framing (2048 / 512 samples, 128 ms / 32 ms
at 16 kHz) is ``MfccConfig(window_ms=128, hop_ms=32)``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ..core.audio import AudioFileError, read_mono, resample


@dataclass(frozen=True)
class MfccConfig:
    n_mfcc: int = field(default=20, metadata={"help": "MFCCs per frame"})
    sample_rate: int = field(default=16000, metadata={"help": "clips are resampled to this rate first"})
    window_ms: float = field(default=25.0, metadata={"help": "FFT window (n_fft) in ms"})
    hop_ms: float = field(default=10.0, metadata={"help": "hop between frames in ms"})
    delta_width: int = field(default=9, metadata={"help": "frames in librosa's delta window (odd, >= 3)"})

    @property
    def n_fft(self) -> int:
        return int(round(self.sample_rate * self.window_ms / 1000))

    @property
    def hop_length(self) -> int:
        return int(round(self.sample_rate * self.hop_ms / 1000))

    @property
    def dim(self) -> int:
        return 4 * self.n_mfcc


def mfcc_statistics(samples: np.ndarray, config: MfccConfig = MfccConfig(), name: str = "clip") -> np.ndarray:
    """(N,) mono samples at ``config.sample_rate`` -> (4 * n_mfcc,) float64: mean and std over
    frames of the MFCCs and their deltas. ``name`` labels errors."""
    import librosa

    mfcc = librosa.feature.mfcc(y=np.asarray(samples, dtype=np.float32), sr=config.sample_rate,
                                n_mfcc=config.n_mfcc, n_fft=config.n_fft, hop_length=config.hop_length)
    frames = mfcc.shape[1]
    if frames < 3:
        raise AudioFileError(f"{name}: {len(samples)} samples give {frames} MFCC frame(s); deltas need 3")
    width = min(config.delta_width, frames if frames % 2 else frames - 1)  # librosa: width <= frames, odd
    delta = librosa.feature.delta(mfcc, width=width)
    rows = np.concatenate([mfcc, delta]).astype(np.float64)  # (2 * n_mfcc, frames)
    return np.concatenate([rows.mean(axis=1), rows.std(axis=1)])


def mfcc_features(paths: Sequence[str], config: MfccConfig = MfccConfig(), where: Sequence[str] | None = None,
                  progress: Callable[[int, int, float], None] | None = None) -> np.ndarray:
    """(len(paths), 4 * n_mfcc) MFCC statistics of audio files (channels averaged, resampled to
    ``config.sample_rate``); ``where`` ('manifest.tsv:line' per path) is added to errors;
    ``progress(done, total, seconds)`` is called every 100 files and at the end."""
    out = np.zeros((len(paths), config.dim), dtype=np.float64)
    start = time.time()
    for i, path in enumerate(paths):
        label = where[i] if where else None
        samples, rate = read_mono(path, where=label)
        samples = resample(samples, rate, config.sample_rate)
        out[i] = mfcc_statistics(samples, config, name=f"{label}: {path}" if label else path)
        if progress and ((i + 1) % 100 == 0 or i + 1 == len(paths)):
            progress(i + 1, len(paths), time.time() - start)
    return out
