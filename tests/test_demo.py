"""A shortened `make demo` (a few updates per stage) runs end to end and reports its line."""
import json
import os
import shutil

import pytest

from supmam_plugin.commands.demo import main as demo_main
from supmam_plugin.experiments.demo import draw, summarise
from supmam_plugin.experiments.demo_result import result_line
from supmam_plugin.experiments.fairseq_runs import parse_validate_output

from conftest import REPO, make_split_folder


def demo_subset(root, per_class: int = 2) -> str:
    """data/demo (its 10 words, its files, its layout) with ``per_class`` clips of each word per split:
    the demo's whole path at a fraction of its clips."""
    demo = os.path.join(REPO, "data", "demo")
    os.makedirs(root)
    shutil.copy(os.path.join(demo, "dict.label.txt"), root)
    for split in ("train", "valid", "test"):
        lines = open(os.path.join(demo, f"{split}.tsv")).read().splitlines()
        labels = open(os.path.join(demo, f"{split}.label")).read().splitlines()
        kept, taken = [], {}
        for entry, label in zip(lines[1:], labels):
            if taken.get(label, 0) < per_class:
                taken[label] = taken.get(label, 0) + 1
                kept.append((entry, label))
        with open(os.path.join(root, f"{split}.tsv"), "w") as f:
            f.write("\n".join([os.path.join(demo, lines[0])] + [e for e, _ in kept]) + "\n")
        with open(os.path.join(root, f"{split}.label"), "w") as f:
            f.write("\n".join(label for _, label in kept) + "\n")
    return str(root)


def test_short_demo_runs_end_to_end(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SUPMAM_CLAP_CHECKPOINT", raising=False)
    data = demo_subset(tmp_path / "data")
    code = demo_main(["--data", data, "--out", str(tmp_path / "out"),
                      "--methods", "supmam", "supmam_clap", "--pretrain-updates", "2", "--finetune-updates", "2",
                      "--validate-interval", "1"])
    assert code == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("DEMO RESULT: held-out test accuracy SupMAM ")
    assert "SupMAM-CLAP (random teacher)" in last and "chance 10.0%" in last
    out = tmp_path / "out"
    result = json.load(open(out / "results.json"))
    assert result["pretrain_split"] == "train"  # data/demo has no pretrain split
    assert set(result["finetuned"]) == {"supmam_clap", "supmam", "scratch"}
    for png in ("held_out_accuracy.png", "reconstruction.png", "clap_similarity.png", "training_curves.png"):
        assert (out / png).stat().st_size > 10_000
    # the reported numbers are what fairseq-validate printed on the test split and the training clips
    for name, per_seed in result["finetuned"].items():
        for subset in ("test", "train"):
            log = open(out / "logs" / f"finetune_{name}_s1_{subset}.log").read()
            assert parse_validate_output(log, subset)["accuracy"] == per_seed["1"][subset]
        assert result["summary"][name]["finetuned_test"] == {"mean": per_seed["1"]["test"], "std": 0.0, "n": 1}


def test_demo_on_a_folder_of_another_layout(tmp_path, tone_dataset, capsys, monkeypatch):
    """Flat files, class names that are not words, 3 classes; pretraining on another folder
    (--pretrain-data); results.json holds the fine-tuned accuracies, the MFCC baseline and the probes."""
    monkeypatch.delenv("SUPMAM_CLAP_CHECKPOINT", raising=False)
    data = make_split_folder(tmp_path / "data", ("class_a", "class_b", "class_c"),
                             per_class={"train": 4, "valid": 2, "test": 2})
    out = tmp_path / "out"
    code = demo_main(["--data", data, "--pretrain-data", tone_dataset, "--out", str(out), "--pretrain-updates", "2",
                      "--finetune-updates", "2", "--validate-interval", "1", "--batch-size", "4",
                      "--pretrain-batch-size", "4", "--methods", "supmam", "audiomae"])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("DEMO RESULT: held-out test accuracy SupMAM ")
    assert "MFCC baseline" in lines[-1] and "linear probes" in lines[-1] and "chance 33.3%" in lines[-1]
    assert lines.count(lines[-1]) == 2  # printed before the pictures, and again at the end
    result = json.load(open(out / "results.json"))
    assert result["pretrain_data"] == tone_dataset and result["data"] == data
    assert set(result["finetuned"]) == {"audiomae", "supmam", "scratch"}
    baseline = result["mfcc_baseline"]
    assert baseline["kind"] == "mfcc" and baseline["clips"] == {"train": 12, "valid": 6, "test": 6}
    assert 0.0 <= baseline["test"] <= 100.0 and baseline["C"] in baseline_grid()
    probes = result["linear_probe"]
    assert set(probes) == {"audiomae", "supmam", "scratch"}
    assert probes["scratch"]["1"]["kind"] == "random_init" and probes["supmam"]["1"]["kind"] == "pretrained"
    assert probes["supmam"]["1"]["checkpoint"] == str(out / "pretrain_supmam_s1" / "checkpoint_last.pt")
    assert "picture_problems" not in result
    for png in ("held_out_accuracy.png", "reconstruction.png", "training_curves.png"):
        assert (out / png).stat().st_size > 10_000
    assert not (out / "clap_similarity.png").exists()  # no CLAP method was asked for
    # the pretraining stages read --pretrain-data, fine-tuning reads --data
    assert f"task.data={tone_dataset}" in open(out / "logs" / "pretrain_supmam_s1.log").readline()
    assert f"task.data={data}" in open(out / "logs" / "finetune_scratch_s1.log").readline()
    # the reconstruction was drawn from the test manifest's first clip
    assert os.path.join(data, "clips", "test_000.wav") in open(out / "logs" / "plot_pretrain_supmam_s1.log").readline()


def test_the_demo_checks_every_clip_before_it_trains(tmp_path, capsys):
    """Before: a 10-ms test clip stopped the demo only when the test was scored, after all the
    training; a test class no training clip has was scored without a word."""
    from supmam_plugin.experiments.folders import check_clips
    from supmam_plugin.experiments.settings import ExperimentError

    data = make_split_folder(tmp_path / "data", ("class_a", "class_b", "class_c"),
                             per_class={"train": 2, "valid": 1, "test": 1})
    labels = (tmp_path / "data" / "train.label").read_text().splitlines()
    (tmp_path / "data" / "train.label").write_text("\n".join(l.replace("class_c", "class_a") for l in labels) + "\n")
    check_clips(data, ["train", "valid", "test"], data, "train")
    assert "warning: test clips carry 1 classes no training clip has (class_c)" in capsys.readouterr().out
    lines = (tmp_path / "data" / "test.tsv").read_text().splitlines()
    lines[2] = lines[2].split("\t")[0] + "\t160"  # 10 ms at 16 kHz
    (tmp_path / "data" / "test.tsv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ExperimentError, match=r".*test\.tsv:3: .*160"):
        check_clips(data, ["train", "valid", "test"], data, "train")
    with pytest.raises(SystemExit, match=r"supmam-demo: .*test\.tsv:3"):
        demo_main(["--data", data, "--out", str(tmp_path / "out"), "--pretrain-updates", "2"])
    assert not (tmp_path / "out" / "pretrain_supmam_s1").exists()  # nothing trained


def test_a_failing_picture_is_reported_not_raised(tmp_path):
    """draw() on an output folder without checkpoints or logs: each picture fails, is named, and
    nothing is raised."""
    data = make_split_folder(tmp_path / "data", per_class={"train": 1, "valid": 1, "test": 1})
    (tmp_path / "out" / "logs").mkdir(parents=True)
    problems = draw(str(tmp_path / "out"), data, verbose=False)
    assert len(problems) == 3  # reconstruction, similarity, curves (no results.json: no accuracy picture)
    assert all("exited with code" in p and "log:" in p for p in problems)


def baseline_grid():
    from supmam_plugin.evaluation.logistic_probe import DEFAULT_C_GRID

    return DEFAULT_C_GRID


def test_seeds_are_summarised_as_mean_and_sample_std():
    """summarise() against numpy on hand-made rows; the result line shows mean +- std over seeds."""
    import numpy as np

    result = {"methods": ["supmam"], "seeds": [1, 2, 3], "teacher": "random", "chance": 10.0,
              "finetune_updates": 5,
              "finetuned": {"supmam": {"1": {"test": 60.0, "train": 100.0}, "2": {"test": 50.0, "train": 98.0},
                                       "3": {"test": 58.0, "train": 99.0}},
                            "scratch": {"1": {"test": 30.0, "train": 90.0}, "2": {"test": 20.0, "train": 80.0},
                                        "3": {"test": 40.0, "train": 95.0}}},
              "linear_probe": {"supmam": {s: {"test": t} for s, t in (("1", 35.0), ("2", 33.0), ("3", 31.0))},
                               "scratch": {s: {"test": t} for s, t in (("1", 19.0), ("2", 21.0), ("3", 20.0))}},
              "mfcc_baseline": {"test": 62.3}}
    summarise(result)
    supmam = result["summary"]["supmam"]["finetuned_test"]
    assert supmam["n"] == 3 and np.isclose(supmam["mean"], np.mean([60, 50, 58]))
    assert np.isclose(supmam["std"], np.std([60, 50, 58], ddof=1))
    assert np.isclose(result["summary"]["scratch"]["probe_test"]["std"], 1.0)
    line = result_line(result)
    assert line.startswith("DEMO RESULT: held-out test accuracy over 3 seeds SupMAM 56.0 +- 5.3%, "
                           "from scratch 30.0 +- 10.0%")
    assert "MFCC baseline 62.3%" in line and "linear probes SupMAM 33.0 +- 2.0%, random init 20.0 +- 1.0%" in line
    assert "no fine-tuned model beat the MFCC baseline" in line
    assert "did not beat training from scratch" not in line


def test_a_finished_run_is_reused_only_for_the_same_command(tmp_path):
    """run_logged(reuse=True) returns the logged output of a finished run of the same command
    without running it; a changed command, a failed run or reuse=False run it again."""
    import sys

    import pytest

    from supmam_plugin.experiments.fairseq_runs import RunError, finished_output, run_logged

    counter, log = tmp_path / "runs.txt", str(tmp_path / "job.log")

    def command(text, code=0):
        return [sys.executable, "-c",
                f"open({str(counter)!r}, 'a').write('x'); print({text!r}); raise SystemExit({code})"]

    def runs():
        return len(counter.read_text()) if counter.exists() else 0

    assert run_logged(command("hello"), log, "job", False, reuse=True) == "hello\n" and runs() == 1
    assert finished_output(command("hello"), log) == "hello\n"
    assert run_logged(command("hello"), log, "job", False, reuse=True) == "hello\n" and runs() == 1  # reused
    run_logged(command("hello"), log, "job", False)
    assert runs() == 2  # reuse off: run again
    assert run_logged(command("other"), log, "job", False, reuse=True) == "other\n" and runs() == 3
    with pytest.raises(RunError, match="exited with code 3; log"):
        run_logged(command("broken", code=3), log, "job", False, reuse=True)
    assert finished_output(command("broken", code=3), log) is None  # a failed run is never reused
    with pytest.raises(RunError):
        run_logged(command("broken", code=3), log, "job", False, reuse=True)
    assert runs() == 5
    hydra_like = [sys.executable, "-c", "import sys; print('Error executing job with overrides: []');"
                  "print('Traceback (most recent call last):'); print('ValueError: patch grid (13, 8) is odd');"
                  "print('Set the environment variable HYDRA_FULL_ERROR=1 for a complete stack trace.'); sys.exit(1)"]
    with pytest.raises(RunError, match=r"exited with code 1: ValueError: patch grid \(13, 8\) is odd; log"):
        run_logged(hydra_like, log, "job", False)  # the reason first, not hydra's last line


def test_stored_probe_rows_are_reused_only_for_the_same_inputs(tmp_path):
    """stored_rows keeps what it computed beside its key; under reuse the same key returns the stored
    rows without computing, a changed key or reuse=False computes (and stores) again."""
    from supmam_plugin.experiments.runs import stored_rows

    path, calls = str(tmp_path / "probes.json"), []

    def compute(value):
        return lambda: calls.append(value) or {"supmam": {"test": value}}

    key = {"data": "/d", "checkpoints": {"supmam": "/c.pt"}, "seed": 1}
    assert stored_rows(path, key, True, compute(1.0)) == {"supmam": {"test": 1.0}} and calls == [1.0]
    assert stored_rows(path, key, True, compute(2.0)) == {"supmam": {"test": 1.0}} and calls == [1.0]
    assert stored_rows(path, {**key, "seed": 2}, True, compute(3.0)) == {"supmam": {"test": 3.0}}
    assert stored_rows(path, {**key, "seed": 2}, False, compute(4.0)) == {"supmam": {"test": 4.0}}
    assert calls == [1.0, 3.0, 4.0]


def test_plot_results_refuses_an_unreadable_file_by_name(tmp_path, capsys):
    from supmam_plugin.commands.plot_results import main as plot_main

    assert plot_main([str(tmp_path / "missing.json"), "--out", str(tmp_path / "x.png")]) == 2
    assert "missing.json" in capsys.readouterr().err and not (tmp_path / "x.png").exists()


def test_a_run_made_afresh_never_resumes_an_earlier_checkpoint(tmp_path, tone_dataset):
    """hydra_train without reuse empties the run's folder: an unrelated checkpoint_last.pt left
    there (here: bytes fairseq cannot load) is not resumed by fairseq."""
    from supmam_plugin.experiments.runs import hydra_train
    from supmam_plugin.experiments.settings import ON_CPU, TINY, Workspace

    stale = tmp_path / "pretrain_x" / "checkpoint_last.pt"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"not a checkpoint")
    (tmp_path / "logs").mkdir()
    save_dir, reused, seconds = hydra_train(
        Workspace(str(tmp_path)), "pretrain_x", "pretraining", "audiomae",
        [f"task.data={tone_dataset}", "task.target_frames=128", "dataset.batch_size=4", *TINY, *ON_CPU,
         "model.decoder_layers=1", "model.decoder_embed_dim=64", "model.decoder_heads=2",
         "optimization.max_update=2", "optimization.max_epoch=0", "lr_scheduler.warmup_updates=1"])
    assert not reused and seconds > 0
    log = open(tmp_path / "logs" / "pretrain_x.log").read()
    assert "No existing checkpoint found" in log and "Loaded checkpoint" not in log
    assert os.path.getsize(os.path.join(save_dir, "checkpoint_last.pt")) > 1000
