"""What every metric family receives: the trained model, its data, the run config and where
figures go."""

from __future__ import annotations

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

    @property
    def figures(self) -> Path:
        """Where figures go."""
        return self.run_dir / "figures"
