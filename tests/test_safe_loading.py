"""Opening a checkpoint never runs code from it: a crafted file (a pickle whose ``__reduce__`` calls
``os.system``) is refused through every public loading path, naming the file and the way to load
it anyway; the layouts real releases carry (AudioMAE's ``args`` Namespace, numpy scalars, an
omegaconf config) open without that."""
import argparse
import os

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from conftest import FIXTURES, run_cli

TRUST = "SUPMAM_TRUST_CHECKPOINTS"


class _RunsAShellCommand:
    """Unpickling this object runs ``touch MARKER`` (what a malicious download would do)."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture
def crafted(tmp_path, monkeypatch):
    """(path of a .pth that runs a shell command when unpickled, the file that command would make)."""
    monkeypatch.delenv(TRUST, raising=False)
    marker = tmp_path / "code_ran"
    path = tmp_path / "pretrained.pth"
    weights = torch.load(os.path.join(FIXTURES, "audiomae_official", "finetuned.pth"), weights_only=True)
    torch.save({**weights, "args": _RunsAShellCommand(str(marker))}, path)
    return str(path), marker


def _refused(load, crafted):
    from supmam_plugin.core.checkpoints import CheckpointError

    path, marker = crafted
    with pytest.raises(CheckpointError) as error:
        load(path)
    assert path in str(error.value) and TRUST in str(error.value) and "system" in str(error.value)
    assert not marker.exists(), "the checkpoint's code ran"


def _classifier(path):
    from supmam_plugin.models.classifier import SupmamClassifier, SupmamClassifierConfig

    return SupmamClassifier(OmegaConf.structured(SupmamClassifierConfig(pretrained=path)), num_classes=2)


def _supmam_teacher(path):
    from supmam_plugin.models.supmam_model import SupmamConfig, SupmamModel

    cfg = SupmamConfig(target="teacher", teacher="checkpoint_encoder", teacher_checkpoint=path, encoder_layers=1,
                       encoder_embed_dim=192, encoder_heads=3, decoder_embed_dim=128, decoder_heads=4)
    return SupmamModel(OmegaConf.structured(cfg))


def _loaders():
    from supmam_plugin.pictures import reconstruction
    from supmam_plugin.core.checkpoints import read_checkpoint, read_encoder
    from supmam_plugin.inference import hear
    from supmam_plugin.inference.encoder import load_encoder
    from supmam_plugin.inference.export import load_encoder_or_export, write_export
    from supmam_plugin.inference.xares import SupmamEncoder
    from supmam_plugin.models.classifier import SupmamClassifier
    from supmam_plugin.models.supmam_model import SupmamModel
    from supmam_plugin.teachers import CheckpointEncoderTeacher, ClapTeacher

    return {
        "read_checkpoint": read_checkpoint,
        "read_encoder": read_encoder,
        "load_encoder": load_encoder,
        "load_encoder_or_export": load_encoder_or_export,
        "hear.load_model": hear.load_model,
        "xares.SupmamEncoder": SupmamEncoder,
        "model.pretrained": _classifier,
        "SupmamClassifier.from_audiomae": SupmamClassifier.from_audiomae,
        "SupmamModel.from_audiomae": SupmamModel.from_audiomae,
        "SupmamModel.from_checkpoint": SupmamModel.from_checkpoint,
        "teacher checkpoint_encoder": lambda path: CheckpointEncoderTeacher(path, grid=(64, 8)),
        "model.teacher_checkpoint": _supmam_teacher,
        "teacher laion_clap": ClapTeacher,
        "write_export": lambda path: write_export(path, os.path.join(os.path.dirname(path), "export")),
        "plot_reconstruction": reconstruction.load_pretraining_model,
    }


@pytest.mark.parametrize("name", list(_loaders()))
def test_a_crafted_checkpoint_runs_nothing(name, crafted):
    _refused(_loaders()[name], crafted)


@pytest.mark.parametrize("command", [["supmam-convert-audiomae", "{path}", "{out}"], ["supmam-export", "{path}", "{out}"],
                                     ["supmam-extract-embeddings", "{path}", "--manifest", "{data}/train.tsv", "--out-dir", "{out}"]])
def test_the_commands_refuse_it_too(command, crafted, tone_dataset, tmp_path):
    path, marker = crafted
    args = [a.format(path=path, out=str(tmp_path / "out"), data=tone_dataset) for a in command]
    out = run_cli(args, timeout=300)
    assert out.returncode != 0 and TRUST in out.stdout and path in out.stdout, out.stdout[-2000:]
    assert not marker.exists()


def test_the_user_can_say_they_trust_a_file(crafted, monkeypatch, caplog):
    from supmam_plugin.core.checkpoints import read_checkpoint

    path, marker = crafted
    monkeypatch.setenv(TRUST, "1")
    with caplog.at_level("WARNING"):
        read_checkpoint(path)
    assert marker.exists() and "weights_only=False" in caplog.text
    marker.unlink()
    monkeypatch.delenv(TRUST)
    read_checkpoint(path, trust=True)
    assert marker.exists()


def test_what_released_checkpoints_carry_opens_safely(tmp_path):
    """AudioMAE's scripts save optimizer, epoch, scaler and an argparse ``args``; trainers keep numpy
    scalars; older fairseq keeps ``cfg`` as an omegaconf container: all open without trust, and
    the encoder read from them is the fixture's."""
    from supmam_plugin.core.checkpoints import read_encoder

    official = os.path.join(FIXTURES, "audiomae_official", "finetuned.pth")
    state = torch.load(official, weights_only=True)
    state.update(args=argparse.Namespace(model="vit_base_patch16", blr=1e-3, input_size=[1024, 128], mask_2d=True),
                 epoch=59, scaler={"scale": 65536.0, "_growth_tracker": 10}, best=np.float64(0.47), step=np.int64(3),
                 optimizer={"state": {}, "param_groups": [{"lr": 1e-4, "params": [0, 1]}]})
    torch.save(state, tmp_path / "finetuned.pth")
    ours, reference = read_encoder(str(tmp_path / "finetuned.pth")), read_encoder(official)
    assert ours.architecture == reference.architecture
    assert all(torch.equal(ours.weights[k], reference.weights[k]) for k in reference.weights)

    classifier = torch.load(os.path.join(FIXTURES, "legacy_458ab0c", "supmam_classifier.pt"), weights_only=True)
    classifier["cfg"] = OmegaConf.create(classifier["cfg"])
    torch.save(classifier, tmp_path / "dictconfig.pt")
    assert read_encoder(str(tmp_path / "dictconfig.pt")).kind == "supmam_classifier"


def test_torch_load_is_called_in_one_module_of_the_package():
    import supmam_plugin

    root = os.path.dirname(supmam_plugin.__file__)
    callers = []
    for folder, _, files in os.walk(root):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(folder, name), encoding="utf-8") as f:
                    if "torch.load(" in f.read():
                        callers.append(os.path.relpath(os.path.join(folder, name), root))
    assert callers == [os.path.join("core", "checkpoints", "read.py")]
