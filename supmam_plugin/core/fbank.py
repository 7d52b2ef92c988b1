"""Kaldi-compatible log-mel filterbank in torch, batched, on the tensor's own device.

torchaudio is not a dependency (its wheels pin other torch releases) and kaldi-native-fbank
refuses 128 mel bins at 16 kHz, so we compute Kaldi's fbank ourselves. With the defaults below
(AudioMAE's settings) it matches ``torchaudio.compliance.kaldi.fbank(wave, htk_compat=True,
sample_frequency=16000, use_energy=False, window_type='hanning', num_mel_bins=128, dither=0.0,
frame_shift=10)`` to about 1e-4 (checked against ``tests/fixtures/kaldi_fbank``).
"""

from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F

# AudioMAE's AudioSet statistics: normalised = (fbank - MEAN) / (STD * 2).
AUDIOSET_MEAN = -4.2677393
AUDIOSET_STD = 4.5689974
# Kaldi floors mel energies at float32 epsilon before the log: log(eps) = -15.9424.
_LOG_FLOOR = torch.finfo(torch.float32).eps


@dataclass(frozen=True)
class FbankSettings:
    """Kaldi fbank options (names follow Kaldi / torchaudio)."""

    sample_rate: int = 16000
    num_mel_bins: int = 128
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    low_freq: float = 20.0
    high_freq: float = 0.0  # <= 0 means offset from Nyquist, as in Kaldi
    preemphasis: float = 0.97
    remove_dc_offset: bool = True

    @property
    def window_size(self) -> int:
        return int(self.sample_rate * self.frame_length_ms / 1000)

    @property
    def window_shift(self) -> int:
        return int(self.sample_rate * self.frame_shift_ms / 1000)

    @property
    def fft_size(self) -> int:
        return 1 << (self.window_size - 1).bit_length()

    def num_frames(self, num_samples: int) -> int:
        """Frames Kaldi makes from ``num_samples`` (snip_edges=True); 0 if shorter than a window."""
        if num_samples < self.window_size:
            return 0
        return 1 + (num_samples - self.window_size) // self.window_shift

    def num_samples_for(self, num_frames: int) -> int:
        """Fewest samples that give ``num_frames`` frames."""
        return self.window_size + (num_frames - 1) * self.window_shift


def mel_scale(hz: torch.Tensor) -> torch.Tensor:
    """Kaldi's mel scale of frequencies in Hz."""
    return 1127.0 * torch.log1p(hz / 700.0)


def mel_grid(s: FbankSettings) -> tuple[torch.Tensor, torch.Tensor]:
    """Kaldi's mel axis as float64 scalars (mel of low_freq, spacing): bin i spans
    [low + i * spacing, low + (i + 2) * spacing] and is centred at low + (i + 1) * spacing."""
    high_freq = s.high_freq if s.high_freq > 0 else 0.5 * s.sample_rate + s.high_freq
    mel_low = mel_scale(torch.tensor(s.low_freq, dtype=torch.float64))
    mel_high = mel_scale(torch.tensor(high_freq, dtype=torch.float64))
    return mel_low, (mel_high - mel_low) / (s.num_mel_bins + 1)


@lru_cache(maxsize=8)
def _mel_banks_cpu(s: FbankSettings) -> torch.Tensor:
    """Triangular mel filters, (num_fft_bins + 1, num_mel_bins), as Kaldi builds them
    (in the mel domain, no normalisation); the Nyquist bin gets zero weight."""
    num_fft_bins = s.fft_size // 2
    mel_low, delta = mel_grid(s)
    bin_index = torch.arange(s.num_mel_bins, dtype=torch.float64).unsqueeze(1)
    left = mel_low + bin_index * delta
    center = mel_low + (bin_index + 1.0) * delta
    right = mel_low + (bin_index + 2.0) * delta
    fft_mel = mel_scale(s.sample_rate / s.fft_size * torch.arange(num_fft_bins, dtype=torch.float64))
    up = (fft_mel - left) / (center - left)
    down = (right - fft_mel) / (right - center)
    banks = torch.clamp(torch.minimum(up, down), min=0.0)  # (num_mel_bins, num_fft_bins)
    banks = F.pad(banks, (0, 1))  # Nyquist column
    return banks.t().contiguous().float()


@lru_cache(maxsize=8)
def require_one_frame(num_samples: int, settings: FbankSettings, what: str, fix: str = "") -> None:
    """The one rule for audio too short to use: fewer samples than one fbank frame (25 ms) is a
    ValueError naming ``what`` (a file, a manifest line, a clip) and, if given, the ``fix``."""
    if num_samples < settings.window_size:
        raise ValueError(
            f"{what}: {num_samples} samples at {settings.sample_rate} Hz is shorter than one frame "
            f"of the 25 ms fbank ({settings.window_size} samples){'; ' + fix if fix else ''}"
        )


def _hann_cpu(window_size: int) -> torch.Tensor:
    return torch.hann_window(window_size, periodic=False, dtype=torch.float64).float()


# On the CPU a whole batch's frames, spectra and powers (about 12 MB a 10 s clip) fall out of the
# caches: batch 32 ran 3-4.5x slower per clip than clip by clip (BENCHMARKS.md, section 4), so the
# CPU computes one clip at a time (the same output). GPUs take the batch at once.
CPU_CHUNK = 1


def kaldi_fbank(waveforms: torch.Tensor, settings: FbankSettings = FbankSettings(),
                cpu_chunk: int = CPU_CHUNK) -> torch.Tensor:
    """Log mel energies of each waveform, as Kaldi computes them (no dither, no energy).

    waveforms: (B, N) or (N,) float samples in [-1, 1] at ``settings.sample_rate``.
    Returns (B, F, num_mel_bins) (or (F, num_mel_bins)), F = 1 + (N - window) // shift.
    ``cpu_chunk``: clips computed at a time on the CPU (0: the whole batch).
    """
    squeeze = waveforms.dim() == 1
    if squeeze:
        waveforms = waveforms.unsqueeze(0)
    require_one_frame(waveforms.size(-1), settings, "kaldi_fbank")
    if waveforms.device.type == "cpu" and 0 < cpu_chunk < waveforms.size(0):
        parts = [kaldi_fbank(waveforms[i:i + cpu_chunk], settings, 0) for i in range(0, waveforms.size(0), cpu_chunk)]
        return torch.cat(parts)
    device = waveforms.device
    frames = waveforms.float().unfold(-1, settings.window_size, settings.window_shift)  # (B, F, W)
    if settings.remove_dc_offset:
        frames = frames - frames.mean(dim=-1, keepdim=True)
    if settings.preemphasis != 0.0:
        previous = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)
        frames = frames - settings.preemphasis * previous
    frames = frames * _hann_cpu(settings.window_size).to(device)
    spectrum = torch.fft.rfft(frames, n=settings.fft_size, dim=-1)  # (B, F, fft/2 + 1)
    power = spectrum.real.square() + spectrum.imag.square()
    mel_energies = power @ _mel_banks_cpu(settings).to(device)  # (B, F, num_mel_bins)
    log_mel = mel_energies.clamp_min(_LOG_FLOOR).log()
    return log_mel.squeeze(0) if squeeze else log_mel


def pad_or_crop_frames(fbank: torch.Tensor, target_frames: int = 1024) -> torch.Tensor:
    """Zero-pad (at the end) or crop (keep the start) the frame axis to ``target_frames``,
    as AudioMAE does. fbank: (..., F, M) -> (..., target_frames, M)."""
    num_frames = fbank.size(-2)
    if num_frames >= target_frames:
        return fbank[..., :target_frames, :]
    return F.pad(fbank, (0, 0, 0, target_frames - num_frames))


def normalize_fbank(
    fbank: torch.Tensor, mean: float = AUDIOSET_MEAN, std: float = AUDIOSET_STD
) -> torch.Tensor:
    """AudioMAE's normalisation: (fbank - mean) / (2 * std)."""
    return (fbank - mean) / (std * 2.0)


def batch_fbank(
    waveforms: torch.Tensor,
    lengths: torch.Tensor | None = None,
    target_frames: int = 1024,
    settings: FbankSettings = FbankSettings(),
    mean: float = AUDIOSET_MEAN,
    std: float = AUDIOSET_STD,
    cpu_chunk: int = CPU_CHUNK,
) -> torch.Tensor:
    """Model input from a padded batch: fbank, frames past each clip's end zeroed (as if each
    clip were padded alone, AudioMAE-style), padded/cropped to ``target_frames``, normalised.

    waveforms: (B, N) zero-padded; lengths: (B,) valid samples per clip (None: all N).
    Returns (B, target_frames, num_mel_bins). ``cpu_chunk``: see :func:`kaldi_fbank`.
    """
    fbank = kaldi_fbank(waveforms, settings, cpu_chunk)  # (B, F, M)
    if lengths is not None:
        # A frame needs all its window inside the clip: frames = 1 + (len - window) // shift.
        valid = torch.div(lengths - settings.window_size, settings.window_shift, rounding_mode="floor") + 1
        frame_index = torch.arange(fbank.size(1), device=fbank.device)
        fbank = fbank * (frame_index.unsqueeze(0) < valid.unsqueeze(1)).unsqueeze(-1)
    return normalize_fbank(pad_or_crop_frames(fbank, target_frames), mean, std)


def model_input_fbank(
    source: torch.Tensor | None,
    source_lengths: torch.Tensor | None,
    fbank: torch.Tensor | None,
    target_frames: int,
    settings: FbankSettings = FbankSettings(),
) -> torch.Tensor:
    """A model's input fbank, ALWAYS float32 whatever the model's precision: the loader's
    ``fbank`` if given (B, target_frames, M), else computed here from the waveforms
    ``source`` (B, N) and their lengths (B,).

    Mixed precision: fairseq's ``common.bf16`` / ``fp16`` cast every float32 tensor of a batch to
    bf16 / fp16 before the forward, which would quantise the waveform to 8 / 11 mantissa bits
    (noise near -48 dB for bf16) before the log. Our batches carry waveforms (and a loader fbank)
    as float64, which fairseq leaves alone; the fbank is computed in float32 with autocast off
    (``common.amp``), and only the model's first layer casts its result to the model's dtype.
    """
    if fbank is not None:
        return fbank.float()
    if source is None:
        raise ValueError("the batch has neither net_input.source (waveforms) nor net_input.fbank")
    with torch.autocast(device_type=source.device.type, enabled=False):
        return batch_fbank(source, source_lengths, target_frames, settings)


__all__ = [
    "require_one_frame",
    "AUDIOSET_MEAN",
    "AUDIOSET_STD",
    "FbankSettings",
    "kaldi_fbank",
    "pad_or_crop_frames",
    "normalize_fbank",
    "batch_fbank",
    "model_input_fbank",
]
