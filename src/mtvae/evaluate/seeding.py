"""The seed the metric functions take: a numpy generator, an int or None, read as one generator."""

from __future__ import annotations

import numpy as np

Seed = np.random.Generator | int | None


def as_rng(rng: Seed) -> np.random.Generator:
    """``rng`` itself when it is a generator (its stream goes on), else a new generator
    seeded with it (None: fresh entropy)."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
