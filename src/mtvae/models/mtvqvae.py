"""Multitask VQ-VAE: a VQ-VAE whose quantised code grid also feeds task heads.

The encoder, quantiser, decoder and second-stage prior are the VQ-VAE's; each task head reads
the flattened straight-through quantised grid ``z_q`` (so task gradients reach the encoder
through the straight-through path). Loss: ``recon + vq + sum_t w_t * task_t`` with masked task
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
from mtvae.models.mtvae import TaskOptions, effective_task_weights, select_tasks
from mtvae.models.output import Output
from mtvae.models.registry import NAME_DESCRIPTION
from mtvae.models.vqvae import VQVAE, VQVAEConfig
from mtvae.nn.heads import TaskHead
from mtvae.objectives.task_losses import TargetScaling, head_size, predict, task_loss_terms


class MTVQVAEConfig(VQVAEConfig, TaskOptions):
    """Options of the multitask VQ-VAE: the VQ-VAE's plus the task heads'."""

    name: Literal["mtvqvae"] = Field("mtvqvae", description=NAME_DESCRIPTION)


class MTVQVAE(VQVAE):
    """VQ-VAE plus one head per task on the quantised code grid."""

    def __init__(self, config: MTVQVAEConfig, data_info: DataInfo) -> None:
        super().__init__(config, data_info)
        self.tasks = select_tasks(config.tasks, data_info)
        self.scaling = TargetScaling(self.tasks, data_info.target_stats)
        self.task_weights = effective_task_weights(config, self.tasks, data_info.image_shape)
        width = config.quantizer.code_dim * math.prod(self.grid_shape)
        self.heads = nn.ModuleDict({
            t: TaskHead(width, head_size(spec, config.regression_loss), config.head_hidden,
                        config.encoder.activation)
            for t, spec in self.tasks.items()
        })

    def task_outputs(self, z_q: torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw head outputs for quantised grids ``(B, D, H', W')``."""
        flat = z_q.flatten(1)
        return {t: head(flat) for t, head in self.heads.items()}

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Point predictions per task from the quantised codes of ``x``."""
        z_q = self.quantizer.lookup(self.encode_codes(x))
        return {
            t: self.scaling.unstandardize(t, predict(self.tasks[t], out))
            for t, out in self.task_outputs(z_q).items()
        }

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
