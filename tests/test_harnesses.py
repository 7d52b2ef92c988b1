"""Encoders in the harnesses people use: HEAR 2021 (the rules of its validator, hearvalidator's
public source, written out here: it needs Python < 3.9) and X-ARES (its own checker and loader),
for a pretraining checkpoint, a fine-tuned classifier (128-frame windows), an AudioMAE file and an
export (supmam-export);
frame embeddings; the accepted input shapes and dtypes."""
from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf
import torch

import supmam_plugin.inference.hear as hear
from supmam_plugin.commands.export import main as export_main
from supmam_plugin.commands.extract_embeddings import main as extract_main
from supmam_plugin.inference.encoder import load_encoder
from supmam_plugin.inference.xares import SupmamEncoder

from conftest import FIXTURES, REPO

AUDIOMAE = os.path.join(FIXTURES, "audiomae_official", "pretrained.pth")
HEAR_RATES = (16000, 22050, 44100, 48000)


@pytest.fixture(scope="module")
def checkpoints(audiomae_checkpoint, tiny_classifier, tmp_path_factory):
    """{kind: path}: a supmam pretraining checkpoint (1024 frames), a classifier fine-tuned from it
    on 128 frames (1.28 s windows), its export, and AudioMAE's layout (the official fixture)."""
    root = tmp_path_factory.mktemp("harness_checkpoints")
    pretrained = audiomae_checkpoint
    classifier = tiny_classifier[0]
    assert export_main([classifier, str(root / "export")]) == 0
    return {"pretraining": pretrained, "classifier": classifier, "audiomae": AUDIOMAE, "export": str(root / "export")}


KINDS = ["pretraining", "classifier", "audiomae", "export"]


def white_noise(num_audio: int, seconds: float, rate: int, seed: int = 0) -> torch.Tensor:
    """What hearvalidator feeds: uniform white noise in [-1, 1], int(seconds * rate) samples."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand((num_audio, int(seconds * rate)), generator=generator) * 2 - 1


@pytest.mark.parametrize("kind", KINDS)
def test_hear_validator_rules(kind, checkpoints):
    model = hear.load_model(checkpoints[kind])
    assert isinstance(model, torch.nn.Module)
    model.to("cpu")
    assert model.sample_rate in HEAR_RATES
    assert isinstance(model.scene_embedding_size, int) and isinstance(model.timestamp_embedding_size, int)
    for length in (1.07, 1.98, 4.0):
        audio = white_noise(2, length, model.sample_rate)
        embeddings, timestamps = hear.get_timestamp_embeddings(audio, model)
        assert embeddings.dtype == torch.float32
        assert embeddings.ndim == 3 and timestamps.ndim == 2
        assert embeddings.shape[0] == 2 and embeddings.shape[:2] == timestamps.shape
        assert embeddings.shape[2] == model.timestamp_embedding_size
        times = timestamps.numpy()
        assert times.shape[1] > 1
        steps = np.diff(times)
        assert np.max(np.abs(steps - steps.mean())) <= 1.0  # a regular hop
        assert times.max() >= 1000 * length - 2 * steps.mean()  # the end of the audio is covered
        assert times.max() <= 1000 * length  # nothing past the audio
        assert np.allclose(steps, model.hop_ms)
    shortest, stamps = hear.get_timestamp_embeddings(white_noise(2, 0.2, model.sample_rate), model)  # HEAR's shortest
    assert shortest.shape == (2, 1, model.timestamp_embedding_size) and stamps.tolist() == [[87.5], [87.5]]
    scene = hear.get_scene_embeddings(white_noise(4, 2.74, model.sample_rate), model)
    assert scene.dtype == torch.float32 and scene.shape == (4, model.scene_embedding_size)
    # batch independence: a sound's embeddings do not depend on the other sounds of its batch
    batch = white_noise(3, 1.98, model.sample_rate, seed=1)
    alone = hear.get_timestamp_embeddings(batch[1:2], model)[0]
    torch.testing.assert_close(hear.get_timestamp_embeddings(batch, model)[0][1:2], alone, rtol=0, atol=1e-5)
    torch.testing.assert_close(hear.get_scene_embeddings(batch, model)[1:2], hear.get_scene_embeddings(batch[1:2], model),
                               rtol=0, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_xares_checker_and_loader(kind, checkpoints, monkeypatch):
    from xares.audio_encoder_checker import check_audio_encoder
    from xares.utils import attr_from_py_path

    encoder = SupmamEncoder(checkpoints[kind])
    assert check_audio_encoder(encoder)
    out = encoder(white_noise(2, 50000 / 16000, 16000))
    assert out.shape[0] == 2 and out.shape[2] == encoder.output_dim and encoder.hop_size_in_ms == 160
    # X-ARES's own loader builds it with no arguments, from the file path (run from the repo root)
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("SUPMAM_CHECKPOINT", checkpoints[kind])
    built = attr_from_py_path("supmam_plugin/inference/xares.py", endswith="Encoder")()
    assert check_audio_encoder(built)


def test_frames_are_the_patch_columns_averaged_over_frequency(checkpoints):
    encoder = load_encoder(checkpoints["pretraining"])
    wave = white_noise(1, 3.0, 16000)[0].numpy()
    frames, times = encoder.embed_frames(wave)
    patches = encoder.embed(wave, patches=True)["patches"][0].reshape(64, 8, -1)  # one window: 10.24 s
    expected = patches.mean(axis=1)[: len(times[0])]
    assert frames[0].shape == expected.shape == (19, encoder.embed_dim)  # 87.5 ms + 18 x 160 ms <= 3 s
    np.testing.assert_allclose(frames[0], expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(times[0], 87.5 + 160 * np.arange(19))
    block = encoder.embed_frames(wave, layer=0)[0][0]
    np.testing.assert_allclose(block, encoder.embed(wave, layers=[0])["layer_0"][0].reshape(64, 8, -1).mean(1)[:19],
                               rtol=0, atol=1e-5)


def test_ten_minutes_at_the_stated_hop_in_bounded_batches(checkpoints):
    """A 10-minute recording through the 1.28 s classifier: back-to-back windows, never more than
    batch_size of them through the encoder at once; each window's frames equal those of that
    window alone (nothing leaks between windows or batches)."""
    encoder = load_encoder(checkpoints["classifier"])
    assert encoder.input_frames == 128 and encoder.frame_hop_ms == 160
    rate, seconds = 16000, 600
    wave = np.random.default_rng(0).uniform(-1, 1, rate * seconds).astype(np.float32)
    seen = []
    hook = encoder.encoder.patch_embed.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape[0]))
    try:
        frames, times = encoder.embed_frames(wave, batch_size=32)
    finally:
        hook.remove()
    count = int((seconds * 1000 - 87.5) // 160) + 1
    assert frames[0].shape == (count, encoder.embed_dim) == (3750, encoder.embed_dim)
    assert times[0][-1] <= seconds * 1000 < times[0][-1] + 160
    np.testing.assert_allclose(np.diff(times[0]), 160.0)
    assert max(seen) <= 32 and sum(seen) == -(-count // 8)  # 8 columns per 1.28 s window
    window = encoder.window_stride  # 1.28 s
    for k in (0, 1, 233, 468):
        alone = encoder.embed_frames(wave[k * window: (k + 1) * window + 240])[0][0][:8]
        np.testing.assert_allclose(frames[0][8 * k: 8 * k + len(alone)], alone[: len(frames[0]) - 8 * k],
                                   rtol=0, atol=1e-4)


def test_channels_and_integer_pcm(checkpoints):
    encoder = load_encoder(AUDIOMAE)
    rng = np.random.default_rng(2)
    left, right = (rng.uniform(-0.5, 0.5, 24000).astype(np.float32) for _ in range(2))
    stereo = np.stack([left, right], axis=1)  # (N, 2), as soundfile.read returns it
    with pytest.raises(ValueError, match=r"\(24000, 2\).*channels='last'"):
        encoder.embed(stereo)
    mono = encoder.embed((left + right) / 2)["clip"]
    np.testing.assert_allclose(encoder.embed(stereo, channels="last")["clip"], mono, rtol=0, atol=1e-5)
    np.testing.assert_allclose(encoder.embed(stereo.T, channels="first")["clip"], mono, rtol=0, atol=1e-5)
    np.testing.assert_allclose(encoder.embed([stereo, stereo], channels="last")["clip"][1], mono[0], rtol=0, atol=1e-5)
    pcm16 = np.round(left * 32767).astype(np.int16)
    as_float = encoder.embed(pcm16.astype(np.float32) / 32768)["clip"]
    np.testing.assert_allclose(encoder.embed(pcm16)["clip"], as_float, rtol=0, atol=1e-6)
    np.testing.assert_allclose(encoder.embed(torch.from_numpy(pcm16))["clip"], as_float, rtol=0, atol=1e-6)
    pcm32 = pcm16.astype(np.int32) * 65536
    np.testing.assert_allclose(encoder.embed(pcm32)["clip"], as_float, rtol=0, atol=1e-6)
    pcm8 = (np.round(left * 127) + 128).astype(np.uint8)
    np.testing.assert_allclose(encoder.embed(pcm8)["clip"], encoder.embed((pcm8.astype(np.float32) - 128) / 128)["clip"],
                               rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="dtype bool"):
        encoder.embed(left > 0)


def test_extract_embeddings_writes_frames(checkpoints, tmp_path):
    rate = 16000
    files = []
    for i, seconds in enumerate((0.7, 3.1, 12.0)):
        path = tmp_path / f"clip{i}.wav"
        sf.write(path, np.random.default_rng(i).uniform(-0.5, 0.5, int(seconds * rate)), rate, subtype="PCM_16")
        files.append(str(path))
    out = tmp_path / "out"
    assert extract_main([checkpoints["audiomae"], *files, "--out-dir", str(out), "--frames", "--frame-layer", "1"]) == 0
    frames, offsets, times = (np.load(out / f"{k}.npy") for k in ("frames", "frame_offsets", "frame_times_ms"))
    encoder = load_encoder(checkpoints["audiomae"])
    expected, expected_times = encoder.embed_frames([sf.read(f, dtype="float32")[0] for f in files], layer=1)
    assert offsets.tolist() == np.cumsum([0] + [len(t) for t in expected_times]).tolist()
    for i in range(3):
        np.testing.assert_allclose(frames[offsets[i]:offsets[i + 1]], expected[i], rtol=1e-3, atol=1e-2)  # float16
        np.testing.assert_allclose(times[offsets[i]:offsets[i + 1]], expected_times[i])
    assert not any(name.endswith(".tmp") for name in os.listdir(out))
