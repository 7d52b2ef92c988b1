"""The plugin's benchmarks: scripts that time training steps, fbank, the data loader, inference and
teacher precompute, and print their figures (BENCHMARKS.md holds the results and what they mean).

Each benchmark is a module of this package, run from the repository root with the plugin installed
(``make install``)::

    python -m benchmarks.NAME --help
    python -m benchmarks.pretraining_step --sizes tiny --steps 10

``common`` holds their shared set-up (machine facts, the matmul peak, memory, the pretraining
variants read from the recipes, real-looking audio) and ``flops`` the analytic FLOP count; neither
is a benchmark. ``run_all.sh`` runs every benchmark with its defaults; ``gpu_check.sh`` runs
``gpu_check`` under a hard time limit. The package is not installed and nothing outside this folder
imports it: the tests run the benchmarks as a user does.
"""
