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
