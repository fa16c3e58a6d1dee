"""Encoder and decoder bodies for vector-quantised models: images <-> a grid of code vectors.

The code vectors always come as a grid ``(B, D, H', W')`` so quantiser, decoder and the
autoregressive prior treat both architectures alike:

* ``conv``: each entry of ``channels`` is a stride-2 4x4 convolution, so the grid is the image
  downsampled ``2^len(channels)`` times (two layers: 32x32 -> 8x8); each entry of ``hidden`` is
  a further stride-1 3x3 convolution, then a 1x1 convolution projects to ``D`` channels. The
  decoder mirrors it with transposed convolutions.
* ``mlp``: the usual MLP body, then a linear map to ``n_latents`` code vectors laid out as a
  ``1 x n_latents`` grid (for flat data, where a spatial grid means nothing).
"""

from __future__ import annotations

import math
from functools import partial

import torch
from pydantic import Field
from torch import nn

from mtvae.nn.bodies import (
    BodyConfig,
    Crop,
    Decoder,
    Encoder,
    activation,
    conv_grid,
    conv_padding,
    pad_layer,
)
from mtvae.nn.upconv import UpConv2d


class CodeBodyConfig(BodyConfig):
    """Architecture of a code-grid encoder and its mirrored decoder (see the module docstring)."""

    channels: list[int] = Field(
        default_factory=lambda: [32, 64],
        description="conv: channels of each stride-2 layer; the grid is the image side / 2^len",
    )
    hidden: list[int] = Field(
        default_factory=lambda: [64],
        description="conv: channels of stride-1 3x3 layers after the strides; mlp: hidden sizes",
    )


def code_grid(
    cfg: BodyConfig, image_shape: tuple[int, int, int], n_latents: int
) -> tuple[int, int]:
    """Shape ``(H', W')`` of the code grid the body produces for ``image_shape``."""
    if cfg.arch == "conv":
        if not cfg.channels:
            raise ValueError("a conv code body needs at least one stride-2 layer in channels")
        return conv_grid(image_shape, len(cfg.channels), conv_padding(cfg, image_shape))
    return 1, n_latents


class CodeEncoder(nn.Module):
    """Image ``(B, C, H, W)`` -> code vectors ``(B, D, H', W')`` (before quantisation)."""

    def __init__(
        self, cfg: BodyConfig, image_shape: tuple[int, int, int], code_dim: int, n_latents: int
    ) -> None:
        super().__init__()
        self.grid_shape = code_grid(cfg, image_shape, n_latents)
        self.code_dim = code_dim
        act = partial(activation, cfg.activation)
        if cfg.arch == "conv":
            pad = conv_padding(cfg, image_shape)
            layers: list[nn.Module] = [pad_layer(pad)] if pad else []
            c = image_shape[0]
            for c_out in cfg.channels:
                layers += [nn.Conv2d(c, c_out, 4, stride=2, padding=1), act()]
                c = c_out
            for c_out in cfg.hidden:
                layers += [nn.Conv2d(c, c_out, 3, padding=1), act()]
                c = c_out
            self.body = nn.Sequential(*layers, nn.Conv2d(c, code_dim, 1))
        else:
            mlp = Encoder(cfg, image_shape)
            self.body = nn.Sequential(
                mlp,
                nn.Linear(mlp.out_features, n_latents * code_dim),
                nn.Unflatten(1, (code_dim, *self.grid_shape)),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class CodeDecoder(nn.Module):
    """Code vectors ``(B, D, H', W')`` -> likelihood parameters ``(B, C, H, W)``."""

    def __init__(
        self, cfg: BodyConfig, image_shape: tuple[int, int, int], code_dim: int, n_latents: int
    ) -> None:
        super().__init__()
        grid = code_grid(cfg, image_shape, n_latents)  # validates the config for the image
        act = partial(activation, cfg.activation)
        if cfg.arch == "conv":
            layers: list[nn.Module] = []
            sizes = [code_dim, *reversed(cfg.hidden), cfg.channels[-1]]
            for c_in, c_out in zip(sizes[:-1], sizes[1:], strict=True):
                layers += [nn.Conv2d(c_in, c_out, 3, padding=1), act()]
            chans = list(reversed(cfg.channels))
            outs = [*chans[1:], image_shape[0]]
            for i, (c_in, c_out) in enumerate(zip(chans, outs, strict=True)):
                layers.append(UpConv2d(c_in, c_out))
                if i < len(chans) - 1:
                    layers.append(act())
            pad = conv_padding(cfg, image_shape)
            self.body = nn.Sequential(*layers, *([Crop(pad)] if pad else []))
        else:
            flat = code_dim * math.prod(grid)
            self.body = nn.Sequential(nn.Flatten(), Decoder(cfg, image_shape, flat))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z)
