"""Keep freed tensor memory for reuse on CPU: glibc ``malloc`` settings for tensor workloads.

By default glibc serves every allocation above a (slowly adapting) threshold with a fresh
``mmap`` and returns it to the kernel on ``free``; the next tensor of that size page-faults all
over again, and zeroing fresh pages costs more than many of the operations themselves. A
training step allocates and frees the same activation-sized tensors every step, so on CPU
this made in-place-able ops such as ReLU or ``add`` several times slower than their
arithmetic (``benchmarks/bench_trainers.py``, ``bench_iwae.py``). With a fixed mmap threshold
at glibc's maximum (32 MiB) and a high trim threshold, those blocks stay in the heap and are
reused. Resident memory then stays near its peak instead of falling between steps; the peak
itself does not grow (BENCHMARKS.md). PyTorch's tuning guide reaches the same end by
preloading jemalloc or tcmalloc; this needs no extra library.

Set ``MTVAE_SYSTEM_MALLOC=1`` to leave malloc as it is (``0`` or empty: tune it). Elsewhere than glibc this is a no-op.
"""

from __future__ import annotations

import ctypes
import os
import platform

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's malloc.h
MMAP_THRESHOLD = 32 * 2**20  # the largest glibc accepts on 64-bit systems
TRIM_THRESHOLD = 2**30
_tuned = False


def tune_cpu_allocator() -> bool:
    """Apply the settings above once per process; return whether they are in effect."""
    global _tuned
    if _tuned:
        return True
    if os.environ.get("MTVAE_SYSTEM_MALLOC", "0") not in ("", "0"):
        return False
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    _tuned = bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
    return _tuned
