"""Finite scalar quantization (Mentzer et al., ICLR 2024, "Finite Scalar Quantization: VQ-VAE
Made Simple").

Each of the ``D = len(levels)`` dimensions of a code vector is bounded to an interval by a
shifted, scaled ``tanh`` and rounded to one of ``L_i`` integers, then rescaled into
``[-1, 1]``; the rounding passes its gradient straight through. The codebook is implicit: the
grid of all level combinations, ``prod(levels)`` codes, each indexed by reading its
per-dimension digits as a mixed-radix number. There is no learned codebook, so no codebook or
commitment loss, no EMA and no dead codes to restart.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from pydantic import Field, field_validator
from torch import Tensor

from mtvae.base import StrictModel
from mtvae.latent.quantization import Quantized, Quantizer, perplexity

BOUND_EPS = 1e-3  # the paper's: the tanh range exceeds the outer levels a little, so rounding reaches them
MAX_CODES = 2**16  # the paper's largest implicit codebook; a prior needs a logit per code


class FSQOptions(StrictModel):
    """Options of a :class:`FiniteScalarQuantizer` (``model.quantizer`` with ``kind: fsq``)."""

    LATER_KEYS: ClassVar[tuple[str, ...]] = ()

    levels: list[int] = Field(
        default_factory=lambda: [8, 5, 5, 5], min_length=1,
        description="kind fsq: number of levels of each code dimension; the code dimension is "
        "their count and the implicit codebook their product (the paper's [8, 5, 5, 5]: "
        "4 dimensions, 1,000 codes; [8, 6, 5]: 240; [8, 8, 8, 5, 5, 5]: 64,000)",
    )

    @field_validator("levels")
    @classmethod
    def _valid_levels(cls, levels: list[int]) -> list[int]:
        if any(level < 2 for level in levels):
            raise ValueError(
                f"every FSQ level must be at least 2 (one level carries no information), got "
                f"{levels}; e.g. levels: [8, 5, 5, 5]"
            )
        if math.prod(levels) > MAX_CODES:
            raise ValueError(
                f"FSQ levels {levels} give {math.prod(levels):,} codes, more than {MAX_CODES:,}; "
                "use fewer or smaller levels"
            )
        return levels


class FiniteScalarQuantizer(Quantizer):
    """Rounds each bounded dimension to its levels; the code grid is ``prod(levels)`` points.

    No parameters and no state: the forward is the same in training and evaluation mode, and
    the levels are non-persistent buffers, so the quantizer adds no key to a state dict.
    """

    def __init__(self, config: FSQOptions | None = None) -> None:
        super().__init__()
        self.config = config or FSQOptions()
        levels = torch.tensor(self.config.levels, dtype=torch.long)  # (D,)
        self.register_buffer("levels", levels, persistent=False)
        # digit i of an index has weight L_0 * ... * L_{i-1} (mixed radix, dimension 0 lowest)
        basis = torch.cumprod(torch.cat([torch.ones(1, dtype=torch.long), levels[:-1]]), 0)
        self.register_buffer("basis", basis, persistent=False)
        self.register_buffer("half_width", levels // 2, persistent=False)  # integers -> [-1, 1]

    @property
    def n_codes(self) -> int:
        """Size of the implicit codebook, the product of the levels."""
        return math.prod(self.config.levels)

    @staticmethod
    def code_dim_of(options: FSQOptions) -> int:
        """Code dimension: the number of levels."""
        return len(options.levels)

    @staticmethod
    def describe(options: FSQOptions) -> str:
        """E.g. "fsq: levels [8, 4], 32 implicit codes of dimension 2"."""
        return (f"fsq: levels {options.levels}, {math.prod(options.levels)} implicit codes of "
                f"dimension {len(options.levels)}")

    def bound(self, z: Tensor) -> Tensor:
        """``z`` ``(N, D)`` squashed into ``(-L/2 - offset, L/2 - offset)`` per dimension.

        ``tanh(z + shift) * h - offset`` with ``h = (L - 1)(1 + eps) / 2``; an even ``L`` has
        its integers at ``-L/2 .. L/2 - 1``, so it is offset by half a step, and the shift
        ``atanh(offset / h)`` keeps ``bound(0) = 0``.
        """
        levels = self.levels.to(z.dtype)
        half = (levels - 1) * (1 + BOUND_EPS) / 2
        offset = (self.levels % 2 == 0).to(z.dtype) / 2
        shift = torch.atanh(offset / half)
        return torch.tanh(z + shift) * half - offset

    def forward(self, z: Tensor) -> Quantized:
        """Quantise ``z`` ``(B, D, *spatial)`` to grid points, straight through the rounding."""
        flat = self.flatten(z)  # (N, D)
        bounded = self.bound(flat)
        # the rounded value plus an exact zero that carries the bound's gradient
        rounded = bounded.detach().round() + (bounded - bounded.detach())
        indices = self._index(rounded.detach())  # (N,)
        counts = torch.bincount(indices, minlength=self.n_codes)
        zero = flat.new_zeros(())
        return Quantized(
            z_q=self.unflatten(rounded / self.half_width, z.shape),
            indices=indices.view(z.shape[0], *z.shape[2:]),
            loss=zero, codebook_loss=zero, commitment_loss=zero,
            perplexity=perplexity(counts),
            used=(counts > 0).sum(),
        )

    @torch.no_grad()
    def indices(self, z: Tensor) -> Tensor:
        """Mixed-radix indices ``(B, *spatial)`` of the grid points of ``z`` ``(B, D, *spatial)``."""
        return self._index(self.bound(self.flatten(z)).round()).view(z.shape[0], *z.shape[2:])

    def indices_from_codes(self, codes: Tensor) -> Tensor:
        """Indices ``(B, *spatial)`` of grid points ``(B, D, *spatial)``; inverse of
        :meth:`codes_from_indices`."""
        steps = (self.flatten(codes) * self.half_width).round()
        return self._index(steps).view(codes.shape[0], *codes.shape[2:])

    def codes_from_indices(self, indices: Tensor) -> Tensor:
        """Grid points ``(B, D, *spatial)`` in ``[-1, 1]`` of indices ``(B, *spatial)``."""
        if indices.ndim < 1:
            raise ValueError("indices need a batch dimension")
        digits = indices.reshape(-1, 1).div(self.basis, rounding_mode="floor") % self.levels
        codes = (digits - self.half_width) / self.half_width  # (N, D)
        return codes.view(*indices.shape, -1).movedim(-1, 1)

    def _index(self, steps: Tensor) -> Tensor:
        """Mixed-radix index ``(N,)`` of integer steps ``(N, D)`` from the centre of the grid."""
        digits = steps.long() + self.half_width  # (N, D), in [0, L)
        return (digits * self.basis).sum(1)
