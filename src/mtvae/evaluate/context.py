"""What every metric family receives: the trained model, its data, the run config and where
figures go."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mtvae.data.dataset import Dataset


@dataclass
class EvalContext:
    """Everything a metric family may need."""

    model: torch.nn.Module
    data: Dataset
    config: object
    run_dir: Path
    cache: dict = field(default_factory=dict)  # e.g. representations shared across families
    # figures not to draw (by name, e.g. "training_curves"): a study's worker skips those its
    # report draws from stored numbers when it adds a family for the report's sake
    skip_figures: frozenset[str] = frozenset()
    # where a family says why it leaves some of its metrics out (the evaluation's log)
    log: Callable[[str], None] = print

    @property
    def figures(self) -> Path:
        """Where figures go."""
        return self.run_dir / "figures"

    def draws(self, name: str) -> bool:
        """Whether the evaluation draws the figure ``figures/<name>.png``."""
        return name not in self.skip_figures
