"""supmam-export --format transformers (issue 39): a folder transformers' AutoModel and
AutoFeatureExtractor load offline with trust_remote_code=True, in a fresh process that never imports
fairseq or supmam_plugin, giving supmam_plugin.inference's clip embeddings (official AudioMAE
weights, and a checkpoint the plugin trained)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import FIXTURES
from supmam_plugin.commands.export import main as export_main
from supmam_plugin.inference.encoder import load_encoder

LOAD_AND_EMBED = """
import sys, numpy as np, torch
from transformers import AutoFeatureExtractor, AutoModel
folder, clips_path, out_path = sys.argv[1:]
model = AutoModel.from_pretrained(folder, trust_remote_code=True, local_files_only=True).eval()
extractor = AutoFeatureExtractor.from_pretrained(folder, trust_remote_code=True, local_files_only=True)
clips = list(np.load(clips_path, allow_pickle=False))
with torch.no_grad():
    out = model(**extractor(clips, sampling_rate=16000, return_tensors="pt"))
np.save(out_path, out.pooler_output.numpy())
enc = model.config.encoder
patches = (enc["input_frames"] // enc["patch_size"]) * (enc["num_mel_bins"] // enc["patch_size"])
assert out.last_hidden_state.shape == (len(clips), patches, enc["encoder_embed_dim"]), out.last_hidden_state.shape
leaked = [m for m in sys.modules if m.split(".")[0] in ("fairseq", "supmam_plugin")]
assert not leaked, leaked
"""


def clips(seconds: float, count: int = 3) -> np.ndarray:
    rng = np.random.default_rng(5)
    t = np.arange(int(16000 * seconds)) / 16000
    return np.stack([0.3 * np.sin(2 * np.pi * (200 + 300 * k) * t) + 0.05 * rng.standard_normal(len(t))
                     for k in range(count)]).astype(np.float32)


@pytest.mark.parametrize("which", ["official_audiomae", "plugin_checkpoint"])
def test_a_transformers_export_embeds_as_the_plugin_in_a_process_without_it(which, audiomae_checkpoint, tmp_path):
    checkpoint = {"official_audiomae": os.path.join(FIXTURES, "audiomae_official", "pretrained.pth"),
                  "plugin_checkpoint": audiomae_checkpoint}[which]
    folder = tmp_path / "export"
    assert export_main([checkpoint, str(folder), "--format", "transformers"]) == 0
    config = json.load(open(folder / "config.json"))
    assert config["model_type"] == "supmam_audio" and config["auto_map"]["AutoModel"] == "modeling_supmam.SupmamAudioModel"
    audio = clips(4.0)  # shorter than the 10.24-s window: one window, zero frames past its end
    np.save(tmp_path / "clips.npy", audio)
    env = dict(os.environ, HF_HOME=str(tmp_path / "hf_home"), HF_HUB_OFFLINE="1", PYTHONWARNINGS="ignore")
    done = subprocess.run([sys.executable, "-c", LOAD_AND_EMBED, str(folder), str(tmp_path / "clips.npy"),
                           str(tmp_path / "theirs.npy")], cwd=str(tmp_path), env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    theirs = np.load(tmp_path / "theirs.npy")
    ours = load_encoder(checkpoint).embed(list(audio))["clip"]
    assert theirs.shape == ours.shape
    np.testing.assert_allclose(theirs, ours, atol=1e-5, rtol=0)
