#!/usr/bin/env bash
# Runs `python -m benchmarks.gpu_check` (all the work, and its documentation, are in gpu_check.py)
# under a hard time limit, so that a GPU session that borrows the machine for a few minutes always
# gets its JSON back (the check rewrites it after every section). It runs from the caller's folder,
# with the repository on PYTHONPATH so that the package `benchmarks` imports: a relative output
# path is the caller's folder's.
#
#   bash benchmarks/gpu_check.sh                      # GPU: ./gpu_check.json, under 8 minutes
#   bash benchmarks/gpu_check.sh results/h200.json    # or --out results/h200.json
#   bash benchmarks/gpu_check.sh --cpu-tiny out.json  # the same code on the CPU, tiny model
#
# PYTHON picks the interpreter (default: the repository's .venv, else python3); GPU_CHECK_TIMEOUT
# the hard limit in seconds (default 470; the script itself aims at 420).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$REPO/.venv/bin/python" ]; then PYTHON="$REPO/.venv/bin/python"; else PYTHON=python3; fi
fi
export PYTHONWARNINGS="${PYTHONWARNINGS:-ignore}"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
exec timeout --kill-after=10 "${GPU_CHECK_TIMEOUT:-470}" "$PYTHON" -m benchmarks.gpu_check "$@"
