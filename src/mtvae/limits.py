"""Upper bounds on sizes, checked before any work starts.

An absurd size (``sample --n 100000000``, ``data.n_train=1e9``, an npz file declaring 10⁹
images, ``train.batch_size=1000000``) must end in a message, not in an allocation failure
minutes later: each request is compared with a documented bound and with the memory the
machine has available. The estimates are rough and count the dominant arrays only, so they
err low: a run they let through may still need more, and one they refuse needs at least about
what the message says:

* images: generated, or decoded from files (npz, IDX, the built-in sources) as float32 at
  ``data.image_size``, counted twice (the pool and the splits indexed out of it), plus the
  file's raw arrays (:func:`check_images_memory`);
* image files (``celeba``, ``folder``): decoded once into a memory-mapped uint8 cache, so only
  the splits' uint8 copies count, one byte per value (CelebA at 64x64: 2.5 GB, not 2 x 10 GB);
  batches become float32 as they are drawn;
* a training or evaluation batch: its images times the activations of the model's body
  (:func:`mtvae.batch_memory.check_batch_memory`, which needs the models' building blocks and
  so lives above them).
"""

from __future__ import annotations

import math
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
    if n >= 2**40:
        return f"{n / 2**40:,.0f} TiB"
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


# --- images decoded from a source ---------------------------------------------------------
def check_images_memory(n: int, image_shape: tuple[int, ...], what: str, fix: str,
                        raw_bytes: int = 0) -> None:
    """Refuse loading ``n`` float32 images of ``image_shape`` (plus ``raw_bytes`` read first)
    when they cannot fit: the pool and the splits copied out of it, 4 bytes per value each."""
    check_memory(raw_bytes + 2 * n * math.prod(image_shape) * 4, what, fix)
