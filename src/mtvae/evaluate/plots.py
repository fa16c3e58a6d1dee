"""Figures with axes and labels (matplotlib, Agg backend), each written atomically as PNG.

Functions here take arrays, not models: the evaluation wrappers compute what to draw.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mtvae.evaluate.figures import make_grid, write_figure

if TYPE_CHECKING:
    from mtvae.data.task_kinds import TaskKind


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def save_figure(fig, path: str | Path, dpi: int = 100) -> Path:
    """Write ``fig`` as PNG atomically, close it and return the path."""
    path = Path(path)
    try:
        write_figure(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight"))
    finally:
        _pyplot().close(fig)
    return path


def traversal_figure(
    images: np.ndarray, row_labels: list[str], values: np.ndarray, path: str | Path
) -> Path:
    """Latent traversals: ``images`` ``(rows * len(values), C, H, W)`` row-major, one row per
    latent dimension (labelled), one column per value the dimension is set to."""
    plt = _pyplot()
    rows, cols = len(row_labels), len(values)
    grid = make_grid(images, ncol=cols, pad=1)
    fig, ax = plt.subplots(figsize=(0.6 * cols + 1.2, 0.6 * rows + 0.6))
    ax.imshow(grid, cmap="gray", vmin=0.0, vmax=1.0)
    h, w = images.shape[-2:]
    ax.set_yticks([1 + (h + 1) * r + h / 2 for r in range(rows)], row_labels, fontsize=7)
    ax.set_xticks([1 + (w + 1) * c + w / 2 for c in range(cols)], [f"{v:g}" for v in values])
    ax.tick_params(length=0, labelsize=7)
    ax.set_title("latent traversals (other dims at the posterior mean)", fontsize=8)
    return save_figure(fig, path)


def pca_2d(x: np.ndarray) -> np.ndarray:
    """Projection of ``x`` ``(N, d)`` on its first two principal components ``(N, 2)``."""
    centred = np.asarray(x, dtype=np.float64) - np.mean(x, axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    out = centred @ vt[:2].T
    return np.pad(out, ((0, 0), (0, 2 - out.shape[1])))  # a 1-D code gets a zero second axis


def embedding_figure(
    points: np.ndarray, labels: dict[str, tuple[np.ndarray, TaskKind]], path: str | Path
) -> Path:
    """Scatter of 2-D ``points``, one panel per task coloured by its label ``(y, kind)``: a
    colour scale for a continuous kind, one colour per class otherwise (NaN: not coloured)."""
    plt = _pyplot()
    n = max(len(labels), 1)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.2), squeeze=False, layout="constrained")
    for ax, (task, (y, kind)) in zip(axes[0], labels.items(), strict=False):
        if kind.continuous:
            art = ax.scatter(*points.T, c=y, s=3, cmap="viridis", alpha=0.7, linewidths=0)
            fig.colorbar(art, ax=ax, fraction=0.046)
        else:
            for value in np.unique(y[np.isfinite(y)]):
                sel = y == value
                ax.scatter(*points[sel].T, s=3, alpha=0.7, linewidths=0, label=f"{value:g}")
            ax.legend(fontsize=6, markerscale=3, loc="best")
        ax.set_title(task, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    if not labels:
        axes[0, 0].scatter(*points.T, s=3)
    fig.suptitle("test representations, first two principal components", fontsize=9)
    return save_figure(fig, path)


def read_log(path: str | Path) -> list[dict]:
    """Records of a ``log.jsonl`` (lines cut short by a crash, or damaged, are skipped)."""
    records = []
    for line in Path(path).read_bytes().decode("utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def curve_terms(records: list[dict], max_terms: int = 8) -> dict[str, dict[str, list]]:
    """Per term of the epoch records: ``{term: {"epoch": [...], "train": [...], "val": [...]}}``.

    A term is a ``train/<term>`` key (``beta`` and per-epoch statistics without a loss meaning
    such as ``vq/epoch_*`` are left out); ``val`` holds NaN where it was not logged.
    """
    epochs = [r for r in records if r.get("kind") == "epoch"]
    names: list[str] = []
    for r in epochs:
        for key, value in r.items():
            term = key.removeprefix("train/")
            if key.startswith("train/") and isinstance(value, int | float) and term not in names:
                if term != "beta" and not term.startswith(("vq/epoch_", "weight/")):
                    names.append(term)
    out = {}
    for term in names[:max_terms]:
        out[term] = {
            "epoch": [r["epoch"] for r in epochs],
            "train": [_num(r.get(f"train/{term}")) for r in epochs],
            "val": [_num(r.get(f"val/{term}")) for r in epochs],
        }
    return out


def _num(value) -> float:
    return float(value) if isinstance(value, int | float) else float("nan")


def training_curves_figure(curves: dict[str, dict[str, list]], path: str | Path) -> Path:
    """One panel per loss term: train and validation per epoch."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    n = max(len(curves), 1)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.0 * cols, 2.4 * rows), squeeze=False, layout="constrained"
    )
    for ax in axes.flat[len(curves) :]:
        ax.axis("off")
    for ax, (term, c) in zip(axes.flat, curves.items(), strict=False):
        ax.plot(c["epoch"], c["train"], "o-", ms=3, label="train")
        if np.isfinite(c["val"]).any():
            ax.plot(c["epoch"], c["val"], "s--", ms=3, label="val")
        ax.set_title(term, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_xlim(min(c["epoch"]) - 0.5, max(c["epoch"]) + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    return save_figure(fig, path)


def leakage_figure(matrix: dict[str, dict[str, float]], path: str | Path) -> Path:
    """Heat map of ``{block: {task: score}}``: rows blocks, columns tasks, values annotated."""
    plt = _pyplot()
    blocks = list(matrix)
    tasks = list(next(iter(matrix.values()), {}))
    values = np.array([[matrix[b][t] for t in tasks] for b in blocks], dtype=np.float64)
    fig, ax = plt.subplots(figsize=(1.0 * len(tasks) + 2.0, 0.6 * len(blocks) + 1.2))
    art = ax.imshow(values, cmap="viridis", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(tasks)), tasks, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(blocks)), blocks, fontsize=8)
    ax.set_xlabel("task predicted (accuracy or R²)", fontsize=8)
    ax.set_ylabel("latent block", fontsize=8)
    for (i, j), v in np.ndenumerate(values):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                color="white" if v < 0.5 else "black")  # fmt: skip
    fig.colorbar(art, ax=ax, fraction=0.046)
    return save_figure(fig, path)
