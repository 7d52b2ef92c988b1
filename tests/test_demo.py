"""A shortened `make demo` (a few updates per stage) runs end to end and reports its line."""
import json
import os

from supmam_plugin.commands.demo import main as demo_main
from supmam_plugin.commands.fairseq_runs import parse_validate_output

from conftest import REPO


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
