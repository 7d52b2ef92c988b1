"""Precomputed teacher maps give the same targets as the online teacher, and train; a killed
precompute continues to the same cache, N shards make the same cache as one run, and a cache
made by another teacher or for other clips is refused."""
import json
import os
import signal
import subprocess
import time

import numpy as np

import pytest
import torch
import supmam_plugin  # noqa: F401
from supmam_plugin.commands.precompute_teacher import main as precompute_main
from supmam_plugin.core.manifest import ManifestError
from supmam_plugin.teachers.laion_clap import ClapTeacher

from conftest import teacher_state_dict_for_release

from conftest import CPU_RUN, RANDOM_CLAP, TINY_MODEL, VENV_BIN, pretraining_batch, run_cli, train_log_records


@pytest.fixture(scope="module")
def cache(tone_dataset, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("cache"))
    assert precompute_main([tone_dataset, "train", "--out-dir", out, "--teacher", "laion_clap",
                            "--teacher-checkpoint", "random", "--batch-size", "5", "--device", "cpu"]) == 0
    return out


def batch_of(task_overrides, data, size=4):
    """(model with the random CLAP teacher, batch) as pretraining makes them."""
    _, model, batch = pretraining_batch(data, task_overrides, RANDOM_CLAP, size)
    return model, batch


def test_cached_targets_equal_online_targets(tone_dataset, cache):
    meta = json.load(open(os.path.join(cache, "train.teacher.json")))
    assert meta["complete"] and meta["num_clips"] == 12 and meta["map_shape"] == [768, 2, 32]
    model, online = batch_of({"random_crop": False}, tone_dataset)
    assert online["net_input"]["teacher_source"].shape == (4, 480000)  # 10 s at 48 kHz
    _, cached = batch_of({"teacher_cache": cache}, tone_dataset)
    assert "teacher_source" not in cached["net_input"]
    assert cached["net_input"]["teacher_token_map"].dtype == torch.float16
    model.eval()
    from_audio = model.teacher_targets(teacher_source=online["net_input"]["teacher_source"])
    from_cache = model.teacher_targets(teacher_token_map=cached["net_input"]["teacher_token_map"])
    assert from_cache.shape == from_audio.shape == (4, 512, 768)
    # float16 storage: relative error about 1e-3
    torch.testing.assert_close(from_cache, from_audio, rtol=2e-3, atol=2e-3 * from_audio.abs().max().item())


def test_pretraining_reads_the_cache(tone_dataset, cache, tmp_path):
    out = run_cli([
        "fairseq-hydra-train", "--config-dir", "examples/supmam/pretraining", "--config-name", "mam_clap",
        f"task.data={tone_dataset}", f"task.teacher_cache={cache}", "model.teacher_checkpoint=random",
        f"checkpoint.save_dir={tmp_path}", "optimization.max_update=2", "dataset.batch_size=4",
        *TINY_MODEL, *CPU_RUN,
    ])
    assert out.returncode == 0, out.stdout[-3000:]
    assert "train: teacher maps from" in out.stdout
    assert [r["num_updates"] for r in train_log_records(out.stdout)] == ["1", "2"]


def test_cache_for_another_manifest_is_refused(tone_dataset, cache, tmp_path):
    lines = open(os.path.join(tone_dataset, "train.tsv")).read().splitlines()
    other = tmp_path / "other"
    other.mkdir()
    (other / "train.tsv").write_text("\n".join(lines[:-2]) + "\n")
    with pytest.raises(ManifestError, match=r"holds 12 clips but .*lists 10.*make the cache again"):
        batch_of({"teacher_cache": cache}, str(other))
    with pytest.raises(ManifestError, match="no teacher cache for split"):
        batch_of({"teacher_cache": str(tmp_path)}, tone_dataset)


def precompute(data, out, *extra):
    """One clip per batch: every clip's map then comes from the same computation in every run."""
    return precompute_main([data, "train", "--out-dir", out, "--teacher-checkpoint", "random", "--batch-size", "1",
                            "--device", "cpu", *extra])


@pytest.fixture(scope="module")
def whole_cache(tone_dataset, tmp_path_factory):
    """The cache of one uninterrupted, unsharded run."""
    out = str(tmp_path_factory.mktemp("whole"))
    assert precompute(tone_dataset, out) == 0
    return np.load(os.path.join(out, "train.teacher.npy"))


def test_a_killed_precompute_continues_to_the_same_cache(tone_dataset, whole_cache, tmp_path):
    out = str(tmp_path / "cache")
    marks = os.path.join(out, "train.teacher.done-0-of-1.npy")
    process = subprocess.Popen(
        [os.path.join(VENV_BIN, "supmam-precompute-teacher"), tone_dataset, "train", "--out-dir", out,
         "--teacher-checkpoint", "random", "--batch-size", "1", "--device", "cpu"],
        env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore"),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        if os.path.isfile(marks) and 2 <= np.load(marks).sum():
            break
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)  # kill -9, mid-way
    process.wait()
    done_before = int(np.load(marks).sum())
    assert 2 <= done_before < 12, "the run was not killed mid-way"
    assert not json.load(open(os.path.join(out, "train.teacher.json")))["complete"]
    with pytest.raises(ManifestError, match="not finished; run supmam-precompute-teacher again"):
        batch_of({"teacher_cache": out}, tone_dataset)
    assert precompute(tone_dataset, out) == 0  # the same command again
    assert json.load(open(os.path.join(out, "train.teacher.json")))["complete"]
    np.testing.assert_array_equal(np.load(os.path.join(out, "train.teacher.npy")), whole_cache)
    batch_of({"teacher_cache": out}, tone_dataset)  # now readable


def test_shards_make_the_same_cache_as_one_run(tone_dataset, whole_cache, tmp_path, capsys):
    out = str(tmp_path / "cache")
    for k in range(3):
        assert precompute(tone_dataset, out, "--shard", f"{k}/3") == 0
        marks = np.load(os.path.join(out, f"train.teacher.done-{k}-of-3.npy"))
        assert marks.nonzero()[0].tolist() == list(range(k, 12, 3))  # its own clips, each once
        if k < 2:  # unreadable until the last shard is done
            with pytest.raises(ManifestError, match="not finished"):
                batch_of({"teacher_cache": out}, tone_dataset)
    assert json.load(open(os.path.join(out, "train.teacher.json")))["complete"]
    np.testing.assert_array_equal(np.load(os.path.join(out, "train.teacher.npy")), whole_cache)
    capsys.readouterr()
    assert precompute(tone_dataset, out, "--shard", "0/2") == 1  # a message, not a traceback (issue 40)
    assert "another number of shards than 2" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        precompute(tone_dataset, out, "--shard", "3/3")


def test_a_cache_of_other_clips_is_not_continued(tone_dataset, cache, tmp_path, capsys):
    lines = open(os.path.join(tone_dataset, "train.tsv")).read().splitlines()
    other = tmp_path / "other"
    other.mkdir()
    (other / "train.tsv").write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")  # same clips, other order
    assert precompute(str(other), cache) == 1  # refused as a message, not a traceback (issue 40)
    assert "error: " in (err := capsys.readouterr().err) and "made by another teacher or for other clips: manifest_sha256" in err
    with pytest.raises(ManifestError, match="made for another version of .*train.tsv"):
        batch_of({"teacher_cache": cache}, str(other))


def test_pretraining_refuses_a_cache_made_by_another_teacher(tone_dataset, cache, tmp_path):
    other_teacher = tmp_path / "other_clap.pt"  # a loadable CLAP checkpoint, other weights
    other = ClapTeacher("random")
    with torch.no_grad():
        other.audio_branch.norm.weight.add_(0.5)
    torch.save(teacher_state_dict_for_release(other), other_teacher)
    out = run_cli([
        "fairseq-hydra-train", "--config-dir", "examples/supmam/pretraining", "--config-name", "mam_clap",
        f"task.data={tone_dataset}", f"task.teacher_cache={cache}", f"model.teacher_checkpoint={other_teacher}",
        f"checkpoint.save_dir={tmp_path}", "optimization.max_update=1", "dataset.batch_size=4",
        *TINY_MODEL, *CPU_RUN,
    ])
    assert out.returncode != 0
    assert "train.teacher.json: the cached targets were made by another teacher than the model's: checkpoint_sha256" \
        in out.stdout, out.stdout[-3000:]


# ----------------------------------------------------------------------------- damaged caches (issue 40)


def damaged_copy(cache, tmp_path, damage):
    import shutil

    copy = str(tmp_path / "damaged")
    shutil.copytree(cache, copy)
    damage(os.path.join(copy, "train.teacher.npy"))
    return copy


def test_a_truncated_cache_is_refused_when_opened(tone_dataset, cache, tmp_path):
    """Before: numpy's 'mmap length is greater than file size' (or an EOFError for a stub)."""
    def truncate(path):
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)

    damaged = damaged_copy(cache, tmp_path, truncate)
    with pytest.raises(ManifestError, match=r"train\.teacher\.npy: \d+ bytes, but its header says \(12, 768, 2, 32\) "
                                            r"float16 .*truncated"):
        batch_of({"teacher_cache": damaged}, tone_dataset)


def test_a_cache_holding_nan_names_the_clip(tone_dataset, cache, tmp_path):
    """Before: the NaN reached the loss and was reported as 'the model diverged; lower optimization.lr'."""
    def poison(path):
        maps = np.load(path, mmap_mode="r+")
        maps[2, 5, 1, 7] = np.nan
        maps.flush()

    damaged = damaged_copy(cache, tmp_path, poison)
    with pytest.raises(ManifestError, match=r"train\.tsv:4 \(cached teacher map\): .*1 NaN or infinite values"):
        batch_of({"teacher_cache": damaged}, tone_dataset)
