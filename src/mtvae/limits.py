"""Upper bounds on sizes, checked before any work starts.

An absurd size (``sample --n 100000000``, ``data.n_train=1e9``) must end in a message, not in an
allocation failure minutes later: each request is compared with a documented bound and with
the memory the machine has available.
"""

from __future__ import annotations

import os

from mtvae.errors import UserError

MAX_SAMPLES = 10_000  # mtvae sample --n: a 100 x 100 grid is already beyond what one can inspect
MEMORY_SHARE = 0.8  # of the available memory a single allocation may plan to use


def available_memory() -> int | None:
    """Bytes of memory available to new allocations (Linux ``MemAvailable``), or None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(needed: int, what: str, fix: str) -> None:
    """Refuse ``what`` when its ``needed`` bytes exceed the share of available memory."""
    available = available_memory()
    if available is not None and needed > MEMORY_SHARE * available:
        raise UserError(
            f"{what} needs about {_gib(needed)} of memory, but only {_gib(available)} is "
            f"available; {fix}"
        )


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"
