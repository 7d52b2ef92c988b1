"""Embedding extraction (supmam_plugin.inference.encoder, supmam-extract-embeddings) from a real
pretraining checkpoint written by fairseq-hydra-train, on real audio files."""
import os

import numpy as np
import pytest
import torch

from conftest import tone, write_audio
from supmam_plugin.commands.extract_embeddings import main as extract_main
from supmam_plugin.core.audio import resample
from supmam_plugin.core.manifest import read_manifest
from supmam_plugin.inference.encoder import load_encoder
from supmam_plugin.core.checkpoints import CheckpointError
from supmam_plugin.core.vit import VitEncoder, VitEncoderConfig

ATOL = 1e-5


@pytest.fixture(scope="module")
def checkpoint(audiomae_checkpoint):
    return audiomae_checkpoint


@pytest.fixture(scope="module")
def encoder(checkpoint):
    return load_encoder(checkpoint)


def noise(seconds, rate=16000, seed=0):
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal(int(seconds * rate))).astype(np.float32)


def test_load_encoder_takes_the_checkpoints_encoder_weights(checkpoint, encoder):
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    expected = {k[len("encoder."):]: v for k, v in state["model"].items() if k.startswith("encoder.")}
    loaded = encoder.encoder.state_dict()
    assert sorted(loaded) == sorted(expected)
    for k, v in expected.items():
        assert torch.equal(loaded[k], v), k
    assert not encoder.encoder.training
    assert (encoder.num_layers, encoder.embed_dim, encoder.num_patches, encoder.input_frames) == (2, 192, 512, 1024)


def test_classifier_checkpoint_and_bad_checkpoints(checkpoint, encoder, tmp_path):
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    state["cfg"]["model"]["_name"] = "supmam_classifier"
    state["model"] = {k: v for k, v in state["model"].items() if k.startswith("encoder.")}
    state["model"].update({"fc_norm.weight": torch.ones(192), "fc_norm.bias": torch.zeros(192),
                           "head.weight": torch.zeros(2, 192), "head.bias": torch.zeros(2)})
    torch.save(state, tmp_path / "classifier.pt")
    classifier = load_encoder(str(tmp_path / "classifier.pt"))
    wave = noise(2.0)
    np.testing.assert_array_equal(classifier.embed(wave)["clip"], encoder.embed(wave)["clip"])

    state["cfg"]["model"]["_name"] = "wav2vec2"
    torch.save(state, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="other.pt.*'wav2vec2'"):
        load_encoder(str(tmp_path / "other.pt"))
    with pytest.raises(FileNotFoundError, match="nothere.pt"):
        load_encoder(str(tmp_path / "nothere.pt"))


def test_audiomae_pth_with_cls_token(tmp_path):
    from supmam_plugin.inference.encoder import AudioEncoder
    from supmam_plugin.core.checkpoints import encoder_to_audiomae_state

    torch.manual_seed(0)
    vit = VitEncoder(VitEncoderConfig(encoder_layers=1, encoder_embed_dim=192, encoder_heads=3, cls_token=True))
    torch.save(encoder_to_audiomae_state(vit), tmp_path / "pretrained.pth")
    loaded = load_encoder(str(tmp_path / "pretrained.pth"))
    assert loaded.encoder.cls_token is not None and loaded.input_frames == 1024
    wave = noise(1.0)
    np.testing.assert_allclose(loaded.embed(wave)["clip"], AudioEncoder(vit).embed(wave)["clip"], atol=ATOL)


def test_batching_and_padding_do_not_change_embeddings(encoder):
    a, b = noise(3.0, seed=1), noise(1.3, seed=2)
    both = encoder.embed([a, b], 16000, layers=(0,), patches=True)
    assert both["clip"].shape == (2, 192) and both["patches"].shape == (2, 512, 192)
    assert both["layer_0"].shape == (2, 512, 192) and both["clip"].dtype == np.float32
    for i, wave in enumerate([a, b]):
        alone = encoder.embed(torch.from_numpy(wave), 16000, layers=(0,), patches=True)  # 1-D tensor
        for k in both:
            np.testing.assert_allclose(both[k][i], alone[k][0], atol=ATOL, err_msg=k)
    stacked = encoder.embed(np.stack([a, a[::-1].copy()]), 16000, batch_size=1)  # (B, N) array
    np.testing.assert_allclose(stacked["clip"][0], both["clip"][0], atol=ATOL)
    assert not np.allclose(both["clip"][0], both["clip"][1], atol=1e-3)


def test_other_sample_rates_are_resampled(encoder):
    wave = tone(2.0, 22050, freq=330.0)
    direct = encoder.embed(wave, 22050)["clip"]
    by_hand = encoder.embed(resample(wave, 22050, 16000), 16000)["clip"]
    np.testing.assert_allclose(direct, by_hand, atol=ATOL)
    assert not np.allclose(direct, encoder.embed(wave, 16000)["clip"], atol=1e-3)  # the rate matters


def test_clip_is_the_mean_of_patches_and_patches_the_norm_of_the_last_layer(encoder):
    out = encoder.embed([noise(4.0, seed=3), noise(0.7, seed=4)], 16000, layers=(0, 1), patches=True)
    np.testing.assert_allclose(out["clip"], out["patches"].mean(axis=1), atol=ATOL)
    with torch.no_grad():
        normed = encoder.encoder.norm(torch.from_numpy(out["layer_1"])).numpy()
    np.testing.assert_allclose(out["patches"], normed, atol=1e-4)
    assert not np.allclose(out["layer_0"], out["layer_1"], atol=1e-3)


def test_vit_features_match_encode_with_and_without_cls_token():
    torch.manual_seed(0)
    for cls_token in (False, True):
        vit = VitEncoder(VitEncoderConfig(encoder_layers=2, encoder_embed_dim=32, encoder_heads=2,
                                          input_frames=64, cls_token=cls_token)).eval()
        fbank = torch.randn(2, 64, 128)
        with torch.no_grad():
            features = vit.features(fbank, layers=[1])
            tokens = vit.embed_patches(fbank)
            torch.testing.assert_close(features["patches"], vit.encode(tokens))
            torch.testing.assert_close(features["layer_1"], vit.encode(tokens, final_norm=False))
            torch.testing.assert_close(features["clip"], vit.encode(tokens).mean(dim=1))
        assert features["patches"].shape == (2, 32, 32)
        with pytest.raises(ValueError, match="layer 2"):
            vit.features(fbank, layers=[2])


def test_long_clip_is_the_mean_of_its_windows(encoder):
    wave = noise(25.0, seed=5)
    window, stride = encoder.window_samples, encoder.window_stride
    assert (window, stride) == (164080, 163840)  # 1024 frames; windows follow each other frame by frame
    assert encoder.windows(len(wave)) == [(0, window), (stride, stride + window), (len(wave) - window, len(wave))]
    out = encoder.embed(wave, 16000, layers=(1,), batch_size=2)
    pieces = [wave[:window], wave[stride:stride + window], wave[-window:]]
    separate = encoder.embed(pieces, 16000, layers=(1,))
    for k in out:
        np.testing.assert_allclose(out[k][0], separate[k].mean(axis=0), atol=ATOL, err_msg=k)


def test_command_on_a_manifest_and_on_files(checkpoint, encoder, tone_dataset, tmp_path, capsys):
    manifest_path = os.path.join(tone_dataset, "train.tsv")
    manifest = read_manifest(manifest_path)
    out_dir = tmp_path / "out"
    rc = extract_main([checkpoint, "--manifest", manifest_path, "--out-dir", str(out_dir), "--patches",
                       "--layers", "0,1", "--batch-size", "5", "--progress-every", "5"])
    assert rc == 0, capsys.readouterr().err
    assert "5/12 files" in capsys.readouterr().out
    clip = np.load(out_dir / "clip.npy")
    assert clip.shape == (len(manifest), 192) and clip.dtype == np.float32
    paths = (out_dir / "files.txt").read_text().splitlines()
    assert paths == [manifest.audio_path(i) for i in range(len(manifest))]
    expected = encoder.embed_files(paths[:3], layers=(0, 1), patches=True)
    np.testing.assert_allclose(clip[:3], expected["clip"], atol=ATOL)
    for k in ("patches", "layer_0", "layer_1"):
        array = np.load(out_dir / f"{k}.npy")
        assert array.shape == (12, 512, 192) and array.dtype == np.float16
        np.testing.assert_allclose(array[:3].astype(np.float32), expected[k], atol=2e-2, rtol=2e-3)

    files = [write_audio(tmp_path / "a.flac", tone(1.5, 16000), 16000),
             write_audio(tmp_path / "b.wav", tone(12.0, 22050, freq=600.0), 22050)]
    rc = extract_main([checkpoint, *files, "--out-dir", str(tmp_path / "two")])
    assert rc == 0, capsys.readouterr().err
    assert np.load(tmp_path / "two" / "clip.npy").shape == (2, 192)
    assert (tmp_path / "two" / "files.txt").read_text().splitlines() == files
    assert not (tmp_path / "two" / "patches.npy").exists()


def test_command_names_missing_files(checkpoint, tone_dataset, tmp_path, capsys):
    missing = str(tmp_path / "gone.wav")
    rc = extract_main([checkpoint, os.path.join(tone_dataset, "audio", "low", "clip0.wav"), missing,
                       "--out-dir", str(tmp_path / "out")])
    assert rc == 1 and missing in capsys.readouterr().err
    lines = open(os.path.join(tone_dataset, "train.tsv")).read().splitlines()
    lines.insert(2, "low/gone.wav\t16000")
    (tmp_path / "bad.tsv").write_text("\n".join(lines) + "\n")
    rc = extract_main([checkpoint, "--manifest", str(tmp_path / "bad.tsv"), "--out-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 1 and "bad.tsv:3" in err and "gone.wav" in err
    rc = extract_main([checkpoint, "--manifest", os.path.join(tone_dataset, "train.tsv"), "--layers", "2",
                       "--out-dir", str(tmp_path / "out")])
    assert rc == 1 and "block 2 does not exist" in capsys.readouterr().err
    rc = extract_main([str(tmp_path / "none.pt"), missing, "--out-dir", str(tmp_path / "out")])
    assert rc == 1 and "gone.wav" in capsys.readouterr().err  # files are checked before the model loads
