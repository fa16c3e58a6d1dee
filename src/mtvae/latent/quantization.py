"""What every quantizer gives the models built on it: the :class:`Quantizer` interface, its
:class:`Quantized` output and the code-usage statistics computed from indices.

A quantizer maps each ``D``-vector at dim 1 of its input to one of ``n_codes`` codes, each with
an integer index. Inputs may be flat ``(B, D)``, sequences ``(B, D, L)`` or grids
``(B, D, H, W)``; outputs keep the input's layout and indices have the input's shape without
dim 1, e.g. ``(B, H, W)`` for a grid. The VQ-VAE, its prior, sampling and the codebook metrics
read a quantizer only through this interface (indices in ``[0, n_codes)``, codes back from
indices), so a new quantizer is one module plus an entry in :mod:`mtvae.latent.quantizers`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn


@dataclass
class Quantized:
    """Output of a quantizer's forward. All statistics are 0-dim tensors (no host sync)."""

    z_q: Tensor  # the codes, same shape as the input; gradients reach the input through it
    indices: Tensor  # long, input shape without the code dim
    loss: Tensor  # the quantizer's own training loss (0 for one that has none)
    codebook_loss: Tensor  # detached; 0 where there is no learned codebook
    commitment_loss: Tensor  # detached; 0 where there is no commitment term
    perplexity: Tensor  # exp(entropy) of the batch's code usage
    used: Tensor  # number of distinct codes in the batch


class Quantizer(nn.Module, ABC):
    """Interface of a quantizer: ``forward`` (quantize), ``indices``, ``codes_from_indices``.

    ``forward(z)`` quantizes ``z`` ``(B, D, *spatial)`` into a :class:`Quantized` and, in
    training mode, may update the module's state (codebook statistics, restarts);
    ``indices(z)`` gives the same indices without any side effect; ``codes_from_indices``
    decodes indices back to code vectors, so ``codes_from_indices(indices(z))`` is the
    forward's ``z_q`` (up to the estimator's rounding). A subclass is built as
    ``Class(options)`` and keeps its options as ``self.config``.
    """

    @property
    @abstractmethod
    def n_codes(self) -> int:
        """Number of codes: indices lie in ``[0, n_codes)``."""

    @staticmethod
    @abstractmethod
    def code_dim_of(options: Any) -> int:
        """Code dimension ``D`` of a quantizer built from ``options``, known before building it
        (a model builds its encoder first, so its weights draw the same random numbers)."""

    @staticmethod
    @abstractmethod
    def describe(options: Any) -> str:
        """One line naming the quantizer and its settings, for reports (e.g. "fsq: levels ...")."""

    @property
    def code_dim(self) -> int:
        """Dimension ``D`` of each code vector (dim 1 of the input)."""
        return self.code_dim_of(self.config)

    @abstractmethod
    def indices(self, z: Tensor) -> Tensor:
        """Code indices ``(B, *spatial)`` of ``z`` ``(B, D, *spatial)``; changes no state."""

    @abstractmethod
    def codes_from_indices(self, indices: Tensor) -> Tensor:
        """Code vectors ``(B, D, *spatial)`` of indices ``(B, *spatial)``."""

    def flatten(self, z: Tensor) -> Tensor:
        """``(B, D, *spatial) -> (N, D)``, checking that dim 1 is the code dimension."""
        if z.ndim < 2 or z.shape[1] != self.code_dim:
            raise ValueError(
                f"expected input (B, {self.code_dim}, ...) with the code dim at dim 1, "
                f"got shape {tuple(z.shape)}"
            )
        return z.movedim(1, -1).reshape(-1, self.code_dim)

    @staticmethod
    def unflatten(flat: Tensor, shape: torch.Size) -> Tensor:
        """``(N, D) -> (B, D, *spatial)`` for an input of ``shape``; the inverse of ``flatten``."""
        return flat.view(shape[0], *shape[2:], shape[1]).movedim(-1, 1)


def perplexity(counts: Tensor) -> Tensor:
    """``exp`` of the entropy of the usage frequencies ``counts / counts.sum()``.

    Equals K for uniform usage of K codes and 1 when a single code is used.
    """
    p = counts.float() / counts.sum().clamp_min(1)
    return torch.exp(-torch.special.xlogy(p, p).sum())


class CodeUsage:
    """Streaming code-usage statistics over many batches (``update`` / ``compute`` / ``reset``).

    ``compute`` returns ``perplexity`` (exp entropy of usage), ``usage`` (fraction of codes used
    at least once) and ``dead`` (number of codes never used).
    """

    def __init__(self, num_codes: int) -> None:
        self.num_codes = num_codes
        self.reset()

    def reset(self) -> None:
        """Forget all counts."""
        self.counts = torch.zeros(self.num_codes, dtype=torch.long)

    def update(self, indices: Tensor) -> None:
        """Add the codes in ``indices`` (any shape) to the counts."""
        counts = torch.bincount(indices.reshape(-1), minlength=self.num_codes)
        if len(counts) > self.num_codes:
            raise ValueError(f"indices must lie in [0, {self.num_codes}), got {len(counts) - 1}")
        self.counts = self.counts.to(counts.device) + counts

    def compute(self) -> dict[str, float]:
        """Statistics of all indices seen since the last reset."""
        used = int((self.counts > 0).sum())
        return {
            "perplexity": float(perplexity(self.counts)),
            "usage": used / self.num_codes,
            "dead": self.num_codes - used,
        }
