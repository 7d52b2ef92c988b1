"""How the process's C allocator treats freed host memory (glibc only).

PyTorch has no caching allocator for CPU tensors: every activation and gradient of a step is a
fresh ``malloc`` and ``free``. glibc serves large blocks with ``mmap`` (above a threshold it moves
between 128 KiB and 32 MiB) and hands the top of its heap back to the kernel once more than the
trim threshold is free, so each step maps, faults in (zero-fills) and unmaps its buffers again,
and the reused pages are cold. Keeping freed memory for reuse takes a ViT-B CPU training step from
30-45 thousand page faults to none and makes it about 2% faster (0.98x, benchmarks/host_memory.py,
BENCHMARKS.md section 12), at the same peak RSS. The price: the resident size no longer shrinks
between steps.

There is no Python API for this, hence ``mallopt`` through ctypes; ``GLIBC_TUNABLES`` would do the
same but only when set before the process starts. PyTorch's CPU tuning guide suggests jemalloc
or tcmalloc by ``LD_PRELOAD`` for the same reason; those are not in a pip install.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import platform

logger = logging.getLogger(__name__)

__all__ = ["keep_freed_memory"]

# mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's largest mmap threshold on 64-bit machines
NEVER_TRIM = 2 ** 31 - 1  # mallopt takes an int


def _glibc():
    """The C library when it is glibc (it has mallopt), else None."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") else None


def keep_freed_memory() -> bool:
    """Blocks up to 32 MiB come from the heap and freed heap memory is never trimmed, so the
    next step reuses the same (warm, already mapped) pages. Returns False where the C library
    is not glibc (nothing changed)."""
    libc = _glibc()
    if libc is None:
        logger.info("host memory: not glibc, the C allocator is left as it is")
        return False
    done = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX) == 1 and libc.mallopt(M_TRIM_THRESHOLD, NEVER_TRIM) == 1
    if done:
        logger.info("host memory: freed blocks up to 32 MiB are kept for reuse (task.keep_freed_memory)")
    return done
