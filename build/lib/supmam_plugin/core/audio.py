"""Reading audio clips: soundfile, mono down-mix, soxr resampling, checks that name the file.
(soundfile and soxr are imported when first used: the portable runtime needs neither for 16 kHz
arrays.)"""
from __future__ import annotations

import os

import numpy as np


class AudioFileError(RuntimeError):
    """An audio file that cannot be used; the message names it (and its manifest line)."""


def _context(path: str, where: str | None) -> str:
    return f"{where}: {path}" if where else path


def audio_info(path: str, where: str | None = None) -> "soundfile._SoundFileInfo":
    """soundfile's header info, or an AudioFileError naming the file."""
    if not os.path.isfile(path):
        raise AudioFileError(
            f"{_context(path, where)}: audio file not found; fix the manifest's root line or "
            "the path, or remove the line"
        )
    import soundfile as sf

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
    import soundfile as sf

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


CHANNEL_AXES = {"first": 0, "last": -1}  # where a clip's channel axis is: (C, N) or (N, C)


def pcm_to_float(samples: np.ndarray, label: str = "audio") -> np.ndarray:
    """Samples as float32 in [-1, 1]: floats as they are; signed integer PCM divided by 2^(bits-1)
    (int16: 32768); unsigned (uint8 WAV) centred on 2^(bits-1) first."""
    samples = np.asarray(samples)
    if samples.dtype == np.bool_ or not np.issubdtype(samples.dtype, np.number):
        raise ValueError(f"{label}: samples of dtype {samples.dtype}; give float or integer PCM")
    if np.issubdtype(samples.dtype, np.signedinteger):
        return (samples / float(2 ** (8 * samples.dtype.itemsize - 1))).astype(np.float32)
    if np.issubdtype(samples.dtype, np.unsignedinteger):
        middle = float(2 ** (8 * samples.dtype.itemsize - 1))
        return ((samples - middle) / middle).astype(np.float32)
    return samples.astype(np.float32, copy=False)


def downmix(samples: np.ndarray, channels: str | None, label: str = "audio") -> np.ndarray:
    """One clip as mono (N,): (N,) as it is; with ``channels`` "last" (N, C, as soundfile.read
    returns) or "first" (C, N), the channels averaged. A 2-D clip without ``channels`` is an
    error that names the fix."""
    if samples.ndim == 1:
        return samples
    if samples.ndim == 2 and channels in CHANNEL_AXES:
        return samples.mean(axis=CHANNEL_AXES[channels])
    if samples.ndim == 2:
        raise ValueError(f"{label}: shape {samples.shape}: a clip with a channel axis; pass channels='last' for "
                         "(samples, channels) as soundfile.read returns it, or channels='first' for (channels, "
                         "samples): the channels are averaged")
    raise ValueError(f"{label}: shape {samples.shape}: give 1-D mono samples, or 2-D with channels='last'/'first'")


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample a mono float32 signal with soxr (high quality); a no-op at equal rates."""
    if from_rate == to_rate:
        return samples
    import soxr

    return soxr.resample(samples, from_rate, to_rate, quality="HQ").astype(np.float32, copy=False)
