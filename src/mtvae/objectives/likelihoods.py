"""Observation models p(x | z) over images, all returning log-densities summed per image.

- ``bernoulli``: logits; the usual choice for images in [0, 1].
- ``gaussian``: mean with a fixed ``sigma``.
- ``gaussian_learned``: mean with one learned log-sigma per channel (the sigma-VAE).
- ``mse``: the seed's practical loss ``||x - f(z)||^2``. It is exactly the negative
  log-density of a Gaussian with variance 1/2 up to the constant ``D/2 * log(pi)``, so training
  minimises the seed's loss while ``log_prob`` stays a proper density for ELBO and IWAE.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal

LikelihoodName = Literal["bernoulli", "gaussian", "gaussian_learned", "mse"]


class Likelihood(nn.Module):
    """Base class: ``params`` is the decoder output ``(B, C, H, W)``."""

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Log-density of ``x`` summed over pixels, ``(B,)``, in nats."""
        raise NotImplementedError

    def loss(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-image training loss ``(B,)``; the negative log-density unless stated otherwise."""
        return -self.log_prob(params, x)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """The expected image under the likelihood."""
        return params


class Bernoulli(Likelihood):
    """Pixel-wise Bernoulli with logits (fused BCE: stable and fast)."""

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        bce = F.binary_cross_entropy_with_logits(params, x, reduction="none")
        return -bce.flatten(1).sum(1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(params)


class Gaussian(Likelihood):
    """Pixel-wise Gaussian with a fixed standard deviation."""

    def __init__(self, sigma: float) -> None:
        super().__init__()
        self.sigma = float(sigma)

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return _normal(params, self.sigma).log_prob(x).flatten(1).sum(1)


class LearnedGaussian(Likelihood):
    """Pixel-wise Gaussian whose per-channel log-sigma is learned with the model."""

    def __init__(self, channels: int, min_log_sigma: float = -6.0) -> None:
        super().__init__()
        self.log_sigma = nn.Parameter(torch.zeros(channels))
        self.min_log_sigma = min_log_sigma

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        log_sigma = self.log_sigma.clamp(min=self.min_log_sigma).view(1, -1, 1, 1)
        return _normal(params, log_sigma.exp()).log_prob(x).flatten(1).sum(1)


class MSE(Likelihood):
    """The seed's ``||x - f(z)||^2``; as a density, a Gaussian with variance 1/2."""

    def loss(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return (params - x).square().flatten(1).sum(1)

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        d = params[0].numel()
        return -self.loss(params, x) - 0.5 * d * math.log(math.pi)


def _normal(mean: torch.Tensor, sigma: torch.Tensor | float) -> Normal:
    # Unvalidated, so NaN from a diverged decoder (or in the data) reaches the loss, where the
    # trainer reports it as a non-finite loss, rather than raising inside torch.distributions.
    return Normal(mean, sigma, validate_args=False)


def build_likelihood(name: LikelihoodName, channels: int, sigma: float = 0.1) -> Likelihood:
    """Make the likelihood called ``name`` for images with ``channels`` channels."""
    makers = {
        "bernoulli": lambda: Bernoulli(),
        "gaussian": lambda: Gaussian(sigma),
        "gaussian_learned": lambda: LearnedGaussian(channels),
        "mse": lambda: MSE(),
    }
    return makers[name]()
