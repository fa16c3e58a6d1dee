"""What every model's forward returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Output:
    """A model's training output.

    ``loss`` is the scalar to minimise and equals ``sum(losses.values())``; ``losses`` holds the
    components already multiplied by their static weights (so weighting strategies can rebalance
    them); ``terms`` holds detached scalars to log; ``latents`` holds representations.
    """

    loss: torch.Tensor
    losses: dict[str, torch.Tensor]
    terms: dict[str, torch.Tensor] = field(default_factory=dict)
    latents: dict[str, torch.Tensor] = field(default_factory=dict)
