"""Autoregressive priors over a grid of discrete codes, e.g. the indices of a VQ-VAE.

:class:`PixelCNNPrior` is a gated PixelCNN (van den Oord et al. 2016, "Conditional Image
Generation with PixelCNN Decoders") with vertical and horizontal stacks, so it has no blind spot:
the logits at ``(i, j)`` depend on every earlier raster position within the receptive field and
on nothing at or after ``(i, j)``. Causality comes from padding and cropping rather than masks:

* vertical stack: features at row ``i`` see only rows ``< i`` (all columns in the kernel);
* horizontal stack: features at ``(i, j)`` see only row ``i`` left of ``j``, plus the vertical
  stack at ``(i, j)`` (which already excludes row ``i``).

The first layer ("type A") shifts its convolutions by one row / column to exclude the current
position; later layers ("type B") may include it, because their inputs already exclude it.
:class:`UniformPrior` is the baseline with the same ``nll`` / ``sample`` interface.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import Tensor, nn

from mtvae.base import StrictModel


class PixelCNNConfig(StrictModel):
    """Configuration of a :class:`PixelCNNPrior`."""

    num_codes: int = Field(gt=1, description="number of discrete codes K")
    hidden: int = Field(64, gt=0, description="channels of both stacks")
    layers: int = Field(5, gt=0, description="gated layers, the first of type A")
    kernel_size: int = Field(3, ge=3, description="kernel of the type-B layers (odd)")
    first_kernel_size: int = Field(5, ge=3, description="kernel of the type-A layer (odd)")
    n_classes: int | None = Field(None, gt=0, description="class-conditional when set")

    @field_validator("kernel_size", "first_kernel_size")
    @classmethod
    def _odd(cls, k: int) -> int:
        if k % 2 == 0:
            raise ValueError("kernel sizes must be odd")
        return k


def _gate(x: Tensor) -> Tensor:
    """Gated activation ``tanh(a) * sigmoid(b)`` over the two channel halves."""
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


class _VerticalConv(nn.Module):
    """Conv whose output at row ``i`` sees rows ``i - k//2 - shift .. i - shift``, all columns
    ``j - k//2 .. j + k//2``."""

    def __init__(self, c_in: int, c_out: int, k: int, shift: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, (k // 2 + 1, k))
        # (left, right, top, bottom); a negative bottom crops, shifting the input down
        self.pad = (k // 2, k // 2, k // 2 + shift, -shift)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, self.pad))


class _HorizontalConv(nn.Module):
    """Conv whose output at ``(i, j)`` sees row ``i``, columns ``j - k//2 - shift .. j - shift``."""

    def __init__(self, c_in: int, c_out: int, k: int, shift: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, (1, k // 2 + 1))
        self.pad = (k // 2 + shift, -shift, 0, 0)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, self.pad))


class _GatedLayer(nn.Module):
    """One gated layer over the (vertical, horizontal) stack pair."""

    def __init__(self, channels: int, k: int, first: bool, n_classes: int | None) -> None:
        super().__init__()
        shift = 1 if first else 0  # type A excludes the current position, type B may include it
        self.vertical = _VerticalConv(channels, 2 * channels, k, shift)
        self.horizontal = _HorizontalConv(channels, 2 * channels, k, shift)
        # the vertical stack at (i, j) sees only rows < i, so it may feed (i, j) unshifted
        self.v_to_h = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.h_out = nn.Conv2d(channels, channels, 1)
        # a class bias inside the gates reaches every position, including the first
        self.cond = nn.Embedding(n_classes, 2 * channels) if n_classes else None
        self.residual = not first  # a type-A residual would leak the current position

    def forward(self, v: Tensor, h: Tensor, cond: Tensor | None) -> tuple[Tensor, Tensor]:
        bias = 0.0 if cond is None else self.cond(cond)[:, :, None, None]  # (B, 2C, 1, 1)
        v_pre = self.vertical(v)  # (B, 2C, H, W)
        h_pre = self.horizontal(h) + self.v_to_h(v_pre)
        h_new = self.h_out(_gate(h_pre + bias))
        return _gate(v_pre + bias), (h + h_new if self.residual else h_new)


class PixelCNNPrior(nn.Module):
    """Gated PixelCNN over an ``(H, W)`` grid of codes in ``[0, K)``; logits ``(B, K, H, W)``."""

    def __init__(self, config: PixelCNNConfig) -> None:
        super().__init__()
        self.config = config
        c = config.hidden
        self.embed = nn.Embedding(config.num_codes, c)
        kernels = [config.first_kernel_size] + [config.kernel_size] * (config.layers - 1)
        self.layers = nn.ModuleList(
            _GatedLayer(c, k, first=i == 0, n_classes=config.n_classes)
            for i, k in enumerate(kernels)
        )
        self.head = nn.Sequential(
            nn.ReLU(), nn.Conv2d(c, c, 1), nn.ReLU(), nn.Conv2d(c, config.num_codes, 1)
        )

    def forward(self, codes: Tensor, cond: Tensor | None = None) -> Tensor:
        """Logits ``(B, K, H, W)`` for codes ``(B, H, W)``; ``cond`` is ``(B,)`` class ids."""
        self._check_cond(cond)
        x = self.embed(codes).permute(0, 3, 1, 2)  # (B, C, H, W)
        v, h = x, x
        for layer in self.layers:
            v, h = layer(v, h, cond)
        return self.head(h)

    def nll(self, codes: Tensor, cond: Tensor | None = None) -> Tensor:
        """Negative log-likelihood in nats per sample ``(B,)``, summed over positions."""
        logits = self(codes, cond)
        return F.cross_entropy(logits, codes, reduction="none").sum((1, 2))

    @torch.no_grad()
    def sample(
        self,
        n: int,
        shape: tuple[int, int],
        generator: torch.Generator | None = None,
        cond: Tensor | None = None,
        temperature: float = 1.0,
    ) -> Tensor:
        """Draw ``n`` code grids ``(n, H, W)`` in raster order."""
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        height, width = shape
        device = self.embed.weight.device
        codes = torch.zeros(n, height, width, dtype=torch.long, device=device)
        for i in range(height):
            for j in range(width):
                # rows below i cannot influence row i, so they need not be computed
                logits = self(codes[:, : i + 1], cond)[:, :, i, j]  # (n, K)
                probs = F.softmax(logits / temperature, dim=1)
                codes[:, i, j] = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        return codes

    def _check_cond(self, cond: Tensor | None) -> None:
        if (cond is None) != (self.config.n_classes is None):
            need = "needs" if cond is None else "takes no"
            raise ValueError(
                f"this prior {need} class conditioning (n_classes={self.config.n_classes})"
            )


class UniformPrior(nn.Module):
    """Baseline prior: every code independent and uniform over ``[0, K)``."""

    def __init__(self, num_codes: int) -> None:
        super().__init__()
        self.num_codes = num_codes

    def forward(self, codes: Tensor, cond: Tensor | None = None) -> Tensor:
        """Uniform logits ``(B, K, H, W)``."""
        return codes.new_zeros(codes.shape[0], self.num_codes, *codes.shape[1:], dtype=torch.float)

    def nll(self, codes: Tensor, cond: Tensor | None = None) -> Tensor:
        """``H * W * log K`` nats for every sample ``(B,)``."""
        per_sample = math.prod(codes.shape[1:]) * math.log(self.num_codes)
        return torch.full((codes.shape[0],), per_sample, device=codes.device)

    def sample(
        self,
        n: int,
        shape: tuple[int, int],
        generator: torch.Generator | None = None,
        cond: Tensor | None = None,
        temperature: float = 1.0,
    ) -> Tensor:
        """Draw ``n`` uniform code grids ``(n, H, W)``; ``cond`` and ``temperature`` are ignored."""
        device = generator.device if generator is not None else None
        return torch.randint(self.num_codes, (n, *shape), generator=generator, device=device)
