"""Reading audio clips: soundfile, mono down-mix, soxr resampling, checks that name the file."""
from __future__ import annotations

import os

import numpy as np
import soundfile as sf
import soxr


class AudioFileError(RuntimeError):
    """An audio file that cannot be used; the message names it (and its manifest line)."""


def _context(path: str, where: str | None) -> str:
    return f"{where}: {path}" if where else path


def audio_info(path: str, where: str | None = None) -> sf._SoundFileInfo:
    """soundfile's header info, or an AudioFileError naming the file."""
    if not os.path.isfile(path):
        raise AudioFileError(
            f"{_context(path, where)}: audio file not found; fix the manifest's root line or "
            "the path, or remove the line"
        )
    try:
        return sf.info(path)
    except Exception as e:  # soundfile raises LibsndfileError / RuntimeError for bad files
        raise AudioFileError(
            f"{_context(path, where)}: cannot read audio ({e}); the file is corrupt or not in a "
            "format libsndfile reads (wav, flac, ogg, mp3): re-encode it or remove the line"
        ) from None


def read_mono(
    path: str,
    start_seconds: float = 0.0,
    num_seconds: float | None = None,
    where: str | None = None,
) -> tuple[np.ndarray, int]:
    """A (part of a) clip as mono float32 at the file's own rate.

    Returns (samples (N,), sample_rate). Channels are averaged. Non-finite samples are an error.
    """
    sample_rate = audio_info(path, where).samplerate
    start = int(round(start_seconds * sample_rate))
    stop = None if num_seconds is None else start + int(np.ceil(num_seconds * sample_rate))
    try:
        samples, sample_rate = sf.read(path, start=start, stop=stop, dtype="float32", always_2d=True)
    except Exception as e:
        raise AudioFileError(
            f"{_context(path, where)}: cannot decode audio ({e}); re-encode the file or remove the line"
        ) from None
    samples = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    if not np.isfinite(samples).all():
        raise AudioFileError(
            f"{_context(path, where)}: contains NaN or infinite samples; re-encode the file or "
            "remove the line"
        )
    return np.ascontiguousarray(samples, dtype=np.float32), sample_rate


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample a mono float32 signal with soxr (high quality); a no-op at equal rates."""
    if from_rate == to_rate:
        return samples
    return soxr.resample(samples, from_rate, to_rate, quality="HQ").astype(np.float32, copy=False)
