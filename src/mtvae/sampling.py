"""Drawing samples from a trained run."""

from __future__ import annotations

from pathlib import Path

import torch

from mtvae.evaluate.figures import save_grid
from mtvae.runs import load


def sample_to_png(run_dir: str | Path, n: int, out: str | Path, seed: int = 0) -> Path:
    """Draw ``n`` samples from the run's model and write them as a PNG grid."""
    model, _ = load(run_dir)
    generator = torch.Generator().manual_seed(seed)
    images = model.sample(n, generator=generator)
    return save_grid(images, out)
