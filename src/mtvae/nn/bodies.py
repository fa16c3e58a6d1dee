"""Encoder and decoder bodies: MLP and convolutional, sized by a :class:`BodyConfig`.

An encoder maps images ``(B, C, H, W)`` to features ``(B, F)``; a decoder maps a latent vector
``(B, Z)`` to per-pixel likelihood parameters ``(B, C, H, W)``. Latent heads sit outside.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import nn

from mtvae.base import StrictModel
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


BODY_DESCRIPTION = "the encoder's architecture; the decoder mirrors it"  # model.encoder


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
    activation: Literal["relu", "silu", "leaky_relu", "elu"] = Field(
        "relu", description="nonlinearity after every hidden layer of the encoder and decoder"
    )
    padding: Annotated[int, Field(ge=0)] | Literal["auto"] = Field(
        "auto",
        description="conv: zero pixels added to the image height and width (split between both "
        "sides, cropped off the reconstruction) so the stride-2 layers divide them; auto: the "
        "fewest that do (0 for 32x32 and 64x64, 4 for 28x28, 8 for 24x24 with four layers)",
    )

    def resolve_auto(self, image_shape: tuple[int, ...]) -> None:
        """``padding: auto`` becomes the number of pixels it stands for (:func:`conv_padding`)."""
        super().resolve_auto(image_shape)
        if self.padding == "auto":
            self.padding = conv_padding(self, image_shape)


def _mlp(sizes: list[int], activation: type[nn.Module], last_activation: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if last_activation or i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


def conv_padding(cfg: BodyConfig, image_shape: tuple[int, int, int]) -> int:
    """Pixels of zero padding the conv body adds to each image side's length (0 for MLPs).

    ``auto`` picks the fewest that make height and width divisible by ``2^len(channels)``, for
    images at least 8 pixels high and wide; flat feature vectors (1 x F) need ``arch: mlp``.
    """
    if cfg.arch != "conv":
        return 0
    _, h, w = image_shape
    factor = 2 ** len(cfg.channels)
    if cfg.padding != "auto":
        pad = int(cfg.padding)
    elif min(h, w) >= 8 and (-h) % factor == (-w) % factor:
        pad = (-h) % factor
    else:
        pad = 0  # no padding helps: conv_grid says what to change
    return pad


def conv_grid(image_shape: tuple[int, int, int], n_layers: int, pad: int = 0) -> tuple[int, int]:
    """Spatial size after ``n_layers`` stride-2 convolutions of the image padded by ``pad``."""
    _, h, w = image_shape
    factor = 2**n_layers
    if (h + pad) % factor or (w + pad) % factor:
        raise ValueError(
            f"a conv body with {n_layers} stride-2 layers needs image sides (plus "
            f"model.encoder.padding={pad}) divisible by {factor}, got {h}x{w}; set "
            "model.encoder.padding=auto, change model.encoder.channels, or use "
            "model.encoder.arch=mlp (needed for flat feature vectors, stored as 1 x F images)"
        )
    return (h + pad) // factor, (w + pad) // factor


def pad_layer(pad: int) -> nn.Module:
    """Zero padding of ``pad`` pixels per dimension, the odd one at the bottom/right."""
    return nn.ZeroPad2d((pad // 2, pad - pad // 2, pad // 2, pad - pad // 2))


class Crop(nn.Module):
    """Removes what :func:`pad_layer` added: ``(B, C, H + pad, W + pad)`` -> ``(B, C, H, W)``."""

    def __init__(self, pad: int) -> None:
        super().__init__()
        self.start, self.stop = pad // 2, pad // 2 - pad  # stop < 0, or 0 for no padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.start == 0 and self.stop == 0:
            return x
        return x[..., self.start : self.stop or None, self.start : self.stop or None]


class Encoder(nn.Module):
    """Image ``(B, C, H, W)`` -> features ``(B, out_features)``."""

    def __init__(self, cfg: BodyConfig, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        act = partial(activation, cfg.activation)
        c = image_shape[0]
        if cfg.arch == "conv":
            pad = conv_padding(cfg, image_shape)
            gh, gw = conv_grid(image_shape, len(cfg.channels), pad)
            convs: list[nn.Module] = [pad_layer(pad)] if pad else []
            for c_in, c_out in zip([c, *cfg.channels[:-1]], cfg.channels, strict=True):
                convs += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), act()]
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
            pad = conv_padding(cfg, image_shape)
            gh, gw = conv_grid(image_shape, len(cfg.channels), pad)
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
                *([Crop(pad)] if pad else []),
            )
        else:
            flat = math.prod(image_shape)
            self.body = nn.Sequential(
                _mlp([in_features, *hidden, flat], act, False), nn.Unflatten(1, self.image_shape)
            )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z)
