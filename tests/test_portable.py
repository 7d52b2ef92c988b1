"""Exports (supmam-export) read by the fairseq-free runtime (supmam_plugin.inference.export): in a process
where fairseq, timm, omegaconf and hydra cannot be imported its embeddings equal the plugin's
load_encoder; an AudioMAE export's head gives the official code's logits; a fine-tuned export's
scores equal fairseq's predictions and fairseq-validate's accuracy; tampered or mismatched exports
are refused; the README's lines run as written."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from fairseq import checkpoint_utils

from supmam_plugin.commands.export import main as export_main
from supmam_plugin.inference.encoder import load_encoder
from supmam_plugin.inference.export import ExportError, load_export

from conftest import FIXTURES, REPO, run_cli

OFFICIAL = os.path.join(FIXTURES, "audiomae_official")
BLOCKED = ("fairseq", "timm", "omegaconf", "hydra")
# Run in a fresh interpreter that cannot import BLOCKED: embed the clips of a .npy with each export.
WITHOUT_FAIRSEQ = f"""
import sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ImportError("blocked for the test: " + name)
sys.meta_path.insert(0, Refuse())
import numpy as np
from supmam_plugin.inference.export import load_export
clips = np.load(sys.argv[1])
out = {{}}
for i, folder in enumerate(sys.argv[3:]):
    model = load_export(folder)
    out[f"clip_{{i}}"] = model.embed(clips)["clip"]
    out[f"frames_{{i}}"] = np.stack(model.embed_frames(clips)[0])
assert not [m for m in sys.modules if m.split(".")[0] in {BLOCKED!r}]
np.savez(sys.argv[2], **out)
"""


@pytest.fixture(scope="module")
def classifier(tiny_classifier):
    """A classifier fine-tuned on 128 frames, and a data folder whose 'valid' split is the tone clips."""
    return tiny_classifier


@pytest.fixture(scope="module")
def exports(audiomae_checkpoint, classifier, tmp_path_factory):
    root = tmp_path_factory.mktemp("exports")
    sources = {"pretraining": audiomae_checkpoint, "classifier": classifier[0],
               "audiomae": os.path.join(OFFICIAL, "finetuned.pth")}
    for name, checkpoint in sources.items():
        assert export_main([checkpoint, str(root / name)]) == 0
    return {name: (str(root / name), checkpoint) for name, checkpoint in sources.items()}


def test_the_runtime_without_fairseq_equals_load_encoder(exports, tmp_path):
    clips = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 40000)).astype(np.float32)  # 2.5 s
    np.save(tmp_path / "clips.npy", clips)
    folders = [folder for folder, _ in exports.values()]
    done = subprocess.run([sys.executable, "-c", WITHOUT_FAIRSEQ, str(tmp_path / "clips.npy"), str(tmp_path / "out.npz"),
                           *folders], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    got = np.load(tmp_path / "out.npz")
    for i, (folder, checkpoint) in enumerate(exports.values()):
        plugin = load_encoder(checkpoint)
        np.testing.assert_allclose(got[f"clip_{i}"], plugin.embed(clips)["clip"], rtol=0, atol=1e-5)
        np.testing.assert_allclose(got[f"frames_{i}"], np.stack(plugin.embed_frames(clips)[0]), rtol=0, atol=1e-5)


def test_an_audiomae_export_gives_the_official_logits(exports):
    model = load_export(exports["audiomae"][0])
    fbank = torch.from_numpy(np.load(os.path.join(OFFICIAL, "fbank.npy")))
    with torch.no_grad():
        last = len(model.encoder.blocks) - 1  # the classifier pools the last block's outputs, before the final norm
        logits = model.head(model.encoder.features(fbank, layers=(last,))[f"layer_{last}"].mean(dim=1))
    official = torch.from_numpy(np.load(os.path.join(OFFICIAL, "finetuned_logits.npy")))
    assert (logits - official).abs().max().item() < 1e-5
    config = json.load(open(os.path.join(exports["audiomae"][0], "config.json")))
    assert config["source"]["kind"] == "audiomae" and config["head"]["num_classes"] == 5


def test_a_fine_tuned_export_scores_as_fairseq_does(exports, classifier):
    checkpoint, data = classifier
    models, _, task = checkpoint_utils.load_model_ensemble_and_task([checkpoint], arg_overrides={"data": data})
    task.load_dataset("valid")
    dataset = task.dataset("valid")
    batch = dataset.collater([dataset[i] for i in range(len(dataset))])
    with torch.no_grad():
        expected = torch.softmax(models[0].eval()(**batch["net_input"])["logits"], dim=-1).numpy()
    model = load_export(exports["classifier"][0])
    assert model.class_names == ["low", "high"]
    manifest = dataset.manifest
    clips, rates = zip(*(sf.read(manifest.audio_path(i), dtype="float32") for i in range(len(dataset))))
    scores = np.concatenate([model.scores(clip, sample_rate=rate) for clip, rate in zip(clips, rates)])
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-5)
    out = run_cli(["fairseq-validate", data, "--user-dir", os.path.join(REPO, "supmam_plugin"), "--path", checkpoint,
                   "--task", "supmam_audio_classification", "--valid-subset", "valid", "--batch-size", "5", "--cpu"])
    accuracy = float(re.search(r"valid on 'valid' subset .*\| accuracy ([\d.]+)", out.stdout).group(1))
    labels = batch["target"].numpy()
    assert accuracy == pytest.approx(100 * np.mean(scores.argmax(1) == labels), abs=1e-3)


def test_tampered_or_mismatched_exports_are_refused(exports, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(exports["pretraining"][0], folder)
    config_path, weights_path = folder / "config.json", folder / "model.safetensors"
    config = json.loads(config_path.read_text())
    data = bytearray(weights_path.read_bytes())
    data[-10] ^= 0xFF
    weights_path.write_bytes(bytes(data))
    with pytest.raises(ExportError, match="model.safetensors: its SHA-256 is not the one"):
        load_export(str(folder))
    shutil.copy(os.path.join(exports["pretraining"][0], "model.safetensors"), weights_path)
    config_path.write_text(json.dumps({**config, "encoder": {**config["encoder"], "layers": 3}}))
    with pytest.raises(ExportError, match=r"do not fit the model: .*missing \['blocks.2"):
        load_export(str(folder))
    config_path.write_text(json.dumps({**config, "encoder": {**config["encoder"], "embed_dim": 96}}))
    with pytest.raises(ExportError, match=r"of another shape \[.*'patch_embed.proj.weight: checkpoint \(192, 1, 16, 16\) != model \(96, 1, 16, 16\)"):
        load_export(str(folder))
    config_path.write_text(json.dumps({**config, "format": "something-else/9"}))
    with pytest.raises(ExportError, match="this runtime reads 'supmam-encoder/1'"):
        load_export(str(folder))
    config_path.write_text(json.dumps({**config, "fbank": {**config["fbank"], "num_mel_bins": 64}}))
    with pytest.raises(ExportError, match="fbank settings differ"):
        load_export(str(folder))
    with pytest.raises(ExportError, match="no classifier head"):
        load_export(exports["pretraining"][0]).scores(np.zeros(16000, np.float32))
    with pytest.raises(ExportError, match="config.json not found"):
        load_export(str(tmp_path / "nowhere"))


def test_the_readme_lines_run_as_written(exports, classifier):
    readme = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    block = re.search(r"<!-- portable -->\s*```python\n(.*?)```", readme, re.S).group(1)
    assert len([line for line in block.splitlines() if line.strip() and not line.startswith("#")]) == 3
    code = block.replace("exports/demo", exports["classifier"][0]).replace(
        "data/demo/audio/test/yes/yes_en-us-nyc-m7_000.flac", load_clip(classifier[1]))
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["scores"].shape == (1, 2)


def load_clip(data: str) -> str:
    with open(os.path.join(data, "valid.tsv")) as f:
        root, first = f.read().splitlines()[:2]
    return os.path.join(root, first.split("\t")[0])
