"""mtvae.allocator: glibc keeps freed tensor memory in its heap once tuned; opt-out honoured."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="the malloc settings exist only on glibc"
)

# Runs in a fresh interpreter: malloc settings are process-wide and cannot be undone.
PROBE = """
import ctypes, json, torch
from mtvae.allocator import tune_cpu_allocator

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
tuned = tune_cpu_allocator()
again = tune_cpu_allocator()
before = libc.mallinfo2().hblkhd
x = torch.ones(4 * 2**20)  # 16 MiB
mmapped = libc.mallinfo2().hblkhd - before
del x
print(json.dumps({"tuned": tuned, "again": again, "mmapped_mb": mmapped / 2**20,
                  "free_in_heap_mb": libc.mallinfo2().fordblks / 2**20}))
"""


def _probe(**env: str) -> dict:
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                            env={**os.environ, **env}, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_tuned_malloc_serves_tensors_from_the_heap_and_keeps_them_after_free():
    out = _probe()
    assert out["tuned"] and out["again"]  # applied, and idempotent
    assert out["mmapped_mb"] < 1  # not a fresh mmap ...
    assert out["free_in_heap_mb"] >= 16  # ... and kept for the next tensor after `del`


def test_system_malloc_on_request_mmaps_large_tensors():
    out = _probe(MTVAE_SYSTEM_MALLOC="1")
    assert out["tuned"] is False
    assert out["mmapped_mb"] >= 16  # glibc's default: a fresh mapping, unmapped on free


def test_system_malloc_set_to_zero_still_tunes():
    assert _probe(MTVAE_SYSTEM_MALLOC="0")["tuned"] is True
