"""Task heads and the gradient-reversal layer used by adversaries."""

from __future__ import annotations

import torch
from torch import nn

from mtvae.nn.bodies import ACTIVATIONS


class TaskHead(nn.Module):
    """An MLP from a latent block ``(B, D)`` to a task's raw output ``(B, out)``."""

    def __init__(self, in_features: int, out_features: int, hidden: list[int], activation: str):
        super().__init__()
        act = ACTIVATIONS[activation]
        layers: list[nn.Module] = []
        for size in hidden:
            layers += [nn.Linear(in_features, size), act()]
            in_features = size
        layers.append(nn.Linear(in_features, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class _ReverseGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.scale * grad, None


def reverse_gradient(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Identity forward; multiplies the gradient by ``-scale`` backward (Ganin & Lempitsky 2015)."""
    return _ReverseGrad.apply(x, scale)
