"""Diagonal Gaussian posteriors with the reparametrization trick, and their KL to N(0, I)."""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Normal


class GaussianLatent(nn.Module):
    """Features ``(B, F)`` -> q(z|x) = N(mu, diag(sigma^2)) over ``dim`` latent variables."""

    def __init__(self, in_features: int, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.proj = nn.Linear(in_features, 2 * dim)

    def forward(self, features: torch.Tensor) -> Normal:
        mu, log_var = self.proj(features).chunk(2, dim=-1)
        # Clamp keeps exp() finite early in training without affecting reasonable values.
        # No argument validation: a diverged network's NaN must reach the loss, where the
        # trainer reports it as a non-finite loss, instead of failing inside torch here.
        return Normal(mu, torch.exp(0.5 * log_var.clamp(-20.0, 10.0)), validate_args=False)


def kl_standard_normal(q: Normal) -> torch.Tensor:
    """Analytic KL(q || N(0, I)) per latent dimension, same shape as ``q.loc``."""
    var = q.scale.square()
    return 0.5 * (var + q.loc.square() - 1.0 - var.log())


def free_bits_kl(kl_per_dim: torch.Tensor, free_bits: float) -> torch.Tensor:
    """Batch-mean KL per sample with a floor of ``free_bits`` nats per dimension.

    Kingma et al. (2016): each dimension's batch-averaged KL is clamped from below, so the
    optimiser gains nothing by pushing a dimension's rate under the floor.
    """
    per_dim = kl_per_dim.mean(0)
    if free_bits > 0:
        per_dim = per_dim.clamp(min=free_bits)
    return per_dim.sum()
