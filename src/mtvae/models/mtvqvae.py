"""Multitask VQ-VAE: a VQ-VAE whose quantised code grid also feeds task heads.

The encoder, quantiser, decoder and second-stage prior are the VQ-VAE's; each task head reads
the flattened quantised grid ``z_q`` (so task gradients reach the encoder through the
quantizer's gradient estimator: straight-through, rotation trick, or FSQ's rounding). Loss: ``recon + vq + sum_t w_t * task_t`` with masked task
losses, exactly as in the Gaussian MT-VAE.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from mtvae.data.dataset import DataInfo
from mtvae.data.loader import Batch
from mtvae.models.output import Output
from mtvae.models.registry import NAME_DESCRIPTION
from mtvae.models.task_heads import TaskHeads, TaskOptions, task_setup
from mtvae.models.vqvae import VQVAE, VQVAEConfig
from mtvae.objectives.task_losses import task_loss_terms


class MTVQVAEConfig(VQVAEConfig, TaskOptions):
    """Options of the multitask VQ-VAE: the VQ-VAE's plus the task heads'."""

    name: Literal["mtvqvae"] = Field("mtvqvae", description=NAME_DESCRIPTION)


class MTVQVAE(VQVAE):
    """VQ-VAE plus one head per task on the quantised code grid."""

    def __init__(self, config: MTVQVAEConfig, data_info: DataInfo) -> None:
        super().__init__(config, data_info)
        self.tasks, self.scaling, self.task_weights = task_setup(config, data_info)
        width = self.quantizer.code_dim * math.prod(self.grid_shape)
        self.heads = TaskHeads(self.tasks, width, config, config.encoder.activation)

    def task_outputs(self, z_q: torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw head outputs for quantised grids ``(B, D, H', W')``."""
        return self.heads(z_q.flatten(1))

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Point predictions per task from the quantised codes of ``x``."""
        z_q = self.quantizer.codes_from_indices(self.encode_codes(x))
        return self.heads.predictions(self.task_outputs(z_q), self.scaling)

    def forward(self, batch: Batch, step: int | None = None) -> Output:
        """The VQ-VAE objective plus the weighted, masked task losses."""
        quantized = self.quantizer(self.encoder(batch.x))
        out = self.quantized_objective(batch, quantized)
        losses, terms = task_loss_terms(
            self.tasks,
            self.task_outputs(quantized.z_q),
            self.scaling.standardize(batch.targets),
            batch.masks,
            self.task_weights,
        )
        out.losses.update(losses)
        out.terms.update(terms)
        out.loss = sum(out.losses.values())
        return out

    def loss_names(self) -> list[str]:
        """Names of the loss components in ``Output.losses``."""
        return [*super().loss_names(), *(f"task/{t}" for t in self.tasks)]

    def shared_parameters(self) -> list[nn.Parameter]:
        """Parameters every task's gradient passes through (the encoder)."""
        return list(self.encoder.parameters())
