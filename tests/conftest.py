"""Shared test helpers: real audio files on disk and manifest folders."""
from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import soundfile as sf

warnings.filterwarnings("ignore", category=FutureWarning)

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def tone(seconds: float, sample_rate: int, freq: float = 440.0, channels: int = 1, seed: int = 0) -> np.ndarray:
    """A sine plus a little noise, float32, (N,) or (N, channels)."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    rng = np.random.default_rng(seed)
    wave = 0.5 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(len(t))
    wave = wave.astype(np.float32)
    if channels > 1:
        wave = np.stack([wave * (c + 1) / channels for c in range(channels)], axis=1)
    return wave


def write_audio(path, wave: np.ndarray, sample_rate: int, subtype: str | None = None) -> str:
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    sf.write(str(path), wave, sample_rate, subtype=subtype)
    return str(path)


def make_labelled_folder(root, classes, clips, split="train", ext="label"):
    """Write audio files and a manifest/labels/dict. clips: list of (name, seconds, rate, labels)."""
    from supmam_plugin.core.manifest import write_class_list, write_manifest

    audio_root = os.path.join(str(root), "audio")
    entries, labels = [], []
    for i, (name, seconds, rate, clip_labels) in enumerate(clips):
        wave = tone(seconds, rate, freq=200.0 + 50 * i, seed=i)
        write_audio(os.path.join(audio_root, name), wave, rate)
        entries.append((name, len(wave)))
        labels.append(clip_labels)
    write_manifest(str(root), split, audio_root, entries, labels, ext)
    write_class_list(str(root), classes, ext)
    return str(root)


def make_split_folder(root, classes=("class_a", "class_b"), per_class=None, seconds=1.0, rate=16000,
                      ext="label", multi_label=False):
    """A manifest folder of another layout than data/demo: flat files ``clips/{split}_{k:03d}.wav``
    (no class sub-folders), splits train/valid/test, each class a band of pitches (class i: 400 + 50 i
    Hz and up, the bands overlap) in noise: a probe learns it, not perfectly. per_class: {split: clips per class}.
    multi_label: odd clips also carry the next class (label lines with two names)."""
    from supmam_plugin.core.manifest import write_class_list, write_manifest

    per_class = per_class or {"train": 6, "valid": 3, "test": 3}
    audio_root = os.path.join(str(root), "clips")
    for s, (split, count) in enumerate(per_class.items()):
        entries, labels = [], []
        for k in range(count * len(classes)):
            c = k % len(classes)
            rng = np.random.default_rng(1000 * s + k)
            wave = tone(seconds, rate, freq=400.0 + 50 * c + 200 * rng.random(), seed=1000 * s + k)
            wave = (wave + 0.3 * rng.standard_normal(len(wave))).astype(np.float32)
            name = f"{split}_{k:03d}.wav"
            write_audio(os.path.join(audio_root, name), wave, rate)
            entries.append((name, len(wave)))
            names = [classes[c]] + ([classes[(c + 1) % len(classes)]] if multi_label and k % 2 else [])
            labels.append(names)
        write_manifest(str(root), split, audio_root, entries, labels, ext)
    write_class_list(str(root), list(classes), ext)
    return str(root)


@pytest.fixture
def fixtures_dir():
    return FIXTURES


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.dirname(os.path.abspath(__import__("sys").executable))
# A tiny model for CPU tests: 2 x 192 encoder, 128-wide decoder.
TINY_MODEL = [
    "model.encoder_layers=2",
    "model.encoder_embed_dim=192",
    "model.encoder_heads=3",
    "model.decoder_embed_dim=128",
    "model.decoder_heads=4",
    "model.cls_hidden_dim=64",
]
CPU_RUN = [
    "common.cpu=true",
    "distributed_training.distributed_world_size=1",
    "dataset.num_workers=0",
    "common.log_interval=1",
    "common.log_format=json",
    "lr_scheduler.warmup_updates=1",
]


def run_cli(args, timeout=600, env_extra=None, cwd=REPO):
    """Run a console script of the venv; returns CompletedProcess (stdout+stderr in .stdout)."""
    import subprocess

    import tempfile

    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1", **(env_extra or {}))
    exe = os.path.join(VENV_BIN, args[0])
    if args[0] == "fairseq-hydra-train" and not any(str(a).startswith("hydra.run.dir=") for a in args):
        # hydra's default folder is named by the second: runs in parallel processes would share it
        args = [*args, f"hydra.run.dir={tempfile.mkdtemp(prefix='hydra_')}"]
    return subprocess.run([exe] + list(args[1:]), cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)


def train_log_records(output: str, tag: str = "train_inner") -> list[dict]:
    """The JSON records fairseq logs (common.log_format=json) under ``tag``."""
    from supmam_plugin.experiments.fairseq_runs import log_records

    return log_records(output, tag)


# 12 labelled clips (two classes, different pitches and lengths), 16 and 22.05 kHz
TONE_CLIPS = [(f"{['low', 'high'][i % 2]}/clip{i}.wav", 1.0 + 0.25 * (i % 4), [16000, 22050][i % 3 == 0],
               [["low", "high"][i % 2]]) for i in range(12)]


@pytest.fixture(scope="session")
def tone_dataset(tmp_path_factory):
    """The tone clips on disk, in a folder of this test process's own (tests may write beside them)."""
    return make_labelled_folder(tmp_path_factory.mktemp("tones"), ["low", "high"], TONE_CLIPS, split="train")


# The tiny student of in-process tests that build a model through the task.
TINY_STUDENT = dict(encoder_layers=1, encoder_embed_dim=192, encoder_heads=3, decoder_embed_dim=128, decoder_heads=4)
RANDOM_CLAP = dict(target="teacher", teacher="laion_clap", teacher_checkpoint="random")


def pretraining_batch(data, task_overrides=None, model_overrides=None, size=4):
    """(task, model, batch of the first ``size`` clips of ``train``) of the supmam_pretraining task;
    with ``model_overrides`` (SupmamConfig fields over TINY_STUDENT) the model is built through the
    task first, as fairseq-hydra-train does, so the batches carry what its teacher needs; else model
    is None."""
    from fairseq import tasks
    from omegaconf import OmegaConf

    from supmam_plugin.models.supmam_model import SupmamConfig

    task = tasks.setup_task(OmegaConf.create({"_name": "supmam_pretraining", "data": data, **(task_overrides or {})}))
    model = None
    if model_overrides is not None:
        cfg = OmegaConf.structured(SupmamConfig(**{**TINY_STUDENT, **model_overrides}))
        cfg._name = "supmam"
        model = task.build_model(cfg)
    dataset = task.load_dataset("train")
    return task, model, dataset.collater([dataset[i] for i in range(size)])


def shared_once(tmp_path_factory, name: str, make) -> str:
    """``make(folder)`` run once per test session, even when pytest-xdist splits the session over
    processes: the first process makes it under a lock in the folder they share, the others wait
    and reuse it. Returns ``folder``."""
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the workers' temp folders share this parent
    folder = base / f"shared_{name}"
    with FileLock(str(folder) + ".lock"):
        if not (folder / ".done").exists():
            folder.mkdir(parents=True, exist_ok=True)
            make(folder)
            (folder / ".done").touch()
    return str(folder)


@pytest.fixture(scope="session")
def shared_tones(tmp_path_factory):
    """The 12 tone clips of ``tone_dataset`` in one folder all test processes share (read only)."""
    return shared_once(tmp_path_factory, "tones",
                       lambda root: make_labelled_folder(root, ["low", "high"], TONE_CLIPS, split="train"))


@pytest.fixture(scope="session")
def audiomae_checkpoint(shared_tones, tmp_path_factory):
    """A tiny ``supmam`` pretraining checkpoint (audiomae recipe, 1024 frames, 2 updates) written by
    fairseq-hydra-train on the tone data, once per session."""
    def make(save_dir):
        out = run_cli([
            "fairseq-hydra-train", "--config-dir", "examples/supmam/pretraining", "--config-name", "audiomae",
            f"task.data={shared_tones}", f"checkpoint.save_dir={save_dir}", f"hydra.run.dir={save_dir}/hydra",
            "optimization.max_update=2", "dataset.batch_size=4", *TINY_MODEL, *CPU_RUN, "model.decoder_layers=1",
        ])
        assert out.returncode == 0, out.stdout[-3000:]
    return os.path.join(shared_once(tmp_path_factory, "audiomae_checkpoint", make), "checkpoint_last.pt")


@pytest.fixture(scope="session")
def tiny_classifier(audiomae_checkpoint, shared_tones, tmp_path_factory):
    """(checkpoint, data folder): a classifier fine-tuned from ``audiomae_checkpoint`` on 128 frames
    (4 updates), and a copy of the tone data whose 'valid' split is its 'train' split; once per session."""
    import shutil

    def make(root):
        data = root / "data"
        shutil.copytree(shared_tones, data)
        for ext in ("tsv", "label"):
            shutil.copy(data / f"train.{ext}", data / f"valid.{ext}")
        out = run_cli([
            "fairseq-hydra-train", "--config-dir", "examples/supmam/finetuning", "--config-name", "esc50",
            f"task.data={data}", f"model.pretrained={audiomae_checkpoint}", f"checkpoint.save_dir={root / 'ft'}",
            f"hydra.run.dir={root / 'ft'}/hydra", "optimization.max_update=4", "dataset.batch_size=4",
            "task.target_frames=128", "dataset.valid_subset=valid",
            *[a for a in TINY_MODEL if not a.startswith(("model.decoder", "model.cls_hidden"))],
            *[a for a in CPU_RUN if not a.startswith("lr_scheduler.")],
            "optimizer.groups.default.lr_scheduler.warmup_updates=1",
        ])
        assert out.returncode == 0, out.stdout[-3000:]
    root = shared_once(tmp_path_factory, "tiny_classifier", make)
    return os.path.join(root, "ft", "checkpoint_last.pt"), os.path.join(root, "data")


def pytest_configure(config):
    """Under pytest-xdist each process takes one core: torch's own threads would fight the other's."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


def teacher_state_dict_for_release(teacher) -> dict:
    """A ClapTeacher's weights in the layout of a released LAION-CLAP checkpoint:
    `{"state_dict": {"module.audio_branch.<k>": v, ..., "module.audio_projection.<k>": v}}`."""
    return {"state_dict": {f"module.{key}": value for key, value in teacher.state_dict().items()}}
