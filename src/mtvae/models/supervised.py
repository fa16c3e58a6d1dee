"""Supervised baseline: the MT-VAE's encoder and task heads with no decoder and no KL.

It answers "what do the tasks reach without any generative objective?" with the same encoder
body, the same latent width and the same heads as the MT-VAE in the shared layout.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn

from mtvae.data.dataset import DataInfo
from mtvae.data.loader import Batch
from mtvae.models.mtvae import TaskOptions, select_tasks
from mtvae.models.output import Output
from mtvae.nn.bodies import BodyConfig, Encoder
from mtvae.nn.heads import TaskHead
from mtvae.objectives.task_losses import head_size, masked_task_loss, predict


class SupervisedConfig(TaskOptions):
    """Options of the supervised baseline."""

    name: Literal["supervised"] = "supervised"
    latent_dim: int = Field(10, ge=1, description="width of the representation heads read")
    encoder: BodyConfig = Field(default_factory=BodyConfig)


class Supervised(nn.Module):
    """Encoder -> linear representation ``(B, latent_dim)`` -> one head per task."""

    def __init__(self, config: SupervisedConfig, data_info: DataInfo) -> None:
        super().__init__()
        self.config = config
        self.tasks = select_tasks(config.tasks, data_info)
        self.encoder = Encoder(config.encoder, tuple(data_info.image_shape))
        self.proj = nn.Linear(self.encoder.out_features, config.latent_dim)
        self.heads = nn.ModuleDict({
            t: TaskHead(
                config.latent_dim,
                head_size(spec, config.regression_loss),
                config.head_hidden,
                config.encoder.activation,
            )
            for t, spec in self.tasks.items()
        })

    def representation(self, x: torch.Tensor) -> torch.Tensor:
        """The features the heads read ``(B, latent_dim)``."""
        return self.proj(self.encoder(x))

    def task_outputs(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw head outputs for representations ``h``."""
        return {t: head(h) for t, head in self.heads.items()}

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Point predictions per task."""
        outputs = self.task_outputs(self.representation(x))
        return {t: predict(self.tasks[t], out) for t, out in outputs.items()}

    def forward(self, batch: Batch, step: int | None = None) -> Output:
        """Weighted sum of the masked task losses."""
        h = self.representation(batch.x)
        losses, terms = {}, {}
        for task, out in self.task_outputs(h).items():
            loss = masked_task_loss(self.tasks[task], out, batch.targets[task], batch.masks[task])
            losses[f"task/{task}"] = self.config.task_weights.get(task, 1.0) * loss
            terms[f"task/{task}"] = loss.detach()
        return Output(loss=sum(losses.values()), losses=losses, terms=terms, latents={"z": h})

    def loss_names(self) -> list[str]:
        """Names of the loss components ``forward`` returns."""
        return [f"task/{t}" for t in self.tasks]

    def shared_parameters(self) -> list[nn.Parameter]:
        """Parameters every task's gradient passes through."""
        return [*self.encoder.parameters(), *self.proj.parameters()]
