"""supmam-linear-probe and the MFCC baseline, against scikit-learn and librosa computed here.

The encoders' embeddings come from ``load_encoder(...).embed_files``; the probes and the MFCC
statistics are recomputed in each test with plain scikit-learn / librosa calls, not the plugin's."""
import json
import os

import librosa
import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, average_precision_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from conftest import make_split_folder
from supmam_plugin.commands.linear_probe import main as probe_main
from supmam_plugin.core.manifest import read_class_list, read_labels, read_manifest
from supmam_plugin.inference.encoder import load_encoder
from supmam_plugin.evaluation.logistic_probe import fit_probe
from supmam_plugin.evaluation.mfcc import MfccConfig, mfcc_features
from supmam_plugin.core.vit import VitEncoder, VitEncoderConfig

SPLITS = ("train", "valid", "test")
GRID = (0.01, 0.1, 1.0, 10.0, 100.0)
ARCH = dict(encoder_layers=2, encoder_embed_dim=64, encoder_heads=2, input_frames=128)


def _perturbed_encoder(seed, **arch):
    """A VitEncoder whose weights are not any initialisation's (as after training)."""
    torch.manual_seed(seed)
    encoder = VitEncoder(VitEncoderConfig(**arch))
    with torch.no_grad():
        for p in encoder.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return encoder


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """{"pt": a supmam pretraining checkpoint in fairseq's format, "pth": an AudioMAE-style .pth}."""
    from fairseq.checkpoint_utils import torch_persistent_save

    from supmam_plugin.core.checkpoints import encoder_to_audiomae_state

    root = tmp_path_factory.mktemp("probe_checkpoints")
    encoder = _perturbed_encoder(1, **ARCH)
    state = {"cfg": {"model": {"_name": "supmam", **ARCH}, "task": {"_name": "supmam_pretraining",
                                                                    "sample_rate": 16000}},
             "model": {f"encoder.{k}": v for k, v in encoder.state_dict().items()}}
    torch_persistent_save(state, str(root / "checkpoint_last.pt"))
    with_cls = _perturbed_encoder(2, **ARCH, cls_token=True)
    torch.save(encoder_to_audiomae_state(with_cls), root / "pretrained.pth")
    return {"pt": str(root / "checkpoint_last.pt"), "pth": str(root / "pretrained.pth")}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_split_folder(tmp_path_factory.mktemp("probe_data"), ("class_a", "class_b", "class_c"))


def _split(data, split, multi_label=False):
    """(paths, targets) of a split, read here from the files."""
    classes = read_class_list(os.path.join(data, "dict.label.txt"))
    manifest = read_manifest(os.path.join(data, f"{split}.tsv"))
    labels = read_labels(os.path.join(data, f"{split}.label"), classes, manifest)
    paths = [os.path.join(manifest.root, e.relative_path) for e in manifest.entries]
    if multi_label:
        targets = np.zeros((len(labels), len(classes)), dtype=int)
        for i, clip in enumerate(labels):
            targets[i, clip] = 1
        return paths, targets
    return paths, np.array([clip[0] for clip in labels])


def _sklearn_probe(features, targets, multi_label=False):
    """Per C of GRID: the fitted pipeline and its valid score; C = the first best on valid."""
    fitted = {}
    for C in GRID:
        logistic = LogisticRegression(C=C, max_iter=5000)
        model = make_pipeline(StandardScaler(), OneVsRestClassifier(logistic) if multi_label else logistic)
        fitted[C] = model.fit(features["train"], targets["train"])
    scores = {C: {s: _score(m, features[s], targets[s], multi_label) for s in SPLITS} for C, m in fitted.items()}
    best = max(GRID, key=lambda C: (scores[C]["valid"], -C))
    return best, scores


def _score(model, x, y, multi_label):
    if not multi_label:
        return 100 * accuracy_score(y, model.predict(x))
    scores, keep = model.decision_function(x), y.sum(0) > 0
    return 100 * np.mean(average_precision_score(y[:, keep], scores[:, keep], average=None))


def _run(args, capsys):
    code = probe_main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _row(results, kind, checkpoint=None):
    (row,) = [r for r in results["results"] if r["kind"] == kind and (checkpoint is None or r.get("checkpoint") == checkpoint)]
    return row


def test_probe_scores_equal_sklearn_on_the_same_embeddings(data, checkpoints, tmp_path, capsys):
    out = str(tmp_path / "results.json")
    code, stdout, err = _run([data, checkpoints["pt"], checkpoints["pth"], "--mfcc", "--out", out], capsys)
    assert code == 0, err
    results = json.load(open(out))
    assert [r["kind"] for r in results["results"]] == ["mfcc", "pretrained", "random_init", "pretrained", "random_init"]
    assert results["splits"] == {"train": 18, "valid": 9, "test": 9} and results["c_chosen_on"] == "valid"
    assert "test accuracy" in stdout and "results:" in stdout.splitlines()[-1]
    for name in ("pt", "pth"):
        for random_init in (False, True):
            row = _row(results, "random_init" if random_init else "pretrained", os.path.abspath(checkpoints[name]))
            encoder = load_encoder(checkpoints[name], random_init=random_init, seed=0)
            features, targets = {}, {}
            for split in SPLITS:
                paths, targets[split] = _split(data, split)
                features[split] = encoder.embed_files(paths)["clip"]
            best, scores = _sklearn_probe(features, targets)
            assert row["C"] == best, (name, random_init, row["valid_by_C"], scores)
            for split in SPLITS:
                assert row[split] == pytest.approx(scores[best][split], abs=1e-3), (name, random_init, split)
            assert row["clips"] == {"train": 18, "valid": 9, "test": 9} and row["seconds"] >= 0
            assert row["feature_dim"] == 64


def test_random_twin_is_the_architecture_without_the_weights(checkpoints):
    loaded = load_encoder(checkpoints["pt"]).encoder.state_dict()
    twin = load_encoder(checkpoints["pt"], random_init=True, seed=0).encoder.state_dict()
    again = load_encoder(checkpoints["pt"], random_init=True, seed=0).encoder.state_dict()
    other = load_encoder(checkpoints["pt"], random_init=True, seed=1).encoder.state_dict()
    assert sorted(twin) == sorted(loaded)
    for key, value in twin.items():
        assert value.shape == loaded[key].shape
        if key == "pos_embed":  # the fixed table is the input pipeline, shared with the checkpoint
            assert torch.equal(value, loaded[key])
            continue
        assert not torch.equal(value, loaded[key]), f"{key} was taken from the checkpoint"
        assert torch.equal(value, again[key]), key
    assert any(not torch.equal(twin[k], other[k]) for k in twin)
    # exactly MAE's initialisation from the seed, as training from scratch builds it
    torch.manual_seed(0)
    reference = VitEncoder(VitEncoderConfig(**ARCH))
    reference.apply(VitEncoder.init_module_weights)
    for key, value in reference.state_dict().items():
        assert torch.equal(value, twin[key]), key
    pth_twin = load_encoder(checkpoints["pth"], random_init=True, seed=0)
    assert pth_twin.encoder.cls_token is not None and pth_twin.input_frames == 128


def test_multi_label_probe_map_equals_sklearn(checkpoints, tmp_path, capsys):
    data = make_split_folder(tmp_path / "ml", ("class_a", "class_b", "class_c"), multi_label=True)
    out = str(tmp_path / "results.json")
    code, _, err = _run([data, checkpoints["pt"], "--no-random-twins", "--multi-label", "--out", out], capsys)
    assert code == 0, err
    (row,) = json.load(open(out))["results"]
    assert row["metric"] == "mAP"
    encoder = load_encoder(checkpoints["pt"])
    features, targets = {}, {}
    for split in SPLITS:
        paths, targets[split] = _split(data, split, multi_label=True)
        features[split] = encoder.embed_files(paths)["clip"]
    assert targets["train"].sum(1).max() == 2  # the label lines do hold several classes
    best, scores = _sklearn_probe(features, targets, multi_label=True)
    assert row["C"] == best
    for split in SPLITS:
        assert row[split] == pytest.approx(scores[best][split], abs=1e-3)
    # without --multi-label the two-label lines are refused, naming the file and line
    code, _, err = _run([data, checkpoints["pt"], "--out", out], capsys)
    assert code == 1 and "train.label:2" in err and "--multi-label" in err


def test_c_is_chosen_on_valid_not_on_test():
    """Data where the best C on valid is not the best on test: the probe reports valid's."""
    for seed in range(100):
        rng = np.random.default_rng(seed)
        w = rng.standard_normal(8)
        features, targets = {}, {}
        for split, n in (("train", 30), ("valid", 40), ("test", 40)):
            x = rng.standard_normal((n, 8))
            features[split], targets[split] = x, (x @ w + 1.5 * rng.standard_normal(n) > 0).astype(int)
        best, scores = _sklearn_probe(features, targets)
        best_on_test = max(GRID, key=lambda C: (scores[C]["test"], -C))
        if scores[best]["test"] < scores[best_on_test]["test"]:
            break
    else:
        pytest.fail("no seed gave a valid choice that differs from the test choice")
    found = fit_probe(features, targets, c_grid=GRID)
    assert found.C == best != best_on_test
    assert found.scores["test"] == pytest.approx(scores[best]["test"])
    assert found.scores["test"] < scores[best_on_test]["test"]
    assert found.valid_by_C == pytest.approx({C: scores[C]["valid"] for C in GRID})


def test_mfcc_features_equal_librosa_computed_here(tone_dataset):
    """MFCC statistics of 16 kHz and 22.05 kHz files (resampled to 16 kHz) against librosa."""
    manifest = read_manifest(os.path.join(tone_dataset, "train.tsv"))
    paths = [os.path.join(manifest.root, e.relative_path) for e in manifest.entries]
    ours = mfcc_features(paths, MfccConfig())
    assert ours.shape == (12, 80)
    for i, path in enumerate(paths):
        y, sr = librosa.load(path, sr=16000)  # librosa's own reading and soxr_hq resampling
        mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=20, n_fft=400, hop_length=160)
        delta = librosa.feature.delta(mfcc)
        expected = np.concatenate([mfcc.mean(1), delta.mean(1), mfcc.std(1), delta.std(1)])
        np.testing.assert_allclose(ours[i], expected, rtol=1e-4, atol=1e-3 * np.abs(expected).max())


def test_mfcc_baseline_row_equals_sklearn_on_librosa_features(data, tmp_path, capsys):
    out = str(tmp_path / "results.json")
    code, stdout, err = _run([data, "--mfcc", "--out", out], capsys)
    assert code == 0, err
    (row,) = json.load(open(out))["results"]
    assert row["kind"] == "mfcc" and row["feature_dim"] == 80
    features, targets = {}, {}
    for split in SPLITS:
        paths, targets[split] = _split(data, split)
        rows = []
        for path in paths:
            mfcc = librosa.feature.mfcc(y=librosa.load(path, sr=16000)[0], sr=16000, n_mfcc=20, n_fft=400,
                                        hop_length=160)
            stacked = np.concatenate([mfcc, librosa.feature.delta(mfcc)])
            rows.append(np.concatenate([stacked.mean(1), stacked.std(1)]))
        features[split] = np.array(rows)
    best, scores = _sklearn_probe(features, targets)
    assert row["C"] == best
    for split in SPLITS:
        assert row[split] == pytest.approx(scores[best][split], abs=1e-3)


def test_errors_name_the_file_and_the_fix(data, checkpoints, tmp_path, capsys):
    import shutil

    out = str(tmp_path / "results.json")
    broken = tmp_path / "no_test"
    shutil.copytree(data, broken)
    os.remove(broken / "test.tsv")
    code, _, err = _run([str(broken), "--mfcc", "--out", out], capsys)
    assert code == 1 and "test.tsv" in err and "--test-split" in err
    code, _, err = _run([str(broken), "--mfcc", "--test-split", "valid", "--valid-split", "train", "--out", out],
                        capsys)
    assert code == 1 and "must differ" in err
    no_labels = tmp_path / "no_labels"
    shutil.copytree(data, no_labels)
    os.remove(no_labels / "valid.label")
    code, _, err = _run([str(no_labels), "--mfcc", "--out", out], capsys)
    assert code == 1 and "valid.label" in err and "label file not found" in err
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    code, _, err = _run([data, str(bad), "--out", out], capsys)
    assert code == 1 and "bad.pt" in err and "cannot be read" in err
    code, _, err = _run([data, str(tmp_path / "missing.pt"), "--out", out], capsys)
    assert code == 1 and "missing.pt" in err
    code, _, err = _run([data, "--out", out], capsys)
    assert code == 1 and "nothing to probe" in err
    code, _, err = _run([data, checkpoints["pt"], "--layer", "5", "--out", out], capsys)
    assert code == 1 and "blocks 0..1" in err
    assert not os.path.exists(out)


def test_layer_option_probes_a_block_mean(data, checkpoints, tmp_path, capsys):
    out = str(tmp_path / "results.json")
    code, _, err = _run([data, checkpoints["pt"], "--no-random-twins", "--layer", "0", "--out", out], capsys)
    assert code == 0, err
    (row,) = json.load(open(out))["results"]
    assert row["layer"] == 0
    encoder = load_encoder(checkpoints["pt"])
    features, targets = {}, {}
    for split in SPLITS:
        paths, targets[split] = _split(data, split)
        features[split] = encoder.embed_files(paths, layers=(0,))["layer_0"].mean(axis=1)
    best, scores = _sklearn_probe(features, targets)
    assert row["C"] == best and row["test"] == pytest.approx(scores[best]["test"], abs=1e-3)
