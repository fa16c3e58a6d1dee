"""Drawing samples from a trained run."""

from __future__ import annotations

import inspect
from pathlib import Path

import torch

from mtvae.errors import UserError
from mtvae.evaluate.figures import save_grid
from mtvae.runs import load


def sample_to_png(
    run_dir: str | Path,
    n: int,
    out: str | Path,
    seed: int = 0,
    condition: dict[str, float] | None = None,
) -> Path:
    """Draw ``n`` samples from the run's model and write them as a PNG grid.

    ``condition`` fixes task labels for models with conditional priors (e.g. ``{"shape": 1}``).
    """
    model, _ = load(run_dir)
    if not hasattr(model, "sample"):
        raise UserError(f"A '{type(model).__name__}' model has no generative part to sample from.")
    generator = torch.Generator().manual_seed(seed)
    if condition:
        if "condition" not in inspect.signature(model.sample).parameters:
            raise UserError(
                f"A '{type(model).__name__}' model cannot sample conditionally; train an "
                "mtvae with model.prior=conditional to use --condition."
            )
        images = model.sample(n, generator=generator, condition=condition)
    else:
        images = model.sample(n, generator=generator)
    return save_grid(images, out)
