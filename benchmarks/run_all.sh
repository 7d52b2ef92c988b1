#!/usr/bin/env bash
# Runs every benchmark with its defaults (CPU: batch 2 for training, ViT-B and tiny) as
# `python -m benchmarks.NAME` from the repository root and keeps each one's printed figures in
# benchmarks/results/<name>.txt (warnings and logs in .err).
# Usage: benchmarks/run_all.sh [extra args for every benchmark, e.g. --device cuda --dtype bf16]
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=benchmarks/results
mkdir -p "$OUT"
export PYTHONWARNINGS=ignore
# On a shared machine, WAIT_QUIET=1 waits (up to 15 min) before each script until the CPUs are
# at least 90% idle over 3 s, so that other processes do not take the cores from the timings.
idle_percent() {
  local a b
  a=($(head -1 /proc/stat)); sleep 3; b=($(head -1 /proc/stat))
  local idle=$(( (b[4] + b[5]) - (a[4] + a[5]) )) total=0 i
  for i in 1 2 3 4 5 6 7 8; do total=$(( total + b[i] - a[i] )); done
  echo $(( 100 * idle / (total > 0 ? total : 1) ))
}
wait_quiet() {
  [ "${WAIT_QUIET:-0}" = 1 ] || return 0
  local deadline=$(( $(date +%s) + 900 ))
  while [ "$(idle_percent)" -lt 90 ] && [ "$(date +%s)" -lt "$deadline" ]; do sleep 10; done
}
# run NAME MODULE ARGS...: python -m benchmarks.MODULE ARGS > $OUT/NAME.txt
run() {
  local name=$1 module=$2; shift 2
  wait_quiet
  echo "== $name: python -m benchmarks.$module $* (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  "$PY" -m "benchmarks.$module" "$@" > "$OUT/$name.txt" 2> "$OUT/$name.err"
  echo "   exit $? -> $OUT/$name.txt"
}
run pretraining_step pretraining_step --json "$OUT/pretraining_step.json" "$@"
run step_profile_supmam_clap step_profile --variant supmam_clap "$@"
run step_profile_audiomae step_profile --variant audiomae "$@"
run compiled_blocks_audiomae compiled_blocks --variant audiomae "$@"
run fbank fbank "$@"
run inference inference "$@"
run precompute_teacher precompute_teacher "$@"
run reading reading
