"""Mixed precision: which dtype training's forward and loss autocast to (``train.amp``).

bfloat16 keeps float32's exponent range, so it needs no loss scaling; where the processor
multiplies bfloat16 natively (CUDA GPUs from Ampere on; x86 CPUs with AVX512-BF16 or AMX)
it is faster than float32 (BENCHMARKS.md, ``bench_amp``). Only training's forward passes
and losses are autocast: the optimizer keeps float32 weights, and validation (which selects
the best epoch and decides convergence) and evaluation run in float32.
"""

from __future__ import annotations

from pathlib import Path

import torch

# /proc/cpuinfo flags of x86 CPUs that compute in bfloat16 natively (oneDNN emulates it on
# other AVX512 CPUs, more slowly than float32).
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU computes bfloat16 natively (read from Linux's ``/proc/cpuinfo``;
    False where that file is missing: off elsewhere)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[-1].split())
            return any(flag in flags for flag in NATIVE_BF16_FLAGS)
    return False


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_has_native_bf16()


def resolve_amp(amp: bool | str, device: torch.device) -> bool:
    """What ``train.amp`` means on ``device``: ``auto`` is on where bfloat16 is native."""
    return native_bf16(device) if amp == "auto" else bool(amp)
