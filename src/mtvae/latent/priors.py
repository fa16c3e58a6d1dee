"""Label-conditional priors p(z_t | y_t) for a task's latent block (as in DIVA and CCVAE).

Categorical and binary tasks get a learned mean and log-scale per class; regression and
multilabel tasks get a learned linear map from the label to (mean, log-scale). Parameters start
at zero, so every conditional prior starts as N(0, I).

Missing labels: for a categorical or binary task the KL uses the classifier's belief,
``sum_k q(y=k | z_t) KL(q(z_t|x) || p(z_t|y=k))`` with q(y|z_t) detached (the prior term does
not train the classifier; the labelled task loss does). By convexity of the KL this is an upper
bound on the KL to the mixture ``sum_k q(k) p(z_t|k)``, so the ELBO stays a bound. For
regression and multilabel tasks a sample without a label falls back to the standard prior.

The prior also keeps the training labels' marginal (class counts, or running mean and variance)
in buffers, used to draw labels for unconditioned blocks when sampling and to evaluate the
marginal p(z_t) for importance-weighted likelihoods.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Normal

from mtvae.data.tasks import TaskSpec
from mtvae.latent.gaussian import kl_standard_normal

N_QUADRATURE = 32  # label nodes approximating p(z_t) = E_y p(z_t | y) for regression tasks


def kl_normal(q_loc, q_scale, p_loc, p_scale) -> torch.Tensor:
    """Elementwise KL(N(q_loc, q_scale) || N(p_loc, p_scale)) (broadcasting)."""
    ratio = (q_scale / p_scale).square()
    return 0.5 * (ratio + ((q_loc - p_loc) / p_scale).square() - 1.0 - ratio.log())


class ConditionalPrior(nn.Module):
    """p(z_t | y_t) over a ``dim``-dimensional block for one task."""

    def __init__(self, task: TaskSpec, dim: int) -> None:
        super().__init__()
        self.task = task
        self.dim = dim
        self.discrete = task.discrete
        if self.discrete:
            n_classes = task.n_values
            self.table = nn.Parameter(torch.zeros(n_classes, 2 * dim))
            self.register_buffer("class_counts", torch.zeros(n_classes))
        else:
            n_in = task.task_kind.label_width
            self.map = nn.Linear(n_in, 2 * dim)
            nn.init.zeros_(self.map.weight)
            nn.init.zeros_(self.map.bias)
            self.register_buffer("label_stats", torch.zeros(3))  # count, mean, M2 (Welford)

    # --- the prior ------------------------------------------------------------------------
    def params(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and scale ``(B, dim)`` of p(z_t | y) for valid labels ``y``."""
        if self.discrete:
            raw = self.table[y.long()]
        else:
            raw = self.map(y.float().view(len(y), -1))
        loc, log_scale = raw.chunk(2, dim=-1)
        return loc, torch.exp(log_scale.clamp(-6.0, 6.0))

    def forward(self, y: torch.Tensor) -> Normal:
        """p(z_t | y) as a distribution."""
        return Normal(*self.params(y), validate_args=False)

    def kl(
        self,
        q: Normal,
        y: torch.Tensor,
        mask: torch.Tensor,
        class_probs: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Per-sample, per-dimension KL ``(B, dim)`` using labels where present (see module doc)."""
        y_valid = torch.where(mask.view((-1,) + (1,) * (y.dim() - 1)), y, torch.zeros_like(y))
        loc, scale = self.params(y_valid)
        labelled = kl_normal(q.loc, q.scale, loc, scale)
        if self.discrete and class_probs is not None:
            all_loc, all_scale = self.params(torch.arange(len(self.table), device=y.device))
            per_class = kl_normal(q.loc[:, None], q.scale[:, None], all_loc, all_scale)  # (B,K,D)
            unlabelled = (class_probs.detach()[..., None] * per_class).sum(1)
        else:
            unlabelled = kl_standard_normal(q)
        return torch.where(mask[:, None], labelled, unlabelled)

    # --- label marginal ---------------------------------------------------------------------
    @torch.no_grad()
    def observe(self, y: torch.Tensor, mask: torch.Tensor) -> None:
        """Accumulate the labelled targets' marginal (call in training mode only)."""
        y = y[mask]
        if len(y) == 0:
            return
        if self.discrete:
            self.class_counts += torch.bincount(y.long(), minlength=len(self.class_counts)).float()
        elif self.task.task_kind.continuous:
            _welford_update(self.label_stats, y.float())

    def sample_labels(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``n`` labels from the stored training marginal."""
        device = self._device()
        if self.discrete:
            probs = self._class_probs()
            return torch.multinomial(probs.cpu(), n, replacement=True, generator=generator).to(device)
        if not self.task.task_kind.continuous:  # multilabel: no marginal kept, all zeros
            return torch.zeros(n, self.task.task_kind.label_width, device=device)
        mean, std = self._label_mean_std()
        return mean + std * torch.randn(n, generator=generator).to(device)

    def log_marginal(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z_t) = log E_y p(z_t | y) for ``z`` ``(..., dim)``, summed over dimensions.

        Exact for discrete labels (mixture over classes weighted by their training frequency);
        for regression a deterministic quadrature over ``N_QUADRATURE`` quantiles of the label
        marginal (a Gaussian fitted to the training labels).
        """
        labels, log_w = self._marginal_nodes()
        loc, scale = self.params(labels)  # (M, dim)
        log_p = Normal(loc, scale, validate_args=False).log_prob(z.unsqueeze(-2)).sum(-1)
        return torch.logsumexp(log_p + log_w, dim=-1)

    def _marginal_nodes(self) -> tuple[torch.Tensor, torch.Tensor]:
        device = self._device()
        if self.discrete:
            probs = self._class_probs()
            return torch.arange(len(probs), device=device), probs.clamp_min(1e-12).log()
        if not self.task.task_kind.continuous:  # multilabel: the all-zero label alone
            width = self.task.task_kind.label_width
            return torch.zeros(1, width, device=device), torch.zeros(1, device=device)
        mean, std = self._label_mean_std()
        u = (torch.arange(N_QUADRATURE, device=device) + 0.5) / N_QUADRATURE
        nodes = mean + std * math.sqrt(2.0) * torch.special.erfinv(2 * u - 1)
        return nodes, torch.full((N_QUADRATURE,), -math.log(N_QUADRATURE), device=device)

    def _class_probs(self) -> torch.Tensor:
        counts = self.class_counts
        return counts / counts.sum() if counts.sum() > 0 else torch.full_like(counts, 1 / len(counts))

    def _label_mean_std(self) -> tuple[float, float]:
        count, mean, m2 = self.label_stats.tolist()
        std = math.sqrt(m2 / (count - 1)) if count > 1 else 1.0
        return mean, max(std, 1e-6)

    def _device(self) -> torch.device:
        return next(self.parameters()).device


def _welford_update(stats: torch.Tensor, y: torch.Tensor) -> None:
    # Chan et al.'s parallel update of (count, mean, M2) with a batch of values.
    count, mean, m2 = stats.tolist()
    n_b, mean_b = len(y), float(y.mean())
    m2_b = float(((y - mean_b) ** 2).sum())
    total = count + n_b
    delta = mean_b - mean
    stats[0] = total
    stats[1] = mean + delta * n_b / total
    stats[2] = m2 + m2_b + delta**2 * count * n_b / total
