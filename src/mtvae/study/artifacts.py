"""Small per-run outputs a study stores in its database so the report needs nothing else.

Every run keeps its training curve (the ``epoch`` records of ``log.jsonl``). The runs that
represent a variant in the report's figures (first seed) also keep PNG grids: reconstructions,
samples, latent traversals (one row per latent dimension, labelled by MT-VAE block) and the
model's own evaluation figures, plus an MT-VAE's block-by-task leakage matrix.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mtvae.models.capabilities import Blocked, GaussianLatentModel, Generative, Multitask

Artifacts = dict[str, tuple[str, bytes]]  # name -> (kind, data)

MAX_FIGURE_BYTES = 2_000_000  # a run's own figure larger than this is not copied
SKIPPED_FIGURES = ("leakage", "training_curves")  # the report draws these from stored numbers
TRAVERSAL_STEPS = 8
TRAVERSAL_RANGE = 2.5  # posterior-mean value +- this many prior standard deviations


def run_artifacts(run_dir: str | Path, figures: bool, results: dict[str, Any],
                  data=None) -> Artifacts:
    """The curve of ``run_dir`` and, when ``figures``, its grids and leakage matrix (``data``:
    the run's dataset when the caller has it loaded; else loaded from its config)."""
    run_dir = Path(run_dir)
    out: Artifacts = {"curve": ("json", json.dumps(epoch_curve(run_dir)).encode())}
    if not figures:
        return out
    for path in sorted((run_dir / "figures").glob("*.png")):
        if path.stem not in SKIPPED_FIGURES and path.stat().st_size <= MAX_FIGURE_BYTES:
            out[f"figure:{path.stem}"] = ("png", path.read_bytes())
    from mtvae.runs import load

    model, config = load(run_dir)
    if isinstance(model, Generative) and "figure:samples" not in out:
        with torch.no_grad():
            images = model.sample(32, generator=torch.Generator().manual_seed(0))
        out["figure:samples"] = ("png", grid_png(images, ncol=16))
    if isinstance(model, GaussianLatentModel):
        from mtvae.data.sources import load_dataset

        if data is None:
            data = load_dataset(config.data)
        if "figure:traversals" not in out:
            out["figure:traversals"] = ("png", traversal_png(model, data.test.x[:1]))
        if not any(k.startswith("leakage/") for k in results) and len(_blocks(model)) > 1:
            out["leakage"] = ("json", json.dumps(leakage(model, data.test)).encode())
    return out


def epoch_curve(run_dir: Path) -> list[dict[str, float]]:
    """Per-epoch ``epoch``, ``train/loss`` and ``val/loss`` records of a run."""
    path = run_dir / "log.jsonl"
    if not path.is_file():
        return []
    keep = ("epoch", "train/loss", "val/loss")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [{k: r[k] for k in keep if k in r} for r in rows if r.get("kind") == "epoch"]


def grid_png(images: torch.Tensor, ncol: int | None = None) -> bytes:
    """Images ``(N, C, H, W)`` in [0, 1] as one PNG grid."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from mtvae.evaluate.figures import make_grid

    grid = make_grid(images, ncol=ncol)
    buffer = io.BytesIO()
    kwargs = {"cmap": "gray", "vmin": 0.0, "vmax": 1.0} if grid.ndim == 2 else {}
    plt.imsave(buffer, grid, format="png", **kwargs)
    return buffer.getvalue()


@torch.no_grad()
def traversal_png(model, x: torch.Tensor) -> bytes:
    """Decode the posterior mean of ``x`` ``(1, C, H, W)`` with one latent dim swept per row."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from mtvae.evaluate.figures import make_grid
    from mtvae.evaluate.representations import block_dim_labels

    z = model.encode(x).loc  # (1, D)
    d = z.shape[1]
    values = torch.linspace(-TRAVERSAL_RANGE, TRAVERSAL_RANGE, TRAVERSAL_STEPS)
    zs = z.repeat(d * TRAVERSAL_STEPS, 1)  # (D * S, D): row i sweeps dim i
    for i in range(d):
        zs[i * TRAVERSAL_STEPS : (i + 1) * TRAVERSAL_STEPS, i] = values
    images = model.likelihood.mean(model.decode(zs))
    grid = make_grid(images, ncol=TRAVERSAL_STEPS)
    labels = block_dim_labels(model, d)
    fig, ax = plt.subplots(figsize=(TRAVERSAL_STEPS * 0.45 + 1.2, d * 0.45 + 0.5), dpi=100)
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1)
    step = grid.shape[0] / d
    ax.set_yticks([(i + 0.5) * step for i in range(d)], labels, fontsize=7)
    ax.set_xticks([])
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _blocks(model) -> dict[str, slice]:
    return dict(model.blocks) if isinstance(model, Blocked) else {}


def leakage(model, split, n: int = 1000) -> dict[str, dict[str, float]]:
    """Linear-probe score of each latent block for each of the model's tasks (test split)."""
    from mtvae.evaluate.probes import leakage_matrix
    from mtvae.evaluate.representations import representation

    codes = representation(model, split.x[:n])
    targets = {}
    for task, spec in (model.tasks if isinstance(model, Multitask) else {}).items():
        if spec.kind in ("categorical", "binary", "regression"):
            y = split.targets[task][:n].numpy()
            targets[task] = (y.astype(np.int64) if spec.kind != "regression" else y, spec.kind)
    blocks = {name: codes[:, s] for name, s in _blocks(model).items()}
    return leakage_matrix(blocks, targets, rng=0) if targets else {}
