"""Encoder and decoder bodies: MLP and convolutional, sized by a :class:`BodyConfig`.

An encoder maps images ``(B, C, H, W)`` to features ``(B, F)``; a decoder maps a latent vector
``(B, Z)`` to per-pixel likelihood parameters ``(B, C, H, W)``. Latent heads sit outside.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from mtvae.config import StrictModel
from mtvae.nn.upconv import UpConv2d

ACTIVATIONS = {"relu": nn.ReLU, "silu": nn.SiLU, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU}
# Activations whose backward reads their output, not their input, so they may overwrite it.
_INPLACE_SAFE = {"relu", "leaky_relu", "elu"}


def activation(name: str) -> nn.Module:
    """A new activation layer, in place where autograd allows it.

    In place saves one activation-sized allocation per layer; on CPU a fresh large allocation
    page-faults, which made the ReLUs a quarter of the conv decoder's time (bench_iwae).
    """
    return ACTIVATIONS[name](inplace=True) if name in _INPLACE_SAFE else ACTIVATIONS[name]()


class BodyConfig(StrictModel):
    """Architecture of the encoder and (mirrored) decoder."""

    arch: Literal["conv", "mlp"] = Field("conv", description="convolutional or fully connected")
    channels: list[int] = Field(
        default_factory=lambda: [32, 32, 64, 64],
        description="conv: channels of each stride-2 layer (4x4 kernels)",
    )
    hidden: list[int] = Field(
        default_factory=lambda: [256], description="fully connected hidden sizes"
    )
    activation: Literal["relu", "silu", "leaky_relu", "elu"] = "relu"


def _mlp(sizes: list[int], activation: type[nn.Module], last_activation: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if last_activation or i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


def conv_grid(image_shape: tuple[int, int, int], n_layers: int) -> tuple[int, int]:
    """Spatial size after ``n_layers`` stride-2 convolutions; errors if it does not divide."""
    _, h, w = image_shape
    factor = 2**n_layers
    if h % factor or w % factor:
        raise ValueError(
            f"a conv body with {n_layers} stride-2 layers needs image sides divisible by "
            f"{factor}, got {h}x{w}; change model.encoder.channels or use "
            "model.encoder.arch=mlp (needed for flat feature vectors, stored as 1 x F images)"
        )
    return h // factor, w // factor


class Encoder(nn.Module):
    """Image ``(B, C, H, W)`` -> features ``(B, out_features)``."""

    def __init__(self, cfg: BodyConfig, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        act = partial(activation, cfg.activation)
        c = image_shape[0]
        if cfg.arch == "conv":
            convs: list[nn.Module] = []
            for c_in, c_out in zip([c, *cfg.channels[:-1]], cfg.channels, strict=True):
                convs += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), act()]
            gh, gw = conv_grid(image_shape, len(cfg.channels))
            flat = cfg.channels[-1] * gh * gw
            self.body = nn.Sequential(*convs, nn.Flatten(), _mlp([flat, *cfg.hidden], act, True))
        else:
            flat = math.prod(image_shape)
            self.body = nn.Sequential(nn.Flatten(), _mlp([flat, *cfg.hidden], act, True))
        self.out_features = cfg.hidden[-1] if cfg.hidden else flat

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Decoder(nn.Module):
    """Latent ``(B, in_features)`` -> likelihood parameters ``(B, C, H, W)`` (mirror of Encoder)."""

    def __init__(
        self, cfg: BodyConfig, image_shape: tuple[int, int, int], in_features: int
    ) -> None:
        super().__init__()
        act = partial(activation, cfg.activation)
        self.image_shape = tuple(image_shape)
        hidden = list(reversed(cfg.hidden))
        if cfg.arch == "conv":
            gh, gw = conv_grid(image_shape, len(cfg.channels))
            chans = list(reversed(cfg.channels))
            flat = chans[0] * gh * gw
            deconvs: list[nn.Module] = []
            outs = [*chans[1:], image_shape[0]]
            for i, (c_in, c_out) in enumerate(zip(chans, outs, strict=True)):
                deconvs.append(UpConv2d(c_in, c_out))
                if i < len(chans) - 1:
                    deconvs.append(act())
            self.body = nn.Sequential(
                _mlp([in_features, *hidden, flat], act, True),
                nn.Unflatten(1, (chans[0], gh, gw)),
                *deconvs,
            )
        else:
            flat = math.prod(image_shape)
            self.body = nn.Sequential(
                _mlp([in_features, *hidden, flat], act, False), nn.Unflatten(1, self.image_shape)
            )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z)
