"""Kaldi fbank against torchaudio's output (fixture), shapes, padding and normalisation."""
import json
import os

import numpy as np
import pytest
import torch

from supmam_plugin.core.fbank import (
    AUDIOSET_MEAN,
    AUDIOSET_STD,
    FbankSettings,
    batch_fbank,
    kaldi_fbank,
    normalize_fbank,
    pad_or_crop_frames,
)

from conftest import FIXTURES

KALDI = os.path.join(FIXTURES, "kaldi_fbank")
CASES = [k for k in json.load(open(os.path.join(KALDI, "cases.json"))) if not k.startswith("_")]


@pytest.mark.parametrize("case", CASES)
def test_matches_torchaudio_kaldi_fbank(case):
    wave = np.load(os.path.join(KALDI, f"{case}.wave.npy"))
    expected = np.load(os.path.join(KALDI, f"{case}.fbank.npy"))
    ours = kaldi_fbank(torch.from_numpy(wave)).numpy()
    assert ours.shape == expected.shape
    assert np.abs(ours - expected).max() < 1e-3


def test_batched_equals_one_by_one_and_masks_padding():
    waves = [np.load(os.path.join(KALDI, f"{c}.wave.npy")) for c in CASES]
    lengths = torch.tensor([len(w) for w in waves])
    padded = torch.zeros(len(waves), int(lengths.max()))
    for i, w in enumerate(waves):
        padded[i, : len(w)] = torch.from_numpy(w)
    batch = batch_fbank(padded, lengths)
    assert batch.shape == (len(waves), 1024, 128)
    for i, w in enumerate(waves):
        alone = normalize_fbank(pad_or_crop_frames(kaldi_fbank(torch.from_numpy(w)), 1024))
        torch.testing.assert_close(batch[i], alone, atol=1e-4, rtol=0)


def test_mel_bin_3_is_log_eps_as_in_audiomae():
    wave = np.load(os.path.join(KALDI, "noise_3s.wave.npy"))
    fb = kaldi_fbank(torch.from_numpy(wave))
    assert torch.allclose(fb[:, 3], torch.full_like(fb[:, 3], -15.9424), atol=1e-3)


def test_pad_and_crop_to_1024_frames_and_normalise():
    short = torch.randn(998, 128)
    padded = pad_or_crop_frames(short)
    assert padded.shape == (1024, 128)
    assert torch.equal(padded[:998], short) and torch.all(padded[998:] == 0)
    long = torch.randn(1500, 128)
    assert torch.equal(pad_or_crop_frames(long), long[:1024])
    x = torch.tensor([AUDIOSET_MEAN, AUDIOSET_MEAN + 2 * AUDIOSET_STD])
    torch.testing.assert_close(normalize_fbank(x), torch.tensor([0.0, 1.0]))


def test_frame_count_and_too_short_input():
    s = FbankSettings()
    assert (s.window_size, s.window_shift, s.fft_size) == (400, 160, 512)
    assert s.num_frames(160000) == 998 and s.num_samples_for(1024) == 164080
    assert kaldi_fbank(torch.zeros(s.num_samples_for(1024))).shape == (1024, 128)
    with pytest.raises(ValueError, match="shorter than one frame"):
        kaldi_fbank(torch.zeros(399))


def test_cpu_chunks_give_the_whole_batchs_fbank():
    """On the CPU batch_fbank computes CPU_CHUNK clips at a time (faster: BENCHMARKS.md); the output is
    the whole batch's, padding and lengths included."""
    import torch

    from supmam_plugin.core.fbank import batch_fbank

    waves = torch.randn(5, 16000, generator=torch.Generator().manual_seed(0)) * 0.1
    lengths = torch.tensor([16000, 12000, 8000, 16000, 4000])
    whole = batch_fbank(waves, lengths, target_frames=128, cpu_chunk=0)
    for chunk in (1, 2, 4):
        torch.testing.assert_close(batch_fbank(waves, lengths, target_frames=128, cpu_chunk=chunk), whole,
                                   rtol=1e-5, atol=1e-5)
