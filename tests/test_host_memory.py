"""task.keep_freed_memory: freed host memory is reused instead of unmapped and faulted in again.

Each case runs in a fresh process (the allocator's settings are per process) and reports the
share of touched pages that page-faulted (getrusage's minor faults) while it allocates, fills and
frees ten blocks of 2 MiB and more, a little larger each step, as a training step's activations
are when batch shapes vary. Growing blocks keep glibc's adaptive mmap threshold below them, so
without the setting every page faults each step (with same-sized blocks glibc sometimes reuses
them and sometimes not, depending on the heap's layout).
"""
import os
import subprocess
import sys

import pytest

from conftest import REPO, make_split_folder

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None, reason="glibc only")

SCRIPT = r"""
import resource, sys
import torch
mode = sys.argv[1]
if mode == "keep":
    from supmam_plugin.core.host_memory import keep_freed_memory
    assert keep_freed_memory()
elif mode.startswith("task"):
    from fairseq import tasks
    from omegaconf import OmegaConf
    import supmam_plugin  # noqa: F401 (registers the tasks)
    tasks.setup_task(OmegaConf.create({"_name": "supmam_pretraining", "data": sys.argv[2],
                                       "keep_freed_memory": mode == "task"}))

def step(k):
    blocks = [torch.ones((2 * 1024 * 1024 + k * 65536) // 4) for _ in range(10)]  # every page touched
    del blocks

for k in range(3):
    step(k)
pages = 0
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for k in range(3, 13):
    step(k)
    pages += 10 * (2 * 1024 * 1024 + k * 65536) // resource.getpagesize()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / pages)
"""


def faulted_share(mode: str, data: str = "") -> float:
    run = subprocess.run([sys.executable, "-c", SCRIPT, mode, data], cwd=REPO, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, timeout=120, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert run.returncode == 0, run.stderr[-2000:]
    return float(run.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_split_folder(tmp_path_factory.mktemp("host_memory"), per_class={"train": 1})


def test_glibc_default_faults_every_step_in_again():
    """The reference: without the setting glibc maps fresh pages for every block of every step."""
    assert faulted_share("default") > 0.9


def test_kept_memory_is_reused_without_faults():
    assert faulted_share("keep") < 0.1


def test_the_task_keeps_freed_memory_unless_told_not_to(data):
    assert faulted_share("task", data) < 0.1
    assert faulted_share("task-off", data) > 0.9
