"""Every benchmark in benchmarks/ runs at its smallest size and prints its figures.

The benchmarks are not imported by the package, so nothing else notices when a change in the
package (a renamed batch key, a moved helper) breaks one of them: these tests run each benchmark as
a user does (``python -m benchmarks.NAME`` from the repository root, one thread) and look for a
number in each row of what it prints. Tiny model, batch 1, one timed round: the figures themselves
mean nothing here, only that they are produced. Nothing here imports the benchmarks.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUMBER = r"\d+(?:\.\d+)?"

# (benchmark, arguments, patterns that must each match a line of its output). "{tmp}" is the test's
# temporary folder.
CASES = [
    pytest.param(
        "pretraining_step",
        ["--variants", "supmam", "supmam_clap", "--teacher", "both", "--sizes", "tiny", "--batch", "1",
         "--steps", "1", "--warmup", "0", "--steps-per-visit", "1", "--peak-size", "128", "--peak-seconds", "0.2",
         "--no-memory", "--json", "{tmp}/pretraining_step.json"],
        [rf"^supmam +{NUMBER} +{NUMBER} +{NUMBER}", rf"^supmam_clap \(cached\) +{NUMBER} +{NUMBER} +{NUMBER}",
         rf"^supmam_clap \(online\) +{NUMBER} +{NUMBER} +{NUMBER}", r"teacher share supmam_clap: online/cached"],
        id="pretraining_step"),
    pytest.param(  # the per-config memory probe (a fresh process; the recipes' fairseq optimizer)
        "pretraining_step",
        ["--probe-memory", "supmam_clap:tiny:cached", "--batch", "1", "--device", "cpu"],
        [r'"peak_rss": [1-9]\d*, "state_bytes": [1-9]\d*\}$'],
        id="pretraining_step_memory_probe"),
    pytest.param(
        "host_memory",
        ["--variants", "supmam", "--size", "tiny", "--batch", "1", "--rounds", "1", "--warmup", "1", "--steps", "1"],
        [rf"^  supmam round 1/1 glibc: step {NUMBER} s", rf"^  supmam round 1/1 keep : step {NUMBER} s",
         rf"^supmam +{NUMBER} +{NUMBER} +{NUMBER}x"],
        id="host_memory"),
    pytest.param(
        "step_profile",
        ["--variant", "supmam", "--size", "tiny", "--batch", "1", "--steps", "1", "--warmup", "0", "--top", "3",
         "--peak-size", "128"],
        [rf"^  fbank +{NUMBER} +{NUMBER}%", rf"^  encoder blocks +{NUMBER}", rf"^  optimizer.step \(the recipes' supmam_adamw, fused\) +{NUMBER}",
         rf"^  encoder forward +{NUMBER} GFLOP", r"^torch.profiler, forward \+ backward",
         rf"^  torch AdamW fused=True +{NUMBER} s", rf"^  (addmm|mm) +\(\d+, \d+\) +\(\d+, \d+\) +\d+ +{NUMBER} +{NUMBER} +{NUMBER} +{NUMBER}%",
         rf"^  ceiling: all matrix products {NUMBER} GFLOP in {NUMBER} s = {NUMBER} GFLOP/s = {NUMBER}% of the sustained"],
        id="step_profile"),
    pytest.param(
        "compiled_blocks",  # aot_eager: no C++ compiler needed on the test machine
        ["--variant", "supmam", "--size", "tiny", "--batch", "1", "--rounds", "1", "--warmup", "0",
         "--backend", "aot_eager"],
        [r"^supmam tiny, batch 1, fp32: 3 both block\(s\) compiled \(aot_eager\)",
         rf"^eager median {NUMBER} s, compiled median {NUMBER} s; compiled/eager: paired median {NUMBER}x"],
        id="compiled_blocks"),
    pytest.param(
        "precision",
        ["--variant", "supmam", "--sizes", "tiny", "--batch", "1", "--rounds", "1", "--modes", "fp32", "bf16"],
        [rf"^fp32 +{NUMBER} +{NUMBER} +1\.00x +{NUMBER}", rf"^bf16 +{NUMBER} +{NUMBER} +{NUMBER}x +{NUMBER}"],
        id="precision"),
    pytest.param(
        "clap_step",
        ["--sizes", "tiny", "--batch", "1", "--rounds", "1"],
        [rf"^\| supmam \| {NUMBER} \| {NUMBER} \|", rf"^\| clap, ViT tower \(tiny\) \| {NUMBER} \|",
         rf"^\| clap, HTS-AT tower \(HTSAT-tiny\) \| {NUMBER} \|"],
        id="clap_step"),
    pytest.param(
        "inference",
        ["--sizes", "tiny", "--batch", "1", "--seconds", "0.05", "--peak-size", "128"],
        [rf"^  tiny +encoder +{NUMBER} +{NUMBER} +{NUMBER}", rf"^  tiny +embed +{NUMBER} +{NUMBER} +{NUMBER}"],
        id="inference"),
    pytest.param(
        "fbank",
        ["--batch-sizes", "1", "--chunks", "--seconds", "0.05", "--clips", "2", "--loader-batch", "2",
         "--workers", "0", "--repeats", "1", "--tmpdir", "{tmp}"],
        [rf"^ +1 +all +{NUMBER} +{NUMBER} +{NUMBER}", rf"^  WAV 16 kHz +0 +{NUMBER} .* clip_ids,source,source_lengths$",
         # the task's batch names the teacher's audio as the model reads it
         rf"^  FLAC 48 kHz \+ teacher audio 48 kHz +0 +{NUMBER} .*,teacher_source,teacher_source_lengths$"],
        id="fbank"),
    pytest.param(
        "precompute_teacher",
        ["--clips", "1", "--batches", "1"],
        [rf"^\| 1 \| 1 \| {NUMBER} \| {NUMBER} \| {NUMBER} \|$", rf"rerun over the finished cache .*: {NUMBER} s"],
        id="precompute_teacher"),
    pytest.param(
        "reading",
        ["--files", "2", "--workers", "1", "--reads", "1", "--long-seconds", "20"],
        [rf"^\| 1 \| {NUMBER} \| {NUMBER} \|$", rf"^\| 10 s \| {NUMBER} \| {NUMBER} \|$",
         rf"^\| 20 s \| {NUMBER} \| {NUMBER} \|$"],
        id="reading"),
    pytest.param(
        "packed_reading",
        ["--data", "data/demo", "--split", "train", "--clips", "4", "--shard-size", "2", "--rounds", "1"],
        [r"^4 clips of data/demo/train.tsv; loose 4 files .* packed 2 shards",
         rf"^cold bytes only: loose {NUMBER} clips/s, packed {NUMBER} clips/s",
         rf"^cold dataset items .*: loose {NUMBER} clips/s, packed {NUMBER} clips/s"],
        id="packed_reading"),
    pytest.param(
        "clone_batch",
        ["--masked", "2", "--clones", "1", "2", "--rounds", "1"],
        [rf"^\| supmam_clap \(online\) \| 2 \| 1 \| {NUMBER} \| {NUMBER} \| {NUMBER}x \|$",
         rf"^\| supmam_clap \(cached\) \| 2 \| 1 \| {NUMBER} \| {NUMBER} \| {NUMBER}x \|$",
         rf"^\| audiomae \| 2 \| 1 \| {NUMBER} \| {NUMBER} \| {NUMBER}x \|$"],
        id="clone_batch"),
    pytest.param(
        "gemm_shapes",
        ["--batch", "1", "--reps", "1", "--peak-size", "256"],
        [rf"^\| encoder, mask 0.8 \(audiomae\) \| all \| \| \| \| \| \*\*{NUMBER}%\*\* \|$",
         rf"^\| decoder, 512 patches \(every variant\) \| fc2 \| 512 x 2048 x 512 \| {NUMBER}% \| {NUMBER}% \| {NUMBER}% \| \|$"],
        id="gemm_shapes"),
    pytest.param(
        "cached_teacher_memory",
        ["--size", "tiny", "--batch", "1"],
        [rf"^\| built whole \(before\) \| {NUMBER} \| 31,325,143 \| True \|$",
         rf"^\| teacher_cached \(after\) \| {NUMBER} \| 0 \| False \|$", rf"^saved: {NUMBER} MB peak RSS"],
        id="cached_teacher_memory"),
]


def run_benchmark(name: str, args: list[str], tmp_path) -> subprocess.CompletedProcess:
    """``python -m benchmarks.NAME ARGS`` from the repository root, on one thread (as the suite runs),
    TMPDIR in the test's folder (the benchmarks' scratch audio goes there)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore", TMPDIR=str(tmp_path))
    return subprocess.run([sys.executable, "-m", f"benchmarks.{name}", *args], cwd=REPO, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)


@pytest.mark.parametrize("name, args, patterns", CASES)
def test_benchmark_runs_and_prints_its_figures(name, args, patterns, tmp_path):
    args = [a.format(tmp=tmp_path) for a in args]
    run = run_benchmark(name, args, tmp_path)
    assert run.returncode == 0, f"{name} exited {run.returncode}:\n{run.stderr[-3000:]}"
    for pattern in patterns:
        assert re.search(pattern, run.stdout, re.MULTILINE), f"{name} did not print {pattern!r}:\n{run.stdout}"
    if "--json" in args:  # pretraining_step: the JSON it writes holds the same figures
        with open(tmp_path / "pretraining_step.json") as f:
            configs = json.load(f)["sizes"]["tiny"]["configs"]
        assert set(configs) == {"supmam", "supmam_clap (cached)", "supmam_clap (online)"}
        assert all(c["clips_per_s"] > 0 for c in configs.values())
        # utilisation against the sustained matmul rate measured in the same round
        assert all(c["util_median_per_round_sustained"] > 0 for c in configs.values())
        # the online step also runs the teacher, and its FLOPs are counted
        assert configs["supmam_clap (online)"]["step_gflop"] > configs["supmam_clap (cached)"]["step_gflop"]


def test_step_profile_counts_matmul_flops_as_torch_does(tmp_path):
    """The FLOPs step_profile gives each profiled mm / addmm / bmm (from the recorded shapes) sum to
    torch's own FlopCounterMode count of the same products: ``--check-matmul-flops`` profiles a linear
    layer's addmm (7, 24) @ (24, 40), an mm (7, 24) @ (24, 7), a bmm (3, 7, 24) @ (3, 24, 5) and a
    relu (no product), and counts them with FlopCounterMode apart."""
    run = run_benchmark("step_profile", ["--check-matmul-flops"], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    checked = json.loads(run.stdout.strip().splitlines()[-1])
    found = [((tuple(a), tuple(b)), flop) for a, b, flop in checked["products"]]
    assert sorted(shapes for shapes, _ in found) == sorted([((7, 24), (24, 40)), ((7, 24), (24, 7)),
                                                           ((3, 7, 24), (3, 24, 5))])
    assert sum(flop for _, flop in found) == checked["flop_counter"] == 2 * (7 * 24 * 40 + 7 * 24 * 7 + 3 * 7 * 24 * 5)


def test_every_benchmark_has_a_case():
    """A new benchmark in benchmarks/ gets its case above (the package's helpers are not benchmarks)."""
    helpers = {"__init__", "common", "flops"}
    # gpu_check is run through its wrapper (gpu_check.sh --cpu-tiny) by tests/test_gpu_check.py
    covered_elsewhere = {"gpu_check"}
    modules = {name[:-3] for name in os.listdir(os.path.join(REPO, "benchmarks")) if name.endswith(".py")}
    modules -= helpers | covered_elsewhere
    assert modules == {case.values[0] for case in CASES}
