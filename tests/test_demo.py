"""A shortened `make demo` (a few updates per stage) runs end to end and reports its line."""
import json
import os

from supmam_plugin.commands.demo import draw, main as demo_main
from supmam_plugin.commands.fairseq_runs import parse_validate_output

from conftest import REPO, make_split_folder


def test_short_demo_runs_end_to_end(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SUPMAM_CLAP_CHECKPOINT", raising=False)
    code = demo_main(["--data", os.path.join(REPO, "data", "demo"), "--out", str(tmp_path),
                      "--pretrain-updates", "2", "--finetune-updates", "2", "--validate-interval", "1"])
    assert code == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("DEMO RESULT: held-out test accuracy SupMAM-CLAP (random teacher)")
    assert "chance 10.0%" in last
    result = json.load(open(tmp_path / "results.json"))
    assert set(result["test_accuracy"]) == {"supmam_clap", "supmam", "scratch"}
    assert all(0.0 <= a <= 100.0 for a in result["test_accuracy"].values())
    for png in ("reconstruction.png", "clap_similarity.png", "training_curves.png"):
        assert (tmp_path / png).stat().st_size > 10_000
    # the reported numbers are what fairseq-validate printed on the test split
    for name, accuracy in result["test_accuracy"].items():
        log = open(tmp_path / "logs" / f"finetune_{name}_test.log").read()
        assert parse_validate_output(log, "test")["accuracy"] == accuracy


def test_demo_on_a_folder_of_another_layout(tmp_path, tone_dataset, capsys, monkeypatch):
    """Flat files, class names that are not words, 3 classes; pretraining on another folder
    (--pretrain-data); results.json holds the fine-tuned accuracies, the MFCC baseline and the probes."""
    monkeypatch.delenv("SUPMAM_CLAP_CHECKPOINT", raising=False)
    data = make_split_folder(tmp_path / "data", ("class_a", "class_b", "class_c"),
                             per_class={"train": 4, "valid": 2, "test": 2})
    out = tmp_path / "out"
    code = demo_main(["--data", data, "--pretrain-data", tone_dataset, "--out", str(out), "--pretrain-updates", "2",
                      "--finetune-updates", "2", "--validate-interval", "1", "--batch-size", "4"])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("DEMO RESULT: held-out test accuracy SupMAM-CLAP (random teacher)")
    assert "MFCC baseline" in lines[-1] and "linear probes" in lines[-1] and "chance 33.3%" in lines[-1]
    assert lines.count(lines[-1]) == 2  # printed before the pictures, and again at the end
    result = json.load(open(out / "results.json"))
    assert result["pretrain_data"] == tone_dataset and result["data"] == data
    assert set(result["test_accuracy"]) == {"supmam_clap", "supmam", "scratch"}
    baseline = result["mfcc_baseline"]
    assert baseline["kind"] == "mfcc" and baseline["clips"] == {"train": 12, "valid": 6, "test": 6}
    assert 0.0 <= baseline["test"] <= 100.0 and baseline["C"] in baseline_grid()
    probes = result["linear_probe"]
    assert set(probes) == {"supmam_clap", "supmam", "random_init"}
    assert probes["random_init"]["twin_of"] == ["supmam_clap", "supmam"]
    assert probes["supmam"]["checkpoint"] == str(out / "pretrain_supmam" / "checkpoint_last.pt")
    assert "picture_problems" not in result
    for png in ("reconstruction.png", "clap_similarity.png", "training_curves.png"):
        assert (out / png).stat().st_size > 10_000
    # the pretraining stages read --pretrain-data, fine-tuning reads --data
    assert f"task.data={tone_dataset}" in open(out / "logs" / "pretrain_supmam.log").readline()
    assert f"task.data={data}" in open(out / "logs" / "finetune_scratch.log").readline()
    # the reconstruction was drawn from the test manifest's first clip
    assert os.path.join(data, "clips", "test_000.wav") in open(out / "logs" / "plot_pretrain_supmam.log").readline()


def test_a_failing_picture_is_reported_not_raised(tmp_path):
    """draw() on an output folder without checkpoints or logs: each picture fails, is named, and
    nothing is raised."""
    data = make_split_folder(tmp_path / "data", per_class={"train": 1, "valid": 1, "test": 1})
    (tmp_path / "out" / "logs").mkdir(parents=True)
    problems = draw(str(tmp_path / "out"), data, verbose=False)
    assert len(problems) == 3
    assert all("exited with code" in p and "log:" in p for p in problems)


def baseline_grid():
    from supmam_plugin.evaluation.logistic_probe import DEFAULT_C_GRID

    return DEFAULT_C_GRID
