"""Figures for models with label-conditional priors: conditional samples and interventions."""

from __future__ import annotations

from pathlib import Path

import torch

from mtvae.evaluate.figures import save_grid
from mtvae.models.capabilities import Conditional


def discrete_conditional_tasks(model) -> list[str]:
    """The discrete (categorical or binary) tasks a :class:`Conditional` model samples and
    intervenes on: an MT-VAE's conditional-prior blocks, M2's class."""
    if not isinstance(model, Conditional):
        return []
    return [t for t in model.conditional_tasks if model.tasks[t].discrete]


@torch.no_grad()
def conditional_samples_figure(model, task: str, path: Path, per_class: int = 8) -> Path:
    """One row of samples per label value of ``task``."""
    rows = []
    for value in range(model.tasks[task].n_values):
        generator = torch.Generator().manual_seed(value)
        rows.append(model.sample(per_class, generator=generator, condition={task: value}))
    return save_grid(torch.cat(rows), path, ncol=per_class)


@torch.no_grad()
def intervention_figure(model, x: torch.Tensor, task: str, path: Path) -> Path:
    """Rows: test images; columns: original, reconstruction, then block ``task`` set to each label."""
    columns = [x, model.reconstruct(x)]
    columns += [model.intervene(x, task, value) for value in range(model.tasks[task].n_values)]
    grid = torch.stack(columns, dim=1).flatten(0, 1)  # (N * columns, C, H, W), row-major
    return save_grid(grid, path, ncol=len(columns))
