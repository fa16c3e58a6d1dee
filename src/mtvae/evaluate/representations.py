"""The thin wrapper between models and the metric functions: frozen representations as arrays.

Metric functions take numpy arrays ``(N, d)``; this module is where a model turns into one:

* ``model.representation(x)`` of a :class:`~mtvae.models.capabilities.Represents` model (the
  supervised baseline's features, a VQ-VAE's quantised code vectors flattened);
* otherwise the posterior mean ``model.encode(x).loc`` of a Gaussian-latent model;
* otherwise, for a :class:`~mtvae.models.capabilities.Coded` model, the quantised vectors of
  its codes, flattened.
"""

from __future__ import annotations

import numpy as np
import torch

from mtvae.models.capabilities import Blocked, Coded, GaussianLatentModel, Represents


def representation_kind(model) -> str | None:
    """How :func:`representation` reads ``model`` (None: it cannot)."""
    if isinstance(model, Represents):
        return "representation"
    if isinstance(model, GaussianLatentModel):
        return "posterior_mean"
    if isinstance(model, Coded):
        return "codes"
    return None


# How each kind of representation is read from a batch of images (the kind comes from the
# model's capabilities, :func:`representation_kind`).
READERS = {
    "representation": lambda model, x: model.representation(x),
    "posterior_mean": lambda model, x: model.encode(x).loc,
    "codes": lambda model, x: model.quantizer.codes_from_indices(model.encode_codes(x)).flatten(1),
}


@torch.no_grad()
def representation(model, x: torch.Tensor, batch_size: int = 500) -> np.ndarray:
    """Frozen representation of images ``x`` ``(N, C, H, W)`` -> float64 array ``(N, d)``."""
    kind = representation_kind(model)
    if kind is None:
        raise ValueError(f"a {type(model).__name__} has no representation to read")
    device = next(model.parameters()).device
    parts = [
        READERS[kind](model, x[start : start + batch_size].to(device))
        .flatten(1)
        .double()
        .cpu()
        .numpy()
        for start in range(0, len(x), batch_size)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, 0))


def principal_axes(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(d,)`` and the top-``k`` principal directions ``(d, k)`` of ``x`` ``(N, d)``.

    From the eigendecomposition of the d x d covariance, which is much cheaper than an SVD of
    ``x`` when N >> d.
    """
    mean = x.mean(axis=0)
    centred = x - mean
    _, vectors = np.linalg.eigh(centred.T @ centred / max(len(x) - 1, 1))  # ascending order
    return mean, vectors[:, ::-1][:, :k]


def blocks(model, width: int) -> dict[str, slice]:
    """Named slices of a representation of ``width`` dims: an MT-VAE's latent blocks, else ``z``."""
    if isinstance(model, Blocked) and model.blocks:
        return dict(model.blocks)
    return {"z": slice(0, width)}


def block_dim_labels(model, width: int) -> list[str]:
    """One label per representation dim: ``z[3]`` or, per MT-VAE block, ``shape[0]``."""
    labels = [""] * width
    for name, s in blocks(model, width).items():
        for i, d in enumerate(range(s.start, s.stop)):
            labels[d] = f"{name}[{i}]"
    return labels
