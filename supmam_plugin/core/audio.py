"""Reading audio clips: soundfile, mono down-mix, soxr resampling, checks that name the file. A clip
is a file or a member of a packed shard (``shard.zip:OFFSET:LENGTH``, ``core.packed_audio``).
(soundfile and soxr are imported when first used: the portable runtime needs neither for 16 kHz
arrays.)"""
from __future__ import annotations

import io
import os

import numpy as np

from .packed_audio import PackedAudioError, packed_shard_exists, parse_packed, read_packed


class AudioFileError(RuntimeError):
    """An audio file that cannot be used; the message names it (and its manifest line)."""


def _context(path: str, where: str | None) -> str:
    return f"{where}: {path}" if where else path


def audio_exists(path: str) -> bool:
    """Whether a clip's file (or, for a packed ``shard.zip:OFFSET:LENGTH`` entry, its shard) exists."""
    return packed_shard_exists(path) if parse_packed(path) else os.path.isfile(path)


def _audio_bytes_or_path(path: str, where: str | None):
    """What soundfile opens: the path of a file, or a packed entry's bytes (a BytesIO)."""
    if parse_packed(path):
        try:
            return io.BytesIO(read_packed(path, where or path))
        except PackedAudioError as e:
            raise AudioFileError(str(e)) from None
    if not os.path.isfile(path):
        raise AudioFileError(
            f"{_context(path, where)}: audio file not found; fix the manifest's root line or "
            "the path, or remove the line"
        )
    return path


def _unreadable(path: str, where: str | None, source, error: Exception) -> AudioFileError:
    what = "the packed bytes are not audio" if isinstance(source, io.BytesIO) else "the file is corrupt"
    return AudioFileError(
        f"{_context(path, where)}: cannot read audio ({error}); {what} or not in a format libsndfile "
        "reads (wav, flac, ogg, mp3): re-encode it (and pack again) or remove the line"
    )


def open_audio(path: str, where: str | None = None) -> "soundfile.SoundFile":
    """A clip opened once for reading (``.samplerate``, ``.frames``, ``.seek``, ``.read``): a file, or a
    member of a packed shard (``core.packed_audio``), or an AudioFileError naming it."""
    import soundfile as sf

    source = _audio_bytes_or_path(path, where)
    try:
        return sf.SoundFile(source)
    except Exception as e:  # soundfile raises LibsndfileError / RuntimeError for bad files
        raise _unreadable(path, where, source, e) from None


def audio_info(path: str, where: str | None = None) -> "soundfile._SoundFileInfo":
    """soundfile's header info (``.frames``, ``.samplerate``, ...), or an AudioFileError naming the file."""
    import soundfile as sf

    source = _audio_bytes_or_path(path, where)
    try:
        return sf.info(source)
    except Exception as e:
        raise _unreadable(path, where, source, e) from None


def read_mono(
    path: str,
    start_seconds: float = 0.0,
    num_seconds: float | None = None,
    where: str | None = None,
) -> tuple[np.ndarray, int]:
    """A (part of a) clip as mono float32 at the file's own rate.

    Returns (samples (N,), sample_rate). Channels are averaged. Non-finite samples are an error.
    """
    with open_audio(path, where) as audio:
        return read_open_mono(audio, start_seconds, num_seconds, _context(path, where))


def read_open_mono(audio: "soundfile.SoundFile", start_seconds: float, num_seconds: float | None,
                   label: str) -> tuple[np.ndarray, int]:
    """``read_mono`` of a clip already opened with ``open_audio`` (``label`` names it in errors)."""
    sample_rate = audio.samplerate
    start = int(round(start_seconds * sample_rate))
    frames = -1 if num_seconds is None else int(np.ceil(num_seconds * sample_rate))
    try:
        audio.seek(min(start, audio.frames))
        samples = audio.read(frames, dtype="float32", always_2d=True)
    except Exception as e:
        raise AudioFileError(f"{label}: cannot decode audio ({e}); re-encode the file or remove the line") from None
    samples = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    if not np.isfinite(samples).all():
        raise AudioFileError(f"{label}: contains NaN or infinite samples; re-encode the file or remove the line")
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
