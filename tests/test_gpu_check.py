"""benchmarks/gpu_check.sh: the GPU check's code path, run on the CPU with its tiny model.

The check is written for a GPU machine, where it runs once in a short lease: it must work the first
time there. Its ``--cpu-tiny`` mode runs the same sections (real models, teacher, task, loader,
torch.compile in its subprocess) with tiny sizes, so a change in the package that breaks it shows
here. The run happens once per module (about a minute on one thread); the tests read its JSON.
The batch search's out-of-memory path cannot happen on a CPU: ``--oom-above N`` makes a step on more
than N clips fail as out of memory, and a test reads that search. Nothing here imports the check.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECTIONS = ("machine", "peak", "steps", "attention", "compile", "loader", "fbank")
CONFIGS = ("audiomae", "mam_clap (cached)", "supmam", "supmam_clap (cached)", "supmam_clap (online)", "finetune")


@pytest.fixture(scope="module")
def cpu_check(tmp_path_factory):
    """(the JSON, stdout) of ``bash benchmarks/gpu_check.sh --cpu-tiny OUT.json`` on one thread."""
    tmp = tmp_path_factory.mktemp("gpu_check")
    out = tmp / "gpu_check.json"
    # PYTHON: this interpreter; TMPDIR keeps the check's scratch audio in the test's folder
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHON=sys.executable, PYTHONWARNINGS="ignore", TMPDIR=str(tmp))
    run = subprocess.run(["bash", os.path.join("benchmarks", "gpu_check.sh"), "--cpu-tiny", str(out)], cwd=REPO,
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=400)
    assert run.returncode == 0, f"gpu_check.sh exited {run.returncode}:\n{run.stderr[-3000:]}"
    with open(out) as f:
        return json.load(f), run.stdout


def test_every_section_ran_without_error(cpu_check):
    results, _ = cpu_check
    for section in SECTIONS:
        assert section in results, section
        assert "error" not in results[section] and "skipped" not in results[section], results[section]
    assert results["errors"] == []
    assert results["settings"]["device"] == "cpu" and results["settings"]["size"] == "tiny"
    assert results["machine"]["cpu_count"] >= 1 and results["machine"]["torch"] == torch.__version__
    assert results["peak"]["measured_tflops"] > 0 and results["peak"]["mfu_against"] == "measured"


def test_every_config_has_a_batch_a_step_time_and_an_mfu(cpu_check):
    configs = cpu_check[0]["steps"]["configs"]
    assert set(configs) == set(CONFIGS)
    for name, r in configs.items():
        assert "error" not in r, (name, r.get("error"))
        assert r["batch"] >= 1 and r["batch_search"][0]["fits"], name
        assert r["seconds_per_step"]["median"] > 0 and r["clips_per_s"] > 0, name
        assert r["step_tflop"] > 0 and 0 < r["mfu"] <= 1.5, (name, r["mfu"])
        assert r["peak_memory_bytes"] > 0, name
    # the online teacher's forward is counted in its step
    assert configs["supmam_clap (online)"]["step_tflop"] > configs["supmam_clap (cached)"]["step_tflop"]


def test_loader_fbank_compile_and_attention_have_numbers(cpu_check):
    results, _ = cpu_check
    loader = results["loader"]
    assert [r["workers"] for r in loader["runs"]][0] == 1
    assert all(r["clips_per_s"] > 0 and r["clips"] > 0 for r in loader["runs"])
    assert set(loader["against_steps"]) == set(CONFIGS)  # every step's consumption beside the loader
    fbank = results["fbank"]
    assert fbank["on_device"]["clips_per_s"] > 0
    assert all(r["fbank_in_dataloader"] and r["clips_per_s"] > 0 for r in fbank["in_loader"])
    compiled = results["compile"]
    assert compiled["compile_s"] == compiled["compile_s"]  # a number, not NaN
    assert compiled["eager_step_s"]["median"] > 0 and compiled["compiled_step_s"]["median"] > 0
    attention = results["attention"]
    assert attention["attention_ops"] and attention["kernel_kinds"]


def test_summary_table_on_stdout(cpu_check):
    _, stdout = cpu_check
    assert "config" in stdout and "MFU" in stdout
    for name in CONFIGS:
        assert any(line.startswith(name + " ") for line in stdout.splitlines()), name


@pytest.mark.parametrize("start, expected", [(1, [1, 2, 4, 8]), (8, [8, 4])])
def test_batch_search_stops_at_out_of_memory(start, expected, tmp_path):
    """Out of memory above 4 clips: the search keeps 4 (from below and, halving, from above), and
    each failed try leaves no batch or gradients behind."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore", TMPDIR=str(tmp_path))
    run = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", "--cpu-tiny", "--compile-variant", "supmam",
                          "--oom-above", "4", "--start-batch", str(start), "--max-batch", "16"], cwd=REPO, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    search = json.loads(run.stdout.strip().splitlines()[-1])
    tries = search["tries"]
    assert search["batch"] == 4 and [t["batch"] for t in tries] == expected
    assert [t["fits"] for t in tries] == [b <= 4 for b in expected]
    assert search["gradients_released"]
    if not tries[-1]["fits"]:
        assert search["sample_released"]  # the failed batch was let go
