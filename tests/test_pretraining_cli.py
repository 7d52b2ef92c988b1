"""fairseq-hydra-train runs the four pretraining recipes on the CPU (tiny model, real audio),
saves a checkpoint and resumes from checkpoint_last.pt, continuing the update count."""
import os

import pytest
import torch

from conftest import CPU_RUN, TINY_MODEL, run_cli, train_log_records

RECIPES = {
    "audiomae": [],
    "mam_clap": ["model.teacher_checkpoint=random"],
    "supmam": ["task.multi_label=false"],
    "supmam_clap": ["model.teacher_checkpoint=random", "task.multi_label=false"],
}


def hydra_train(recipe, data, save_dir, max_update, extra=()):
    args = [
        "fairseq-hydra-train", "--config-dir", "examples/supmam/pretraining", "--config-name", recipe,
        f"task.data={data}", f"checkpoint.save_dir={save_dir}", f"optimization.max_update={max_update}",
        "dataset.batch_size=4", *TINY_MODEL, *CPU_RUN, *RECIPES[recipe], *extra,
    ]
    return run_cli(args)


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_recipe_trains_saves_and_resumes(recipe, tone_dataset, tmp_path):
    first = hydra_train(recipe, tone_dataset, tmp_path, max_update=2)
    assert first.returncode == 0, first.stdout[-4000:]
    records = train_log_records(first.stdout)
    assert [r["num_updates"] for r in records] == ["1", "2"]
    assert all(float(r["loss"]) > 0 for r in records)
    if recipe.startswith("sup"):
        assert "cls_loss" in records[0] and "cls_accuracy" in records[0]
    if "clap" in recipe:
        assert "visible_loss" in records[0] and "RANDOMLY INITIALISED" in first.stdout
    checkpoint = torch.load(os.path.join(tmp_path, "checkpoint_last.pt"), weights_only=False)
    assert checkpoint["extra_state"]["train_iterator"]["epoch"] >= 1
    assert not any("audio_branch" in k or "teacher" in k for k in checkpoint["model"])
    resumed = hydra_train(recipe, tone_dataset, tmp_path, max_update=3)
    assert resumed.returncode == 0, resumed.stdout[-4000:]
    assert "Loaded checkpoint" in resumed.stdout and "@ 2 updates" in resumed.stdout
    assert [r["num_updates"] for r in train_log_records(resumed.stdout)] == ["3"]


def test_probe_while_pretraining_equals_supmam_linear_probe(tmp_path):
    """task.probe_data: each validation logs the linear probe of the current encoder (C chosen on the
    probe folder's valid split), picks checkpoint_best by it, and scores what supmam-linear-probe
    scores on the saved checkpoint."""
    import json

    from conftest import make_split_folder

    data = make_split_folder(tmp_path / "data", per_class={"train": 6, "valid": 4, "test": 2})
    out = hydra_train("audiomae", data, tmp_path / "run", max_update=3, extra=[
        "dataset.disable_validation=false", "dataset.valid_subset=valid", f"task.probe_data={data}",
        "task.probe_max_clips=0", "checkpoint.best_checkpoint_metric=probe_accuracy",
        "checkpoint.maximize_best_checkpoint_metric=true"])
    assert out.returncode == 0, out.stdout[-4000:]
    valid = train_log_records(out.stdout, "valid")
    assert len(valid) == 1 and "valid_probe_accuracy" in valid[0]
    assert f"checkpoint_best.pt (epoch 1 @ 3 updates, score {float(valid[0]['valid_probe_accuracy'])})" in out.stdout
    probe = run_cli(["supmam-linear-probe", data, str(tmp_path / "run" / "checkpoint_best.pt"), "--no-random-twins",
                     "--out", str(tmp_path / "probe.json")])
    assert probe.returncode == 0, probe.stdout[-3000:]
    row = json.load(open(tmp_path / "probe.json"))["results"][0]
    assert float(valid[0]["valid_probe_accuracy"]) == pytest.approx(row["valid"], abs=0.006)


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_a_clip_length_off_the_window_grid_trains(recipe, tone_dataset, tmp_path):
    """208 fbank frames (a 2.08-s clip): a 13 x 8 patch grid, no multiple of the decoder's 4 x 4
    windows (issue 40: it stopped every recipe). The shifted-window decoder pads it and trains."""
    out = hydra_train(recipe, tone_dataset, tmp_path, max_update=2, extra=["task.target_frames=208", "model.decoder_layers=2"])
    assert out.returncode == 0, out.stdout[-4000:]
    records = train_log_records(out.stdout)
    assert [r["num_updates"] for r in records] == ["1", "2"]
    assert all(0 < float(r["loss"]) < float("inf") for r in records)
    model = torch.load(os.path.join(tmp_path, "checkpoint_last.pt"), weights_only=False)["model"]
    assert model["decoder.pos_embed"].shape[1] == 13 * 8
