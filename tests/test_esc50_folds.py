"""supmam-esc50-folds: five folds of a tiny fake ESC-50 (real audio) trained with fairseq-hydra-train
and scored with fairseq-validate; the table and results.json hold what fairseq-validate printed."""
import json
import os
import re

import pytest

from manifests import esc50
from supmam_plugin.commands import esc50_folds

from conftest import CPU_RUN, TINY_MODEL, tone, write_audio

CATEGORIES = ["dog", "rain"]  # target 0, 1
TINY_CLASSIFIER = [a for a in TINY_MODEL if not a.startswith(("model.decoder", "model.cls_hidden"))]
# the composite optimizer holds the scheduler; max_update=1 needs no warm-up (cosine period 1 - 0)
FOLD_RUN = [a for a in CPU_RUN if not a.startswith("lr_scheduler.")] + [
    "optimizer.groups.default.lr_scheduler.warmup_updates=0", "optimization.max_update=1",
    "dataset.batch_size=4", "task.target_frames=128", "model.pretrained=''", *TINY_CLASSIFIER,
]


@pytest.fixture(scope="module")
def esc50_manifests(tmp_path_factory):
    """5 folds x 2 classes x 2 clips (0.5 - 1 s, 44.1 kHz like ESC-50) -> fold1 .. fold5."""
    root = tmp_path_factory.mktemp("ESC-50-master")
    lines = ["filename,fold,target,category,esc10,src_file,take"]
    for fold in range(1, 6):
        for target, category in enumerate(CATEGORIES):
            for take in "AB":
                name = f"{fold}-{100 * fold + target}-{take}-{target}.wav"
                seconds = 0.5 + 0.1 * (fold - 1) + 0.05 * (take == "B")
                wave = tone(seconds, 44100, freq=300.0 + 900.0 * target, seed=fold)
                write_audio(root / "audio" / name, wave, 44100)
                lines.append(f"{name},{fold},{target},{category},False,{100 * fold + target},{take}")
    (root / "meta").mkdir()
    (root / "meta" / "esc50.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path_factory.mktemp("esc50_manifests")
    assert esc50.build_esc50(str(root), str(out)) == {k: {"train": 16, "valid": 4} for k in range(1, 6)}
    return str(out)


def printed_accuracy(validate_log):
    """The accuracy on fairseq-validate's summary line, read here independently of the runner."""
    with open(validate_log) as f:
        lines = [l for l in f.read().splitlines() if "valid on 'valid' subset" in l]
    return float(re.search(r"\| accuracy ([\d.]+)", lines[-1]).group(1))


@pytest.fixture(autouse=True)
def quiet_single_thread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the fairseq processes the runner starts
    monkeypatch.setenv("PYTHONWARNINGS", "ignore")


def test_five_folds_table_and_results_json(esc50_manifests, tmp_path, capsys):
    save = tmp_path / "runs"
    code = esc50_folds.main(["--manifests", esc50_manifests, "--save-dir", str(save), "--valid-batch-size", "3",
                             "--", *FOLD_RUN])
    out, err = capsys.readouterr()
    assert code == 0, out[-3000:] + err[-3000:]
    results = json.loads((save / "results.json").read_text())
    assert results["complete"] and [r["fold"] for r in results["folds"]] == [1, 2, 3, 4, 5]
    for r in results["folds"]:
        fold_dir = save / f"fold{r['fold']}"
        assert r["checkpoint"] == str(fold_dir / "checkpoint_best.pt") and os.path.isfile(r["checkpoint"])
        assert 0.0 <= r["accuracy"] <= 100.0 and r["clips"] == 4
        assert r["accuracy"] == printed_accuracy(fold_dir / "validate.log")
        with open(fold_dir / "train.log") as f:  # each fold trained on its own folder, from scratch
            log = f.read()
        assert f"task.data={esc50_manifests}/fold{r['fold']}" in log.splitlines()[0]
        assert "num_updates: 1 >= max_update: 1" in log
        assert os.path.isfile(fold_dir / "hydra" / ".hydra" / "config.yaml")  # not in the working directory
    accuracies = [r["accuracy"] for r in results["folds"]]
    assert results["mean_accuracy"] == pytest.approx(sum(accuracies) / 5, abs=1e-12)
    table = out[out.index("ESC-50 cross-validation accuracy"):]
    for r in results["folds"]:
        assert re.search(rf"^\s+{r['fold']}\s+{r['accuracy']:.3f}\s+4$", table, re.M)
    assert f"mean  {results['mean_accuracy']:>8.3f}" in table


def test_failing_fold_stops_with_its_log(esc50_manifests, tmp_path, capsys):
    save = tmp_path / "runs"
    code = esc50_folds.main(["--manifests", esc50_manifests, "--save-dir", str(save), "--folds", "2,3",
                             "--", *FOLD_RUN, "model.no_such_option=1"])
    _, err = capsys.readouterr()
    assert code == 1
    assert f"log: {save / 'fold2' / 'train.log'}" in err and "no_such_option" in err
    assert not (save / "fold3").exists() and not (save / "results.json").exists()


def test_arguments_are_checked_before_training(esc50_manifests, tmp_path, capsys):
    assert esc50_folds.main(["--manifests", str(tmp_path), "--save-dir", str(tmp_path / "r"), "--folds", "1"]) == 2
    assert "fold1/train.tsv not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        esc50_folds.main(["--manifests", esc50_manifests, "--save-dir", str(tmp_path), "--", "task.data=/x"])
    assert "the runner sets task.data" in capsys.readouterr().err


def test_parse_validate_output():
    text = ("2026-01-01 | INFO | valid | valid on 'valid' subset | loss 1.0937 | accuracy 42.857 | wps 2.3e+06 "
            "| wpb 38400 | bsz 4\n")
    assert esc50_folds.parse_validate_output(text) == {
        "loss": 1.0937, "accuracy": 42.857, "wps": 2.3e6, "wpb": 38400.0, "bsz": 4.0}
    with pytest.raises(ValueError):
        esc50_folds.parse_validate_output("nothing here")
    assert esc50_folds.uses_cpu(["common.cpu=true"]) and not esc50_folds.uses_cpu(["common.cpu=false"])
