"""Image grids and other figures written as PNG files."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import numpy as np
import torch

from mtvae.errors import WriteError
from mtvae.io import atomic_write

# the failed figure writes of the current metric family, while they are deferred
_failed_figures: ContextVar[list[WriteError] | None] = ContextVar("failed_figures", default=None)


@contextmanager
def figure_failures_deferred() -> Iterator[list[WriteError]]:
    """Within this block a figure that cannot be written (full disk...) does not raise: its
    :class:`~mtvae.errors.WriteError` is appended to the list this yields and the caller goes
    on computing, so the metrics it computes are kept (``mtvae evaluate`` raises the first
    failure once the family's metrics are saved)."""
    failed: list[WriteError] = []
    token = _failed_figures.set(failed)
    try:
        yield failed
    finally:
        _failed_figures.reset(token)


def write_figure(path: Path, write: Callable[[Path], None]) -> None:
    """``atomic_write(path, write)`` for a figure: a failure raises, or is recorded while
    :func:`figure_failures_deferred` is active."""
    try:
        atomic_write(path, write)
    except WriteError as exc:
        failed = _failed_figures.get()
        if failed is None:
            raise
        failed.append(exc)


def make_grid(images: torch.Tensor | np.ndarray, ncol: int | None = None, pad: int = 1) -> np.ndarray:
    """Tile images ``(N, C, H, W)`` in [0, 1] into one ``(H', W')`` or ``(H', W', 3)`` array."""
    images = np.asarray(images.detach().cpu() if isinstance(images, torch.Tensor) else images)
    images = np.clip(images, 0.0, 1.0)
    n, c, h, w = images.shape
    ncol = ncol or int(math.ceil(math.sqrt(n)))
    nrow = int(math.ceil(n / ncol))
    grid = np.ones((c, nrow * (h + pad) + pad, ncol * (w + pad) + pad), dtype=np.float32)
    for i in range(n):
        r, col = divmod(i, ncol)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        grid[:, top : top + h, left : left + w] = images[i]
    return grid[0] if c == 1 else grid[:3].transpose(1, 2, 0)


def save_grid(images, path: str | Path, ncol: int | None = None) -> Path:
    """Write an image grid as PNG (atomically) and return its path."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    grid = make_grid(images, ncol=ncol)
    path = Path(path)
    if path.suffix.lower() != ".png":
        path = path.with_suffix(".png")
    kwargs = {"cmap": "gray", "vmin": 0.0, "vmax": 1.0} if grid.ndim == 2 else {}
    write_figure(path, lambda tmp: plt.imsave(tmp, grid, format="png", **kwargs))
    return path


def reconstruction_pairs(x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """Interleave originals and reconstructions row by row for a side-by-side grid."""
    pairs = torch.stack([x, recon], 1)  # (N, 2, C, H, W)
    return pairs.flatten(0, 1)
