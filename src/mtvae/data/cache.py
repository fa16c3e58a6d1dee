"""A cache of derived arrays (measurements, parsed files), keyed by a fingerprint.

Entries live in ``$MTVAE_CACHE`` (default ``~/.cache/mtvae``) as numpy ``.npz`` files named
``<name>-<fingerprint>.npz``. The fingerprint is a sha256 over the source files' bytes and the
version of the code that derives the arrays, so a changed file or changed code never reuses a
stale entry. Files are written atomically and read with ``allow_pickle=False``; an entry that
cannot be read is recomputed, and a cache directory that cannot be written only costs time.
"""

from __future__ import annotations

import hashlib
import os
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mtvae.io import atomic_write


def cache_dir() -> Path:
    """The cache directory: ``$MTVAE_CACHE`` or ``~/.cache/mtvae``."""
    env = os.environ.get("MTVAE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mtvae"


def fingerprint(*parts: str) -> str:
    """A short hex digest of ``parts`` (e.g. file hashes and a code version)."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]


def cached_arrays(
    name: str, key: str, compute: Callable[[], dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """``compute()``'s arrays, from the cache when ``name``/``key`` is there, else stored."""
    path = cache_dir() / f"{name}-{key}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):
            pass  # a damaged entry is recomputed and replaced
    arrays = compute()
    try:
        atomic_write(path, lambda tmp: _save(tmp, arrays))
    except OSError as exc:
        warnings.warn(f"mtvae: cannot write the cache file '{path}' ({exc}); set MTVAE_CACHE "
                      "to a writable directory to avoid recomputing.", stacklevel=2)
    return arrays


def _save(tmp: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(tmp, "wb") as fh:  # a file object, so numpy does not append another ".npz"
        np.savez(fh, **arrays)
