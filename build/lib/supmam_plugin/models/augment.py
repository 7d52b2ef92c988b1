"""Fine-tuning augmentations on fbank batches (vectorised, on the batch's device)."""
from __future__ import annotations

import torch

from ..core.fbank import FbankSettings, mel_grid, mel_scale


def spec_augment(fbank: torch.Tensor, max_time: int, max_freq: int, fill: float = 0.0) -> torch.Tensor:
    """SpecAugment-style masking, one time band and one frequency band per clip, each of a
    uniformly random width in [0, max) at a random place (torchaudio's TimeMasking /
    FrequencyMasking, as AudioMAE uses them). fbank: (B, T, F) -> (B, T, F)."""
    batch, frames, bins = fbank.shape
    device = fbank.device
    out = fbank
    for size, max_width, axis in ((frames, max_time, 1), (bins, max_freq, 2)):
        if max_width <= 0:
            continue
        width = (torch.rand(batch, device=device) * max_width).long()  # (B,)
        start = (torch.rand(batch, device=device) * (size - width + 1).float()).long()  # (B,)
        position = torch.arange(size, device=device).unsqueeze(0)  # (1, size)
        band = (position >= start.unsqueeze(1)) & (position < (start + width).unsqueeze(1))  # (B, size)
        band = band.unsqueeze(2) if axis == 1 else band.unsqueeze(1)
        out = out.masked_fill(band, fill)
    return out


def mixup(fbank: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mix each clip with the batch's reversed order: x' = lam x + (1 - lam) x[flip], lam ~ Beta(a, a)
    per batch (timm's batch mode). Returns (mixed fbank, lam (scalar tensor), partner index (B,))."""
    lam = torch.distributions.Beta(alpha, alpha).sample().to(fbank.device)
    partner = torch.arange(fbank.size(0) - 1, -1, -1, device=fbank.device)
    return lam * fbank + (1.0 - lam) * fbank[partner], lam, partner


def time_roll(fbank: torch.Tensor, max_shift: int) -> torch.Tensor:
    """Roll each clip along time by its own uniform random shift in [-max_shift, max_shift]
    frames, circularly (AudioMAE's fine-tuning ``roll_mag_aug`` rolls the waveform the same way).
    fbank: (B, T, F) -> (B, T, F)."""
    batch, frames, bins = fbank.shape
    shift = torch.randint(-max_shift, max_shift + 1, (batch, 1), device=fbank.device)  # (B, 1)
    source = (torch.arange(frames, device=fbank.device).unsqueeze(0) - shift) % frames  # (B, T)
    return torch.gather(fbank, 1, source.unsqueeze(2).expand(-1, -1, bins))


def freq_shift(fbank: torch.Tensor, max_shift: int) -> torch.Tensor:
    """Shift each clip along the mel axis by its own uniform random shift in [-max_shift, max_shift]
    bins, repeating the edge bin (not circular: high bands must not wrap onto low ones). A shift of
    the log-mel moves formants and pitch together, a crude change of speaker (cf. vocal tract
    length perturbation). fbank: (B, T, F) -> (B, T, F)."""
    batch, frames, bins = fbank.shape
    shift = torch.randint(-max_shift, max_shift + 1, (batch, 1), device=fbank.device)  # (B, 1)
    source = (torch.arange(bins, device=fbank.device).unsqueeze(0) - shift).clamp(0, bins - 1)  # (B, F)
    return torch.gather(fbank, 2, source.unsqueeze(1).expand(-1, frames, -1))


def freq_warp(fbank: torch.Tensor, max_warp: float) -> torch.Tensor:
    """Warp each clip's frequency axis by its own factor drawn from U[1 - max_warp, 1 + max_warp]
    (vocal tract length perturbation, Jaitly & Hinton 2013: a change of speaker that scales
    formants and pitch together). fbank: (B, T, F) -> (B, T, F)."""
    factor = 1.0 + (torch.rand(fbank.size(0)) * 2.0 - 1.0) * max_warp  # (B,)
    return warp_frequency(fbank, factor)


def warp_frequency(fbank: torch.Tensor, factor: torch.Tensor, settings: FbankSettings = FbankSettings()) -> torch.Tensor:
    """The log-mel of each clip as if every frequency were multiplied by its ``factor`` (B,): the
    output's bin centred at f Hz reads the input at f / factor Hz, linearly interpolated between
    the two nearest bins (the edge bin beyond the ends). Bin centres are those of the plugin's
    Kaldi fbank (``settings``' mel grid), so a factor moves a harmonic by the same ratio at every
    frequency, where ``freq_shift`` moves it by a fixed number of mel bins.
    fbank: (B, T, F) -> (B, T, F)."""
    batch, frames, bins = fbank.shape
    mel_low, spacing = mel_grid(settings)
    centre_hz = 700.0 * torch.expm1((mel_low + spacing * torch.arange(1, bins + 1)) / 1127.0)  # (F,), mel_scale inverted
    source_hz = centre_hz.unsqueeze(0) / factor.double().cpu().unsqueeze(1)  # (B, F)
    source = ((mel_scale(source_hz) - mel_low) / spacing - 1.0).clamp(0, bins - 1)  # (B, F) bin index
    source = source.float().to(fbank.device)
    lower = source.floor().long()
    upper = (lower + 1).clamp(max=bins - 1)
    weight = (source - lower).unsqueeze(1).to(fbank.dtype)  # (B, 1, F)

    def take(index):
        return torch.gather(fbank, 2, index.unsqueeze(1).expand(-1, frames, -1))

    return take(lower) * (1.0 - weight) + take(upper) * weight
