"""What a model can do, declared once as small runtime-checkable protocols.

The trainer, the run, evaluation, sampling and the study ask ``isinstance(model, Generative)``
instead of probing for attributes, and each metric family names the capabilities it requires
(:data:`mtvae.evaluate.runner.METRIC_FAMILIES`). A model has a capability by defining its
members; there is nothing to inherit or register. Every model is trainable: an ``nn.Module``
whose ``forward(batch, step=None)`` returns an :class:`~mtvae.models.output.Output`.

=====================  =====================================================================
capability             models (of the registry)
=====================  =====================================================================
Reconstructs           vae, vqvae, mtvae, mtvqvae, m2
Generative             vae, vqvae, mtvae, mtvqvae, m2
GaussianLatentModel    vae, mtvae, m2
Coded                  vqvae, mtvqvae
Represents             vqvae, mtvqvae, supervised (a representation other than q(z|x)'s mean)
Multitask              mtvae, mtvqvae, m2, supervised
Conditional            mtvae, m2 (``sample(condition=...)``, ``intervene``)
Blocked                mtvae, m2 (a latent split into named blocks)
TaskWeighted           mtvae, mtvqvae, m2, supervised (named losses a weighting rebalances)
EpochStatistics        vqvae, mtvqvae (terms over a whole epoch, e.g. code usage)
Staged                 vqvae, mtvqvae (a training stage after the main one)
=====================  =====================================================================
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import nn
from torch.distributions import Normal

from mtvae.data.tasks import TaskSpec


@runtime_checkable
class Reconstructs(Protocol):
    """Maps images to their reconstructions."""

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Mean reconstructions ``(B, C, H, W)`` of images ``x``."""


@runtime_checkable
class Generative(Protocol):
    """Draws new images from its prior."""

    image_shape: tuple[int, ...]  # (C, H, W) of the images it draws

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` mean images ``(n, C, H, W)`` from prior draws."""


@runtime_checkable
class GaussianLatentModel(Protocol):
    """A diagonal Gaussian posterior q(z|x), a decoder and its likelihood p(x|z)."""

    likelihood: nn.Module

    def encode(self, x: torch.Tensor) -> Normal:
        """The posterior q(z|x), a ``Normal`` with ``loc`` and ``scale`` ``(B, Z)``."""

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The likelihood's parameters for latents ``z`` ``(B, Z)``."""

    def elbo(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-image ELBO and KL ``(B,)`` with beta = 1 and one posterior sample."""

    def log_weights(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Importance log-weights ``(k, B)`` for the IWAE bound."""


@runtime_checkable
class Coded(Protocol):
    """A discrete code grid from a quantizer, decoded back, with a prior over codes."""

    quantizer: nn.Module  # a latent.quantization.Quantizer: codes_from_indices(codes), n_codes
    prior: nn.Module  # nll(codes) and sample over code grids

    def encode_codes(self, x: torch.Tensor) -> torch.Tensor:
        """Code indices ``(B, H', W')`` of images ``x``."""

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """The likelihood's parameters for code grids ``codes``."""


@runtime_checkable
class Represents(Protocol):
    """Defines its own frozen representation (else a posterior mean or the codes are read)."""

    def representation(self, x: torch.Tensor) -> torch.Tensor:
        """Representation ``(B, d)`` of images ``x``."""


@runtime_checkable
class Multitask(Protocol):
    """Learns supervised tasks and predicts them from images."""

    tasks: dict[str, TaskSpec]

    def predict(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per task, predicted labels ``(B,)`` (classes or regression values)."""


@runtime_checkable
class Conditional(Multitask, Protocol):
    """Samples and edits images given task labels, through label-conditional priors."""

    @property
    def conditional_tasks(self) -> list[str]:
        """Tasks ``sample(condition=...)`` and ``intervene`` take a value of."""

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        condition: dict[str, float] | None = None,
    ) -> torch.Tensor:
        """``n`` mean images, the labels in ``condition`` fixed."""

    def intervene(self, x: torch.Tensor, task: str, value: float) -> torch.Tensor:
        """Images ``x`` re-decoded with task ``task`` set to ``value``."""


@runtime_checkable
class Blocked(Protocol):
    """Its latent vector is split into named blocks (e.g. shared and one per task)."""

    blocks: dict[str, slice]


@runtime_checkable
class TaskWeighted(Protocol):
    """Returns named losses that a weighting strategy may rebalance (``Output.losses``)."""

    def loss_names(self) -> list[str]:
        """Every loss name ``Output.losses`` may hold."""

    def shared_parameters(self) -> list[nn.Parameter]:
        """Parameters every task's gradient passes through (gradient-based weighting)."""


@runtime_checkable
class EpochStatistics(Protocol):
    """Has terms computed over a whole training epoch, logged at its end."""

    def epoch_terms(self) -> dict[str, float]:
        """The epoch's terms (and a reset of their accumulators)."""


@runtime_checkable
class Staged(Protocol):
    """Needs a training stage after the main training (:mod:`mtvae.train.stages`)."""

    @property
    def second_stage(self) -> str | None:
        """The stage's name, or None when this configuration needs none."""


def members(capability: type) -> list[str]:
    """The public members a capability declares, its bases' first, methods before data
    attributes, each in declaration order."""
    names: list[str] = []
    for cls in reversed(capability.__mro__):
        if not getattr(cls, "_is_protocol", False) or cls is Protocol:
            continue
        for name in [*vars(cls), *getattr(cls, "__annotations__", {})]:
            if not name.startswith("_") and name not in names:
                names.append(name)
    return names


def missing(model: object, *capabilities: type) -> list[str]:
    """The members of ``capabilities`` that ``model`` lacks (empty: it has them all)."""
    return [name for capability in capabilities if not isinstance(model, capability)
            for name in members(capability) if not hasattr(model, name)]
