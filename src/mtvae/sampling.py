"""Drawing samples from a trained run."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from mtvae.errors import UserError
from mtvae.evaluate.figures import save_grid
from mtvae.limits import MAX_SAMPLES, check_memory
from mtvae.models.capabilities import Conditional, Generative
from mtvae.run_directory import load


def check_sample_count(n: int) -> None:
    """``--n`` must lie in ``1..MAX_SAMPLES``."""
    if not 1 <= n <= MAX_SAMPLES:
        raise UserError(f"--n must be at least 1 and at most {MAX_SAMPLES:,}, got {n}; draw "
                        "larger numbers in several calls with different --seed values.")


def output_path(out: str | Path) -> Path:
    """Where the PNG goes: ``out`` with a ``.png`` suffix, or ``out/samples.png`` for a directory."""
    out = Path(out)
    if out.is_dir():
        return out / "samples.png"
    return out if out.suffix.lower() == ".png" else out.with_suffix(".png")


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
    check_sample_count(n)
    model, _ = load(run_dir)
    if not isinstance(model, Generative):
        raise UserError(f"A '{type(model).__name__}' model has no generative part to sample from.")
    # the images, and the grid they are tiled into
    check_memory(2 * n * math.prod(model.image_shape) * 4, f"Drawing {n:,} samples",
                 "ask for fewer with --n.")
    generator = torch.Generator().manual_seed(seed)
    if condition:
        if not isinstance(model, Conditional):
            raise UserError(
                f"A '{type(model).__name__}' model cannot sample conditionally; train an "
                "mtvae with model.prior=conditional to use --condition."
            )
        images = model.sample(n, generator=generator, condition=condition)
    else:
        images = model.sample(n, generator=generator)
    if not bool(torch.isfinite(images).all()):
        raise UserError(f"The model of '{run_dir}' drew non-finite (NaN) images, so no PNG was "
                        "written; its weights are unusable: train the run again.")
    return save_grid(images, output_path(out))
