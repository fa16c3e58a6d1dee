"""Vector quantisation bottleneck (van den Oord et al. 2017, "Neural Discrete Representation
Learning"), with optional EMA codebook updates, dead-code restarts, k-means initialisation,
cosine-similarity codes, and two gradient estimators: the straight-through copy and the
rotation trick (Fifty et al. 2024, "Restructuring Vector Quantization with the Rotation Trick").

Layout: the code dimension is dim 1, as for ``nn.Conv2d`` (see :mod:`mtvae.latent.quantization`,
whose :class:`~mtvae.latent.quantization.Quantizer` interface this module implements).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
import torch.distributed as dist
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from mtvae.base import StrictModel
from mtvae.latent.quantization import Quantized, Quantizer, perplexity


def _distributed() -> bool:
    """Whether this forward runs in one of several data-parallel processes (DDP)."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _summed_over_ranks(t: Tensor) -> Tensor:
    """``t`` summed over all data-parallel ranks (``t`` itself in a single process)."""
    if not _distributed():
        return t
    t = t.clone()
    dist.all_reduce(t)
    return t


def _from_rank_zero(t: Tensor) -> None:
    """Overwrite ``t`` in place with rank 0's value (no-op in a single process)."""
    if _distributed():
        dist.broadcast(t, src=0)


KMEANS_ITERS = 10  # Lloyd iterations for k-means initialisation; a few suffice from k-means++ seeds


VQGradient = Literal["straight_through", "rotation"]


class VQOptions(StrictModel):
    """Options of a :class:`VectorQuantizer` (``model.quantizer`` with ``kind: vq``)."""

    # keys added after run directories existed: written to a resolved config only when they
    # differ from their default, so the configs (and run ids) of earlier runs stay the same
    LATER_KEYS: ClassVar[tuple[str, ...]] = ("gradient",)

    num_codes: int = Field(128, gt=0, description="codebook size K")
    code_dim: int = Field(16, gt=0, description="code dimension D")
    beta: float = Field(0.25, ge=0, description="commitment loss weight")
    ema: bool = Field(False, description="update the codebook by EMA instead of by gradient")
    ema_decay: float = Field(
        0.99, gt=0, lt=1, description="with ema: decay γ of the codebook's moving averages "
        "(closer to 1: slower codebook updates)"
    )
    ema_eps: float = Field(1e-5, gt=0, description="Laplace smoothing of EMA cluster sizes")
    dead_code_steps: int | None = Field(
        100, gt=0, description="restart codes unused for this many training steps; None disables"
    )
    kmeans_init: bool = Field(False, description="k-means init on the first training batch")
    cosine: bool = Field(False, description="l2-normalise inputs and codes")
    gradient: VQGradient = Field(
        "straight_through", description="how the reconstruction's gradient passes the "
        "quantisation to the encoder: straight_through (copied unchanged) or rotation (rotated "
        "and rescaled by the map from the encoder output onto its code, Fifty et al. 2024)"
    )


def squared_distances(z: Tensor, codebook: Tensor) -> Tensor:
    """Squared Euclidean distances ``(N, D), (K, D) -> (N, K)`` as one matrix product."""
    z_sq = z.pow(2).sum(1, keepdim=True)  # (N, 1)
    e_sq = codebook.pow(2).sum(1)  # (K,)
    return torch.addmm(e_sq, z, codebook.t(), alpha=-2.0) + z_sq


def nearest_codes(z: Tensor, codebook: Tensor) -> Tensor:
    """Index of the nearest codebook row for each row of ``z``: ``(N, D), (K, D) -> (N,)``."""
    return squared_distances(z, codebook).argmin(1)


def rotation_trick(e: Tensor, q: Tensor, eps: float = 1e-12) -> Tensor:
    """``q`` ``(N, D)`` in the forward; in the backward the gradient ``g`` reaching the output
    reaches ``e`` ``(N, D)`` as ``(||q|| / ||e||) R^T g`` (Fifty et al. 2024, eq. 4 and sec. 4.2).

    ``R = I - 2 r r^T + 2 q̂ ê^T`` with ``ê = e/||e||``, ``q̂ = q/||q||``, ``r = (ê + q̂)/||ê + q̂||``
    is the rotation in the plane of ``e`` and ``q`` that takes ``ê`` to ``q̂``, so
    ``(||q|| / ||e||) R e = q``. The scale and the rotation are treated as constants
    (detached), so the output is linear in ``e``; no gradient reaches ``q`` through it. The
    forward returns ``q`` itself plus an exact zero, so its value is the code, bit for bit.
    """
    e_norm = e.norm(dim=1, keepdim=True).clamp_min(eps)  # (N, 1)
    q_norm = q.norm(dim=1, keepdim=True).clamp_min(eps)
    e_hat, q_hat = (e / e_norm).detach(), (q / q_norm).detach()
    r = F.normalize(e_hat + q_hat, dim=1)  # (N, D), a constant: built from detached parts
    # R e without forming R (N x D x D): e - 2 (r.e) r + 2 (ê.e) q̂
    rotated = e - 2 * (e * r).sum(1, keepdim=True) * r + 2 * (e * e_hat).sum(1, keepdim=True) * q_hat
    transformed = (q_norm / e_norm).detach() * rotated
    return q.detach() + (transformed - transformed.detach())


def kmeans(x: Tensor, k: int, iters: int = KMEANS_ITERS, spherical: bool = False) -> Tensor:
    """Cluster the rows of ``x`` ``(N, D)`` into ``k`` centroids ``(k, D)``.

    k-means++ seeding then Lloyd iterations; an empty cluster keeps its previous centroid.
    ``spherical`` l2-normalises the centroids after each update (for cosine codebooks).
    """
    centroids = _kmeans_pp_seeds(x, k)
    for _ in range(iters):
        assign = nearest_codes(x, centroids)
        counts = torch.bincount(assign, minlength=k)[:, None]
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        means = sums / counts.clamp_min(1)
        if spherical:
            means = F.normalize(means, dim=1)
        centroids = torch.where(counts > 0, means, centroids)
    return centroids


def _kmeans_pp_seeds(x: Tensor, k: int) -> Tensor:
    """k-means++ seeds: each next seed is drawn with probability proportional to D(x)^2."""
    idx = torch.randint(len(x), (1,), device=x.device)
    seeds = [x[idx]]
    d2 = squared_distances(x, seeds[0]).squeeze(1).clamp_min(0)
    for _ in range(k - 1):
        # all points already chosen (k > distinct points): fall back to uniform draws
        weights = torch.where(d2.sum() > 0, d2, torch.ones_like(d2))
        idx = torch.multinomial(weights, 1)
        seeds.append(x[idx])
        d2 = torch.minimum(d2, squared_distances(x, seeds[-1]).squeeze(1).clamp_min(0))
    return torch.cat(seeds)


class VectorQuantizer(Quantizer):
    """Maps each ``D``-vector at dim 1 of the input to its nearest of ``K`` learned codes.

    Training-mode forwards also update the module's state (EMA codebook, usage counters, dead-code
    restarts, one-off k-means init); eval-mode forwards change nothing. Under DDP the updates
    stay identical on every rank: usage counts and EMA sums are summed over the ranks' batches,
    and codes placed from data (restarts, k-means) are rank 0's choice, broadcast.
    """

    def __init__(self, config: VQOptions | None = None) -> None:
        super().__init__()
        self.config = config or VQOptions()
        k, d = self.config.num_codes, self.config.code_dim
        # unit scale, like Sonnet's VQ-VAE: matches normalised encoder outputs
        codebook = torch.randn(k, d)
        if self.config.ema:
            # a buffer, so no optimizer ever touches it; the EMA stats start consistent with it
            self.register_buffer("codebook", codebook)
            self.register_buffer("ema_count", torch.ones(k))
            self.register_buffer("ema_sum", codebook.clone())
        else:
            self.codebook = nn.Parameter(codebook)
        self.register_buffer("unused_steps", torch.zeros(k, dtype=torch.long))
        self.register_buffer("initialized", torch.tensor(not self.config.kmeans_init))

    @property
    def n_codes(self) -> int:
        """Codebook size K."""
        return self.config.num_codes

    @staticmethod
    def code_dim_of(options: VQOptions) -> int:
        """Code dimension D, as configured."""
        return options.code_dim

    @staticmethod
    def describe(options: VQOptions) -> str:
        """E.g. "vq: 32 codes of dimension 2, EMA codebook (decay 0.99), straight-through ..."."""
        parts = [f"vq: {options.num_codes} codes of dimension {options.code_dim}",
                 f"EMA codebook (decay {options.ema_decay:g})" if options.ema else "codebook loss",
                 f"commitment weight {options.beta:g}",
                 "rotation-trick gradient" if options.gradient == "rotation"
                 else "straight-through gradient",
                 f"dead codes restarted after {options.dead_code_steps} steps"
                 if options.dead_code_steps else "no dead-code restarts"]
        parts += ["k-means init"] * options.kmeans_init + ["cosine codes"] * options.cosine
        return ", ".join(parts)

    def forward(self, z: Tensor) -> Quantized:
        """Quantise ``z`` of shape ``(B, D, *spatial)``."""
        flat = self.flatten(z)  # (N, D)
        if self.config.cosine:
            flat = F.normalize(flat, dim=1)
        if self.config.kmeans_init and self.training and not self.initialized:
            self._kmeans_init(flat.detach())
        with torch.no_grad():
            indices = nearest_codes(flat, self._codes())  # (N,)
        codes = self._codes(indices)  # (N, D); gradient reaches only the selected rows
        commitment = F.mse_loss(flat, codes.detach())
        codebook_loss = F.mse_loss(flat.detach(), codes)
        loss = self.config.beta * commitment
        if not self.config.ema:
            loss = loss + codebook_loss
        if self.config.gradient == "rotation":
            z_q = rotation_trick(flat, codes)
        else:
            z_q = flat + (codes - flat).detach()  # straight-through estimator
        counts = torch.bincount(indices, minlength=self.config.num_codes)
        if self.training:
            self._update_state(flat.detach(), indices, counts)
        return Quantized(
            z_q=self.unflatten(z_q, z.shape),
            indices=indices.view(z.shape[0], *z.shape[2:]),
            loss=loss,
            codebook_loss=codebook_loss.detach(),
            commitment_loss=commitment.detach(),
            perplexity=perplexity(counts),
            used=(counts > 0).sum(),
        )

    @torch.no_grad()
    def indices(self, z: Tensor) -> Tensor:
        """Indices of the nearest codes for ``z`` ``(B, D, *spatial)``: ``(B, *spatial)``.

        The forward's indices without its side effects: no state changes in any mode.
        """
        flat = self.flatten(z)
        if self.config.cosine:
            flat = F.normalize(flat, dim=1)
        return nearest_codes(flat, self._codes()).view(z.shape[0], *z.shape[2:])

    def codes_from_indices(self, indices: Tensor) -> Tensor:
        """Decode indices ``(B, *spatial)`` to code vectors ``(B, D, *spatial)``."""
        if indices.ndim < 1:
            raise ValueError("indices need a batch dimension")
        codes = self._codes(indices.reshape(-1))  # (N, D)
        return codes.view(*indices.shape, -1).movedim(-1, 1)

    def _codes(self, indices: Tensor | None = None) -> Tensor:
        """Codebook rows (all, or the given ones), normalised in cosine mode."""
        # index before normalising, so autograd saves a copy, not the codebook itself, and
        # in-place state updates after the forward leave backward intact
        codes = self.codebook if indices is None else self.codebook[indices]
        return F.normalize(codes, dim=1) if self.config.cosine else codes

    @torch.no_grad()
    def _update_state(self, flat: Tensor, indices: Tensor, counts: Tensor) -> None:
        """Training-mode state changes, after the forward's graph is built."""
        counts = _summed_over_ranks(counts)  # a code is used if any rank's batch used it
        if self.config.ema:
            self._ema_update(flat, indices, counts)
        self.unused_steps.add_(1).masked_fill_(counts > 0, 0)
        if self.config.dead_code_steps is not None:
            self._restart_dead_codes(flat)

    def _ema_update(self, flat: Tensor, indices: Tensor, counts: Tensor) -> None:
        """EMA of cluster sizes and sums; codes are the Laplace-smoothed cluster means."""
        weight = 1.0 - self.config.ema_decay
        sums = torch.zeros_like(self.ema_sum).index_add_(0, indices, flat.to(self.ema_sum.dtype))
        sums = _summed_over_ranks(sums)
        self.ema_count.lerp_(counts.to(self.ema_count.dtype), weight)
        self.ema_sum.lerp_(sums, weight)
        n, eps = self.ema_count.sum(), self.config.ema_eps
        # smoothing keeps unused codes' sizes above zero, so no division by zero
        size = (self.ema_count + eps) / (n + self.config.num_codes * eps) * n
        self.codebook.copy_(self.ema_sum / size[:, None])

    def _restart_dead_codes(self, flat: Tensor) -> None:
        """Move codes unused for ``dead_code_steps`` steps onto random inputs of this batch."""
        dead = (self.unused_steps >= self.config.dead_code_steps)[:, None]  # (K, 1)
        # computed for all K rows and selected with `where`: no host sync, no data-dependent shape
        picks = torch.randint(len(flat), (self.config.num_codes,), device=flat.device)
        fresh = flat[picks].to(self.codebook.dtype)
        self.codebook.copy_(torch.where(dead, fresh, self.codebook))
        _from_rank_zero(self.codebook.data)  # every rank picked from its own batch
        if self.config.ema:
            self._reset_ema_rows(dead.squeeze(1))
        self.unused_steps.masked_fill_(dead.squeeze(1), 0)

    def _reset_ema_rows(self, rows: Tensor) -> None:
        """Restart the EMA stats of ``rows`` (bool, (K,)) at the codes, with unit weight."""
        self.ema_count.masked_fill_(rows, 1.0)
        self.ema_sum.copy_(torch.where(rows[:, None], self.codebook, self.ema_sum))

    @torch.no_grad()
    def _kmeans_init(self, flat: Tensor) -> None:
        """Place the codes at k-means centres of the first training batch (done once)."""
        centroids = kmeans(flat, self.config.num_codes, spherical=self.config.cosine)
        self.codebook.copy_(centroids)
        _from_rank_zero(self.codebook.data)
        if self.config.ema:
            self._reset_ema_rows(torch.ones_like(self.ema_count, dtype=torch.bool))
        self.initialized.fill_(True)

