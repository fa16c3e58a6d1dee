"""What every model's forward returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mtvae.objectives.task_losses import is_label_term


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

    def generative_loss(self) -> torch.Tensor | None:
        """The loss less its label terms (:func:`~mtvae.objectives.task_losses.is_label_term`):
        the negative ELBO of a (MT-)VAE or M2, the reconstruction and codebook terms of a
        VQ-VAE; None for a model with no such part (the supervised network)."""
        parts = [v for k, v in self.losses.items() if not is_label_term(k)]
        return sum(parts) if parts else None
