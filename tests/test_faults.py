"""Faults of long runs: a training run killed with kill -9 resumes to the weights of an
uninterrupted run; a corrupt file mid-manifest stops a run (naming it) or, with
task.skip_unreadable, is left out, counted, listed, and stops the run past the allowed fraction;
validation says when it left clips out; a NaN clip that slipped past the checks is reported with
its clip id, not trained on."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import pytest
import torch

from supmam_plugin.criterions.classification_loss import SupmamClassificationConfig, SupmamClassificationCriterion
from supmam_plugin.criterions.finite_loss import check_finite

from conftest import CPU_RUN, REPO, TINY_MODEL, VENV_BIN, run_cli, train_log_records

PRETRAIN = ["fairseq-hydra-train", "--config-dir", "examples/supmam/pretraining", "--config-name", "supmam",
            "task.multi_label=false", "dataset.batch_size=4", *TINY_MODEL, *CPU_RUN]


def pretrain_args(data, save_dir, *extra):
    return [*PRETRAIN, f"task.data={data}", f"checkpoint.save_dir={save_dir}", *extra]


def test_a_run_killed_after_its_first_checkpoint_resumes_to_the_same_weights(tone_dataset, tmp_path):
    extra = ["optimization.max_update=6", "checkpoint.save_interval_updates=2", "checkpoint.keep_interval_updates=1"]
    whole = run_cli(pretrain_args(tone_dataset, tmp_path / "whole", *extra))
    assert whole.returncode == 0, whole.stdout[-3000:]

    killed_dir = tmp_path / "killed"
    log_path = tmp_path / "killed.log"
    args = pretrain_args(tone_dataset, killed_dir, *extra)
    with open(log_path, "w") as log:
        process = subprocess.Popen([os.path.join(VENV_BIN, args[0]), *args[1:]], cwd=REPO, stdout=log,
                                   stderr=subprocess.STDOUT, env=dict(os.environ, OMP_NUM_THREADS="1"))
        deadline = time.time() + 300
        while time.time() < deadline and process.poll() is None and "Saved checkpoint" not in log_path.read_text():
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)  # kill -9 right after the first checkpoint
        process.wait()
    first = log_path.read_text()
    assert "Saved checkpoint" in first and "done training" not in first, "not killed mid-run"
    resumed = run_cli(args)  # the same command again
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert "Loaded checkpoint" in resumed.stdout and "(epoch 1 @ 2 updates)" in resumed.stdout
    updates = [int(r["num_updates"]) for r in train_log_records(resumed.stdout)]
    assert updates and updates[0] > 1 and updates[-1] == 6  # the update count continues
    expected = torch.load(tmp_path / "whole" / "checkpoint_last.pt", weights_only=False)["model"]
    got = torch.load(killed_dir / "checkpoint_last.pt", weights_only=False)["model"]
    assert expected.keys() == got.keys()
    different = [k for k in expected if not torch.equal(expected[k], got[k])]
    assert not different, f"resumed weights differ from the uninterrupted run's: {different[:5]}"


@pytest.fixture
def corrupt_data(tone_dataset, tmp_path):
    """The tone data with clip 5 (line 7 of train.tsv) replaced by garbage bytes."""
    data = tmp_path / "data"
    shutil.copytree(tone_dataset, data)
    with open(data / "train.tsv") as f:
        root, *lines = f.read().splitlines()
    root = os.path.join(data, os.path.relpath(root, tone_dataset))  # the copy's audio folder
    with open(data / "train.tsv", "w") as f:
        f.write("\n".join([root, *lines]) + "\n")
    corrupt = os.path.join(root, lines[5].split("\t")[0])
    with open(corrupt, "wb") as f:
        f.write(b"not audio at all" * 100)
    return str(data), corrupt


def test_a_corrupt_file_stops_the_run_or_is_skipped(corrupt_data, tmp_path):
    data, corrupt = corrupt_data
    failed = run_cli(pretrain_args(data, tmp_path / "fail", "optimization.max_update=4"))
    assert failed.returncode != 0
    assert "train.tsv:7" in failed.stdout and "cannot read audio" in failed.stdout

    skipped = run_cli(pretrain_args(data, tmp_path / "skip", "optimization.max_update=4", "task.skip_unreadable=true"))
    assert skipped.returncode == 0, skipped.stdout[-3000:]
    records = train_log_records(skipped.stdout)
    assert [r["num_updates"] for r in records] == ["1", "2", "3", "4"]
    assert sum(int(float(r["unreadable"])) for r in records) >= 1  # counted in the logged metrics
    listed = (tmp_path / "skip" / "unreadable.tsv").read_text().splitlines()
    assert listed and all(line.split("\t")[:2] == [f"{data}/train.tsv:7", corrupt] for line in listed)

    stopped = run_cli(pretrain_args(data, tmp_path / "stop", "optimization.max_update=4", "task.skip_unreadable=true",
                                    "task.max_unreadable_fraction=0.0001"))
    assert stopped.returncode != 0
    assert "more than task.max_unreadable_fraction=0.0001" in stopped.stdout
    assert str(tmp_path / "stop" / "unreadable.tsv") in stopped.stdout


def test_validation_says_it_left_clips_out(corrupt_data, tmp_path):
    data, _ = corrupt_data
    save_dir = tmp_path / "ft"
    finetune = run_cli([
        "fairseq-hydra-train", "--config-dir", "examples/supmam/finetuning", "--config-name", "esc50",
        f"task.data={data}", f"checkpoint.save_dir={save_dir}", "optimization.max_update=2", "dataset.batch_size=4",
        "task.target_frames=128", "dataset.valid_subset=train", "task.skip_unreadable=true",
        *[a for a in TINY_MODEL if not a.startswith(("model.decoder", "model.cls_hidden"))],
        *[a for a in CPU_RUN if not a.startswith("lr_scheduler.")], "optimizer.groups.default.lr_scheduler.warmup_updates=1",
    ])
    assert finetune.returncode == 0, finetune.stdout[-3000:]
    assert "unreadable clip(s) left out of this validation batch" in finetune.stdout
    out = run_cli(["fairseq-validate", data, "--user-dir", os.path.join(REPO, "supmam_plugin"), "--path",
                   str(save_dir / "checkpoint_last.pt"), "--task", "supmam_audio_classification", "--valid-subset",
                   "train", "--batch-size", "4", "--cpu"])
    assert out.returncode == 0, out.stdout[-3000:]
    assert "left out of this validation batch" in out.stdout and "| unreadable 1" in out.stdout
    # the policy is the task's: --model-overrides sets it for fairseq-validate (here: off, so it stops)
    strict = run_cli(["fairseq-validate", data, "--user-dir", os.path.join(REPO, "supmam_plugin"), "--path",
                      str(save_dir / "checkpoint_last.pt"), "--task", "supmam_audio_classification", "--valid-subset",
                      "train", "--batch-size", "4", "--cpu", "--model-overrides", "{'skip_unreadable': False}"])
    assert strict.returncode != 0 and "train.tsv:7" in strict.stdout


def test_a_nan_clip_is_reported_with_its_id_not_trained_on():
    from supmam_plugin.models.classifier import SupmamClassifier, SupmamClassifierConfig
    from omegaconf import OmegaConf

    cfg = OmegaConf.structured(SupmamClassifierConfig(encoder_layers=1, encoder_embed_dim=64, encoder_heads=2,
                                                      input_frames=128))
    model = SupmamClassifier(cfg, num_classes=2)
    source = 0.1 * torch.randn(3, 20000, generator=torch.Generator().manual_seed(0))
    # a clip that slipped past the loader's checks; NaN in two rows of patches, as training drops one
    # random row of the eight (the test must not depend on which)
    source[1, [500, 12000]] = float("nan")
    sample = {"id": torch.tensor([4, 9, 11]), "net_input": {"source": source, "source_lengths": torch.full((3,), 20000)},
              "target": torch.tensor([0, 1, 0]), "ntokens": 60000}
    criterion = SupmamClassificationCriterion(SupmamClassificationConfig(), task=None)
    with pytest.raises(FloatingPointError, match=r"clip id\(s\) \[9\].*NaN or infinite input samples"):
        criterion(model.train(), sample)
    with pytest.raises(FloatingPointError, match=r"clip id\(s\) \[2\] .*inputs are finite"):
        check_finite(torch.tensor([0.5, 0.2, float("inf")]), {"id": torch.tensor([0, 1, 2]),
                     "net_input": {"source": torch.zeros(3, 400)}}, model)
    check_finite(torch.tensor([0.5, 0.2]), {"id": torch.tensor([0, 1]), "net_input": {"source": torch.zeros(2, 4)}},
                 model)  # finite: nothing to say
