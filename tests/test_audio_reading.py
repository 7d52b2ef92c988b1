"""Reading real files: mono down-mix, soxr resampling to 16 kHz and to the teacher's 48 kHz."""
import numpy as np
import pytest

from supmam_plugin.core.audio import read_mono, resample

from conftest import tone, write_audio


def dominant_frequency(wave: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return np.argmax(spectrum) * sample_rate / len(wave)


@pytest.mark.parametrize("rate", [22050, 48000])
def test_resample_to_16k_keeps_length_and_pitch(tmp_path, rate):
    path = write_audio(tmp_path / f"tone_{rate}.wav", tone(2.0, rate, freq=1000.0), rate)
    wave, native = read_mono(path)
    assert native == rate and wave.dtype == np.float32
    at_16k = resample(wave, native, 16000)
    assert abs(len(at_16k) - 32000) <= 1
    assert abs(dominant_frequency(at_16k, 16000) - 1000.0) < 2.0
    # same signal synthesised at 16 kHz: resampled audio agrees away from the edges
    reference = tone(2.0, 16000, freq=1000.0)
    middle = slice(1000, 31000)
    assert np.corrcoef(at_16k[middle], reference[middle])[0, 1] > 0.99


def test_upsample_to_teacher_rate(tmp_path):
    path = write_audio(tmp_path / "tone_32k.flac", tone(1.0, 32000, freq=3000.0), 32000)
    wave, native = read_mono(path)
    at_48k = resample(wave, native, 48000)
    assert abs(len(at_48k) - 48000) <= 1
    assert abs(dominant_frequency(at_48k, 48000) - 3000.0) < 2.0


def test_stereo_is_averaged_to_mono(tmp_path):
    stereo = np.stack([np.full(1600, 0.5, np.float32), np.full(1600, -0.1, np.float32)], axis=1)
    path = write_audio(tmp_path / "stereo.wav", stereo, 16000, subtype="FLOAT")
    wave, _ = read_mono(path)
    assert wave.shape == (1600,)
    np.testing.assert_allclose(wave, 0.2, atol=1e-6)


def test_partial_read(tmp_path):
    wave = np.arange(16000, dtype=np.float32) / 16000
    path = write_audio(tmp_path / "ramp.wav", wave, 16000, subtype="FLOAT")
    part, _ = read_mono(path, start_seconds=0.25, num_seconds=0.5)
    np.testing.assert_array_equal(part, wave[4000:12000])
