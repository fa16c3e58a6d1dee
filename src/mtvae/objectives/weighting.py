"""Task-weighting strategies: how named loss terms become gradients.

A model returns named scalar losses, each already multiplied by its static weight (β, a
per-task weight), e.g. ``{"recon", "kl", "task/shape", "task/scale"}``. A strategy turns them
into gradients. The trainer calls, per step::

    optimizer.zero_grad(set_to_none=True)
    weights = strategy.backward(losses, shared_params)  # fills .grad, returns weights used
    optimizer.step()
    strategy.after_step()

and ``strategy.end_epoch(epoch_mean_losses)`` once per epoch. Learnable strategy parameters
(uncertainty's log-variances) are ``nn.Parameter``s of the strategy, so the trainer adds
``strategy.parameters()`` to its optimizer. State needed to resume (DWA's loss history,
GradNorm's initial losses and inner optimizer, PCGrad's shuffle generator, FAMO's logits,
previous log-losses and inner optimizer) lives in
``strategy.state_dict()``, so save it next to the optimizer's. Move the strategy to the
model's device before the first step (GradNorm's inner Adam keeps its moments where they
were first created).

``scope`` picks the *balanced* terms: ``"tasks"`` balances only names starting with
``"task/"`` (recon and KL keep weight 1 but share the same backward), ``"all"`` balances every
term. The pure helpers :func:`project_conflicting`, :func:`min_norm_weights`,
:func:`dwa_weights`, :func:`famo_weights` and :func:`famo_logit_gradient` hold the maths and
are tested directly.

Why one module of over 400 lines: the seven strategies share the per-step protocol, the
private gradient helpers (flattening, adding to ``.grad``, averaging over processes) and the
registry, and each is a short class (at most 70 lines) beside its pure maths; split into files,
every strategy would import the same helpers back. Split it (a package with the pure maths
apart) when a strategy adds more than its class.
"""

from __future__ import annotations

import copy
import functools
import math
import operator
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import Tensor, nn

from mtvae.base import StrictModel
from mtvae.errors import unknown_name
from mtvae.objectives.task_losses import TASK_PREFIX

FAMO_LR = 0.025  # Liu et al. 2023 (beta) and their reference code's default
FAMO_DECAY = 0.01  # gamma of the reference implementation's example (famo.py)
FAMO_EPS = 1e-8  # added to l_i - min_i before the log, as in the reference code

Losses = Mapping[str, Tensor]


# --------------------------------------------------------------------------- pure helpers


def project_conflicting(
    grads: Sequence[Tensor], generator: torch.Generator | None = None
) -> list[Tensor]:
    """PCGrad (Yu et al. 2020): remove from each gradient its conflicts with the others.

    For each ``g_i``, visit the *original* other gradients ``g_j`` in random order and, when
    ``g_i · g_j < 0``, replace ``g_i`` by its projection on the normal plane of ``g_j``.
    Non-conflicting gradients come back unchanged. ``generator`` (a CPU generator) fixes the
    order. Gradients may have any shape, all the same.
    """
    out = []
    for i, g in enumerate(grads):
        others = [j for j in range(len(grads)) if j != i]
        order = torch.randperm(len(others), generator=generator).tolist()
        for k in order:
            gj = grads[others[k]]
            # clamp instead of `if dot < 0`: same result, no host-device sync per pair.
            dot = torch.clamp(torch.sum(g * gj), max=0.0)
            g = g - dot / torch.sum(gj * gj).clamp_min(torch.finfo(gj.dtype).tiny) * gj
        out.append(g)
    return out


def _min_norm_pair(aa: float, ab: float, bb: float) -> float:
    """Weight on ``a`` of the min-norm point of segment [a, b], given dot products."""
    denom = aa - 2.0 * ab + bb  # ||a - b||^2
    if denom <= 1e-12 * max(aa, bb, 1e-300):
        return 0.5  # a == b: every point is the same vector
    return min(max((bb - ab) / denom, 0.0), 1.0)


def _best_pair(gram: np.ndarray) -> np.ndarray:
    """Simplex weights of the best min-norm point over all pairs (Frank-Wolfe's start)."""
    k = len(gram)
    best, alpha = math.inf, np.full(k, 1.0 / k)
    for i in range(k):
        for j in range(i + 1, k):
            gamma = _min_norm_pair(gram[i, i], gram[i, j], gram[j, j])
            norm2 = gamma**2 * gram[i, i] + 2 * gamma * (1 - gamma) * gram[i, j]
            norm2 += (1 - gamma) ** 2 * gram[j, j]
            if norm2 < best:
                best, alpha = norm2, np.zeros(k)
                alpha[i], alpha[j] = gamma, 1.0 - gamma
    return alpha


def min_norm_weights(grads: Sequence[Tensor], iters: int = 250, tol: float = 1e-10) -> Tensor:
    """Simplex weights ``α`` of the min-norm point ``Σ α_i g_i`` of the gradients' convex hull.

    Two gradients use the closed form ``γ = clip((g2 - g1)·g2 / ||g1 - g2||², 0, 1)`` (weight
    on ``g1``). More use Frank-Wolfe (Sener & Koltun 2018) started from the best pair, in its
    pairwise form: each step moves weight from the worst active vertex to the best one with
    exact line search. Plain Frank-Wolfe zig-zags and can stop 10% above the minimum after
    hundreds of steps; the pairwise form converges linearly on the simplex. Stops when the
    gap falls below ``tol · max_i ||g_i||²``. Returns ``(K,)`` weights, non-negative and
    summing to 1, in the gradients' dtype and device.
    """
    if not grads:
        raise ValueError("min_norm_weights needs at least one gradient")
    flat = torch.stack([g.reshape(-1) for g in grads])  # (K, P)
    flat = flat.to(torch.promote_types(flat.dtype, torch.float32))
    # The solver works on the (K, K) Gram matrix only: numpy on the host avoids per-op torch
    # overhead and device syncs inside the loop.
    gram = (flat @ flat.T).double().cpu().numpy()
    alpha = _best_pair(gram) if len(grads) > 1 else np.ones(1)
    scale = max(float(gram.diagonal().max()), 1e-300)
    for _ in range(iters if len(grads) > 2 else 0):
        step = _pairwise_step(gram, alpha, tol * scale)
        if step is None:
            break
        alpha = step
    return torch.as_tensor(alpha, dtype=grads[0].dtype, device=grads[0].device)


def _pairwise_step(gram: np.ndarray, alpha: np.ndarray, tol: float) -> np.ndarray | None:
    """One pairwise Frank-Wolfe step on ``min α'Mα``; ``None`` once the gap is below ``tol``."""
    m_alpha = gram @ alpha  # (K,): v · g_i
    t = int(np.argmin(m_alpha))  # towards the vertex most opposed to v
    s = int(np.argmax(np.where(alpha > 0, m_alpha, -np.inf)))  # away from the worst active one
    gap = m_alpha[s] - m_alpha[t]  # >= the Frank-Wolfe duality gap
    if gap <= tol:
        return None
    curvature = gram[t, t] - 2.0 * gram[t, s] + gram[s, s]  # ||g_t - g_s||^2
    eta = alpha[s] if curvature <= 0 else min(gap / curvature, alpha[s])
    alpha = alpha.copy()
    alpha[s] -= eta
    alpha[t] += eta
    return alpha


def dwa_weights(
    prev: Mapping[str, float], prev2: Mapping[str, float], temperature: float
) -> dict[str, float]:
    """Dynamic Weight Averaging (Liu et al. 2019) from the last two epochs' mean losses.

    ``w_i = K · softmax_i(r_i / T)`` with ``r_i = L_i(t-1) / L_i(t-2)`` over the ``K`` names in
    ``prev``; the weights sum to ``K``. A task whose loss falls more slowly gets more weight.
    """
    ratios = {n: prev[n] / max(prev2[n], 1e-12) / temperature for n in prev}
    top = max(ratios.values(), default=0.0)  # subtracting the max keeps exp() finite
    exps = {n: math.exp(r - top) for n, r in ratios.items()}
    total = sum(exps.values())
    return {n: len(exps) * e / total for n, e in exps.items()}


def famo_weights(logits: Tensor, losses: Tensor, min_losses: Tensor | float = 0.0) -> Tensor:
    """FAMO's weights on the losses (Liu et al. 2023): the gradient of its objective.

    FAMO minimises ``Σ_i c · z_i · log(l_i - m_i + ε)`` with ``z = softmax(ξ)`` and the
    constant ``c = 1 / Σ_j z_j / (l_j - m_j + ε)``; its gradient is ``Σ_i w_i ∇l_i`` with
    ``w_i = c · z_i / (l_i - m_i + ε)``, which sum to 1. Returned times ``K`` (``(K,)``, summing
    to ``K``), so they average 1 like ``fixed``'s, as :class:`MGDA`'s do.
    """
    z = torch.softmax(logits, -1)  # (K,)
    ratios = z / (losses - min_losses + FAMO_EPS)
    return len(logits) * ratios / ratios.sum()


def famo_logit_gradient(logits: Tensor, decrease: Tensor) -> Tensor:
    """The gradient FAMO steps its logits ``ξ`` on: ``J_softmax(ξ)ᵀ δ = z ⊙ (δ - z·δ)``.

    ``decrease`` is ``δ_i = log(l_i(t) - m_i + ε) - log(l_i(t+1) - m_i + ε)``, how much each
    log-loss fell over a step. Descending on it moves weight from the tasks whose loss fell
    fastest to those that fell slowest (the paper's Algorithm 1).
    """
    z = torch.softmax(logits, -1)  # (K,)
    return z * (decrease - (z * decrease).sum())


def plain_sum(losses: Losses) -> Tensor:
    """``Σ_i L_i``, the same gradients as ``sum(losses.values())``."""
    # reduce(add) rather than sum(): sum() starts from 0 and adds an extra `0 + L` node.
    return functools.reduce(operator.add, losses.values())


def gradnorm_loss(weights: Tensor, norms: Tensor, loss_ratios: Tensor, alpha: float) -> Tensor:
    """GradNorm's loss ``Σ_i |G_i - mean(G) · r_i^α|``, ``G_i = w_i · norms_i`` (Chen et al. 2018).

    ``norms`` are ``||∇_W L_i||`` (so ``G_i = ||∇_W (w_i L_i)||`` for ``w_i > 0``) and
    ``r_i = loss_ratios_i / mean(loss_ratios)`` with ``loss_ratios_i = L_i / L_i(0)``. The
    target is a constant, as in the paper: only ``G`` carries gradient to ``weights``.
    """
    g = weights * norms.detach()  # (K,); linear in w, so no second-order graph is needed
    rates = loss_ratios / loss_ratios.mean()
    target = (g.mean() * rates**alpha).detach()
    return (g - target).abs().sum()


def weighted_sum(losses: Losses, weights: Mapping[str, float]) -> Tensor:
    """``Σ_i w_i L_i``; names absent from ``weights`` get weight 1 (and no extra multiply)."""
    if not losses:
        raise ValueError("weighting needs at least one loss term")
    terms = (
        loss if weights.get(name, 1.0) == 1.0 else weights[name] * loss
        for name, loss in losses.items()
    )
    return functools.reduce(operator.add, terms)


def _trainable(shared: Iterable[nn.Parameter]) -> list[nn.Parameter]:
    return [p for p in shared if p.requires_grad]


def _flat_grad(loss: Tensor, params: Sequence[nn.Parameter]) -> Tensor:
    """Gradient of ``loss`` w.r.t. ``params`` as one flat vector, keeping the graph."""
    if not loss.requires_grad:
        return torch.cat([torch.zeros_like(p).reshape(-1) for p in params])
    grads = torch.autograd.grad(
        loss, params, retain_graph=True, allow_unused=True, materialize_grads=True
    )
    return torch.cat([g.reshape(-1) for g in grads])


def _add_to_grads(params: Sequence[nn.Parameter], flat: Tensor) -> None:
    """Add a flat vector into the params' ``.grad`` (adding keeps gradient accumulation).

    A param still without ``.grad`` after the backward was reached by no loss, so its part of
    ``flat`` is zero; leaving it ``None`` keeps optimizers skipping it as they would anyway.
    """
    offset = 0
    for p in params:
        chunk = flat[offset : offset + p.numel()].view_as(p)
        offset += p.numel()
        if p.grad is not None:
            p.grad.add_(chunk)


def _mean_over_processes(values: Tensor) -> Tensor:
    """The mean of ``values`` over the processes of a DDP run (themselves in one process)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return values
    total = values.clone()
    torch.distributed.all_reduce(total)
    return total / torch.distributed.get_world_size()


# ----------------------------------------------------------------------------- strategies


class WeightingStrategy(nn.Module, ABC):
    """Combine named losses into gradients; see the module docstring for the call protocol.

    ``names`` are every loss name the model can produce, known at construction so learnable
    weights can be created up front; ``balanced`` are those this strategy re-weights.
    """

    # True: backward() takes one gradient per task on the shared parameters, which DDP does
    # not synchronise between processes
    per_task_gradients: bool = False
    # True: backward() is the plain sum of the losses, the model's own loss, which the trainer
    # backpropagates itself with no strategy (no weights logged, nothing in the checkpoint)
    plain_sum: bool = False

    def __init__(self, config: WeightingConfig, names: Sequence[str]) -> None:
        super().__init__()
        if len(set(names)) != len(names):
            raise ValueError(f"loss names must be unique, got {list(names)}")
        self.config = config
        self.names = tuple(names)
        self.balanced = tuple(n for n in self.names if self.is_balanced(n))
        self._index = {n: i for i, n in enumerate(self.balanced)}

    def is_balanced(self, name: str) -> bool:
        """Whether the loss ``name`` is re-weighted (else it is added with weight 1)."""
        return self.config.scope == "all" or name.startswith(TASK_PREFIX)

    def balanced_in(self, losses: Losses) -> list[str]:
        """The balanced names present in this step's ``losses``, in their order."""
        return [n for n in losses if self.is_balanced(n)]

    def index_of(self, name: str) -> int:
        """Position of a balanced name in learnable weight vectors."""
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(
                f"loss '{name}' is balanced but was not among the names given to "
                f"build_weighting {list(self.names)}; pass every loss name the model returns"
            ) from None

    @abstractmethod
    def backward(self, losses: Losses, shared: Sequence[nn.Parameter]) -> dict[str, float]:
        """Fill ``.grad`` from ``losses``; return the weight applied to each loss."""

    def after_step(self) -> None:
        """Update the strategy's own state after ``optimizer.step()`` (no-op by default)."""

    def end_epoch(self, mean_losses: Mapping[str, float]) -> None:
        """Receive the epoch's mean (statically weighted) losses (no-op by default)."""


class Fixed(WeightingStrategy):
    """The plain sum: one backward, exactly ``sum(losses.values()).backward()``."""

    plain_sum = True

    def backward(self, losses: Losses, shared: Sequence[nn.Parameter]) -> dict[str, float]:
        plain_sum(losses).backward()
        return dict.fromkeys(losses, 1.0)


class Uncertainty(WeightingStrategy):
    """Homoscedastic uncertainty weighting (Kendall, Gal & Cipolla 2018).

    Total ``Σ_i exp(-s_i) L_i + s_i`` with a learnable log-variance ``s_i`` per balanced loss,
    optimum ``s_i = log L_i``. This is the common simplified form, one for every task kind.
    The paper's regression form ``½ exp(-s) L + ½ s`` has the same optimum at half the
    gradient; its classification form ``exp(-s) L + ½ s`` moves the optimum to ``log 2L``.
    Neither factor is worth a per-kind switch: the losses here already carry static weights.

    Under DDP the log-variances are not part of the wrapped model, so DDP does not average
    their gradient: this strategy averages it over the processes itself (one all-reduce of K
    numbers), so every process takes the same step and keeps the same weights.
    """

    def __init__(self, config: WeightingConfig, names: Sequence[str]) -> None:
        super().__init__(config, names)
        init = torch.full((len(self.balanced),), float(config.uncertainty_init))
        self.log_vars = nn.Parameter(init)  # (K,), in balanced order

    def backward(self, losses: Losses, shared: Sequence[nn.Parameter]) -> dict[str, float]:
        precision = torch.exp(-self.log_vars)  # (K,)
        terms = []
        for name, loss in losses.items():
            if self.is_balanced(name):
                i = self.index_of(name)
                loss = precision[i] * loss + self.log_vars[i]
            terms.append(loss)
        functools.reduce(operator.add, terms).backward()
        if self.log_vars.grad is not None:
            self.log_vars.grad.copy_(_mean_over_processes(self.log_vars.grad))
        values = precision.detach().tolist()  # one sync for all weights
        return {n: values[self.index_of(n)] if self.is_balanced(n) else 1.0 for n in losses}


class DWA(WeightingStrategy):
    """Dynamic Weight Averaging (Liu, Johns & Davison 2019).

    Weights are fixed within an epoch and computed by :func:`dwa_weights` from the previous
    two epochs' mean losses; they are 1 during the first two epochs. Balanced names missing
    from either epoch's means keep weight 1.
    """

    def __init__(self, config: WeightingConfig, names: Sequence[str]) -> None:
        super().__init__(config, names)
        self._history: list[dict[str, float]] = []  # the last two epochs' balanced means
        self._weights: dict[str, float] = {}

    def end_epoch(self, mean_losses: Mapping[str, float]) -> None:
        means = {n: float(v) for n, v in mean_losses.items() if self.is_balanced(n)}
        self._history = [*self._history, means][-2:]
        self._refresh()

    def _refresh(self) -> None:
        if len(self._history) < 2:
            self._weights = {}
            return
        prev2, prev = self._history
        common = {n: v for n, v in prev.items() if n in prev2}
        self._weights = dwa_weights(common, prev2, self.config.dwa_temperature)

    def backward(self, losses: Losses, shared: Sequence[nn.Parameter]) -> dict[str, float]:
        weighted_sum(losses, self._weights).backward()
        return {n: self._weights.get(n, 1.0) for n in losses}

    def get_extra_state(self) -> Any:
        return {"history": self._history}

    def set_extra_state(self, state: Any) -> None:
        self._history = [dict(h) for h in state["history"]]
        self._refresh()


def _last_layer_weight(shared: Iterable[nn.Parameter]) -> nn.Parameter:
    """The last shared matrix (skipping a trailing bias), else the last shared tensor."""
    params = _trainable(shared)
    if not params:
        raise ValueError("GradNorm needs at least one trainable shared parameter")
    matrices = [p for p in params if p.dim() >= 2]
    return (matrices or params)[-1]


class GradNorm(WeightingStrategy):
    """GradNorm (Chen et al. 2018): learn weights that equalise per-task gradient norms.

    ``G_i = ||∇_W (w_i L_i)||`` on ``W``, the last shared layer's weight: the last tensor in
    ``shared`` with two or more dims, so passing ``model.parameters()``-style lists, where a
    bias comes last, still picks the layer's weight. With ``r_i = (L_i / L_i(0)) / mean_j(·)``
    the GradNorm loss ``Σ_i |G_i - mean(G) · r_i^α|`` (target detached) updates ``w`` with
    its own Adam in :meth:`after_step`, then ``w`` is clipped positive and rescaled to sum to
    K. The main backward uses ``Σ_i w_i L_i`` with ``w`` as constants.

    ``w`` is an ``nn.Parameter`` (it moves with ``.to()`` and is saved in ``state_dict``) but
    its ``.grad`` is only set inside :meth:`after_step`, so a trainer optimizer that also
    holds it skips it.
    """

    per_task_gradients = True

    def __init__(self, config: WeightingConfig, names: Sequence[str]) -> None:
        super().__init__(config, names)
        k = len(self.balanced)
        self.task_weights = nn.Parameter(torch.ones(k))  # (K,), in balanced order
        # L_i(0): NaN until loss i is first seen (a task may have no labels in step 0).
        self.register_buffer("initial_losses", torch.full((k,), math.nan))
        self._optimizer = torch.optim.Adam([self.task_weights], lr=config.gradnorm_lr)
        self._pending: Tensor | None = None  # GradNorm-loss gradient awaiting after_step

    def backward(self, losses: Losses, shared: Sequence[nn.Parameter]) -> dict[str, float]:
        names = self.balanced_in(losses)
        idx = [self.index_of(n) for n in names]
        values = self.task_weights.detach().tolist()
        weights = {n: values[i] for n, i in zip(names, idx, strict=True)}
        if len(names) >= 2:
            self._accumulate(losses, names, idx, _last_layer_weight(shared))
        weighted_sum(losses, weights).backward()
        return {n: weights.get(n, 1.0) for n in losses}

    def _accumulate(
        self, losses: Losses, names: list[str], idx: list[int], weight: nn.Parameter
    ) -> None:
        """Compute the GradNorm-loss gradient w.r.t. ``w`` (before the graph is freed)."""
        current = torch.stack([losses[n].detach() for n in names])  # (k,)
        current = current.to(self.initial_losses.dtype)
        initial = self.initial_losses[idx]
        initial = torch.where(initial.isnan(), current, initial)  # no host sync, unlike `if`
        self.initial_losses[idx] = initial
        norms = torch.stack([_flat_grad(losses[n], [weight]).norm() for n in names])  # (k,)
        ratios = current / initial.clamp_min(1e-12)
        loss = gradnorm_loss(self.task_weights[idx], norms, ratios, self.config.gradnorm_alpha)
        (grad,) = torch.autograd.grad(loss, self.task_weights)
        self._pending = grad if self._pending is None else self._pending + grad

    def after_step(self) -> None:
        """Step ``w`` on the GradNorm-loss gradient summed over ``backward`` calls since."""
        if self._pending is None:
            return
        self.task_weights.grad, self._pending = self._pending, None
        self._optimizer.step()
        self.task_weights.grad = None  # keep the trainer's optimizer off w
        with torch.no_grad():
            w = self.task_weights.clamp_(min=1e-3)  # positive weights, as the paper intends
            w.mul_(len(w) / w.sum())

    def get_extra_state(self) -> Any:
        # deepcopy: a state_dict holds the live Adam moments, and a copy must not alias them.
        return {"optimizer": copy.deepcopy(self._optimizer.state_dict())}

    def set_extra_state(self, state: Any) -> None:
        self._optimizer.load_state_dict(state["optimizer"])


class PCGrad(WeightingStrategy):
    """Projecting Conflicting Gradients (Yu et al. 2020) on the shared parameters.

    K gradient passes on the shared parameters plus one backward of the plain sum (K+1 in
    all). Non-shared parameters keep the plain sum's gradient; the shared ones get
    ``Σ_i PC(g_i)`` (the paper's sum reduction) plus the unbalanced losses' gradient. The
    returned weights are nominal 1s: projections are not scalar weights.
    """

    per_task_gradients = True

    def __init__(self, config: WeightingConfig, names: Sequence[str]) -> None:
        super().__init__(config, names)
        # Without an explicit seed, the run's global seed decides (read, not drawn from, so
        # building the strategy leaves the global random stream untouched).
        seed = torch.initial_seed() if config.pcgrad_seed is None else config.pcgrad_seed
        self.generator = torch.Generator().manual_seed(seed)

    def backward(self, losses: Losses, shared: Sequence[nn.Parameter]) -> dict[str, float]:
        names, params = self.balanced_in(losses), _trainable(shared)
        if len(names) < 2 or not params:
            plain_sum(losses).backward()
            return dict.fromkeys(losses, 1.0)
        grads = [_flat_grad(losses[n], params) for n in names]  # K passes
        projected = project_conflicting(grads, self.generator)
        plain_sum(losses).backward()
        # Shared .grad now holds Σ g_i + (unbalanced part); swap Σ g_i for Σ PC(g_i).
        _add_to_grads(params, torch.stack(projected).sum(0) - torch.stack(grads).sum(0))
        return dict.fromkeys(losses, 1.0)

    def get_extra_state(self) -> Any:
        return {"generator": self.generator.get_state()}

    def set_extra_state(self, state: Any) -> None:
        self.generator.set_state(state["generator"])


class MGDA(WeightingStrategy):
    """Multiple-gradient descent (Sener & Koltun 2018), without the MGDA-UB bound.

    Per-loss gradients on the shared parameters (K passes) give min-norm simplex weights
    ``α`` (:func:`min_norm_weights`); one weighted-sum backward follows. Weights are
    ``K · α`` rather than the paper's ``α``, so they average 1 like ``fixed`` and the
    unbalanced terms (weight 1 under ``scope="tasks"``) keep their relative scale. No
    gradient normalisation is applied before solving.
    """

    per_task_gradients = True

    def backward(self, losses: Losses, shared: Sequence[nn.Parameter]) -> dict[str, float]:
        names, params = self.balanced_in(losses), _trainable(shared)
        weights: dict[str, float] = {}
        if len(names) >= 2 and params:
            grads = [_flat_grad(losses[n], params) for n in names]  # K passes
            alpha = min_norm_weights(grads, self.config.mgda_iters)
            weights = {n: len(names) * a for n, a in zip(names, alpha.tolist(), strict=True)}
        weighted_sum(losses, weights).backward()
        return {n: weights.get(n, 1.0) for n in losses}


class FAMO(WeightingStrategy):
    """Fast Adaptive Multitask Optimization (Liu et al., NeurIPS 2023).

    Each balanced loss gets the weight :func:`famo_weights` from task logits ``ξ`` (zero at
    the start: equal weights), i.e. the gradient of ``Σ_i c · z_i · log l_i``, so a loss's
    scale no longer decides its share: the log-losses fall at rates that ``ξ`` keeps
    balanced. One backward per step (O(1) in the number of tasks). Between steps ``ξ`` takes
    one Adam step (learning rate ``famo_lr``, weight decay ``famo_decay``, as the reference
    code) on :func:`famo_logit_gradient` of the fall of each log-loss.

    The reference code measures that fall on the same batch, re-evaluated after the model's
    step; a strategy here never runs the model, so the fall is measured from the previous
    step's losses to this step's (a new batch): the update comes one step later and carries
    the batch-to-batch noise of the losses, which Adam's moments average out.

    Under DDP each process sees its own batch: the losses are averaged over the processes
    first (one all-reduce of K numbers), so every process keeps the same logits and weights.

    The log needs positive losses: the offset ``m_i`` (the paper's lower bound on a loss) is
    0, which holds for cross-entropies, MSE, reconstruction and KL terms. A loss that is not
    above it this step (a task with no label in the batch, whose masked loss is 0, or a
    Gaussian NLL below 0) gets weight 0 and leaves ``ξ`` as it is for that step.
    """

    def __init__(self, config: WeightingConfig, names: Sequence[str]) -> None:
        super().__init__(config, names)
        k = len(self.balanced)
        self.logits = nn.Parameter(torch.zeros(k))  # (K,) ξ, in balanced order
        # log(l_i - m_i + ε) at the previous step; NaN where loss i was absent or not positive
        self.register_buffer("previous_log_losses", torch.full((k,), math.nan))
        self._optimizer = torch.optim.Adam(
            [self.logits], lr=config.famo_lr, weight_decay=config.famo_decay
        )

    def backward(self, losses: Losses, shared: Sequence[nn.Parameter]) -> dict[str, float]:
        names = self.balanced_in(losses)
        idx = [self.index_of(n) for n in names]
        detached = torch.stack([losses[n].detach() for n in names]) if names else None
        values = [] if detached is None else _mean_over_processes(detached).tolist()
        valid = [v > 0.0 for v in values]
        current = torch.full_like(self.previous_log_losses, math.nan)
        for i, v, ok in zip(idx, values, valid, strict=True):
            if ok:
                current[i] = math.log(v + FAMO_EPS)
        self._update_logits(current)
        self.previous_log_losses.copy_(current)
        weights = dict.fromkeys(names, 0.0)
        live = [(n, i, v) for n, i, v, ok in zip(names, idx, values, valid, strict=True) if ok]
        if live:
            sub = self.logits.detach()[[i for _, i, _ in live]]
            w = famo_weights(sub, sub.new_tensor([v for *_, v in live]))
            weights.update({n: float(x) for (n, _, _), x in zip(live, w.tolist(), strict=True)})
        weighted_sum(losses, weights).backward()
        return {n: weights.get(n, 1.0) for n in losses}

    def _update_logits(self, current: Tensor) -> None:
        """One Adam step of ``ξ`` on the fall of every log-loss since the previous step
        (none when some balanced loss is missing at either step)."""
        decrease = self.previous_log_losses - current  # (K,)
        if bool(decrease.isnan().any()):
            return
        self.logits.grad = famo_logit_gradient(self.logits.detach(), decrease)
        self._optimizer.step()
        self.logits.grad = None  # keep the trainer's optimizer off ξ

    def get_extra_state(self) -> Any:
        return {"optimizer": copy.deepcopy(self._optimizer.state_dict())}

    def set_extra_state(self, state: Any) -> None:
        self._optimizer.load_state_dict(state["optimizer"])


STRATEGIES: dict[str, type[WeightingStrategy]] = {
    "fixed": Fixed,
    "uncertainty": Uncertainty,
    "dwa": DWA,
    "gradnorm": GradNorm,
    "pcgrad": PCGrad,
    "mgda": MGDA,
    "famo": FAMO,
}


# The config follows the registry: the strategy names it accepts are the registered ones.
class WeightingConfig(StrictModel):
    """How loss terms are weighted against each other during training."""

    strategy: Literal[tuple(STRATEGIES)] = Field(  # type: ignore[valid-type]  # registered names
        "fixed", description="fixed: the static weights; uncertainty: learned log-variances "
        "(Kendall et al. 2018); dwa: dynamic weight average (Liu et al. 2019); gradnorm: "
        "equalised gradient norms (Chen et al. 2018); pcgrad: projected conflicting gradients "
        "(Yu et al. 2020); mgda: min-norm gradient weights (Sener & Koltun 2018); famo: fast "
        "adaptive multitask optimization, log-loss weights that balance the rates at which "
        "the losses fall (Liu et al. 2023)"
    )
    scope: Literal["tasks", "all"] = Field(
        "tasks", description="balance only 'task/*' losses, or every loss term"
    )
    dwa_temperature: float = Field(2.0, gt=0, description="DWA softmax temperature T")
    gradnorm_alpha: float = Field(1.5, ge=0, description="GradNorm restoring-force strength")
    gradnorm_lr: float = Field(0.025, gt=0, description="learning rate of GradNorm's weights")
    uncertainty_init: float = Field(0.0, description="initial log-variance s_i (weight e^-s)")
    mgda_iters: int = Field(250, ge=1, description="Frank-Wolfe iterations for MGDA")
    pcgrad_seed: int | None = Field(
        None, description="seed of PCGrad's projection order (default: torch.initial_seed())"
    )
    # FAMO's settings are left out of config.yaml at their defaults (exclude_if), so adding
    # them left the run id of every earlier config unchanged.
    famo_lr: float = Field(
        FAMO_LR, gt=0, exclude_if=lambda v: v == FAMO_LR,
        description="learning rate beta of FAMO's task logits (their own Adam; the paper's 0.025)",
    )
    famo_decay: float = Field(
        FAMO_DECAY, ge=0, exclude_if=lambda v: v == FAMO_DECAY,
        description="weight decay gamma of FAMO's task logits (the reference example's 0.01)",
    )


def build_weighting(config: WeightingConfig, names: Sequence[str]) -> WeightingStrategy:
    """Build the strategy ``config.strategy`` for the loss ``names`` a model returns."""
    if config.strategy not in STRATEGIES:
        raise unknown_name("weighting strategy", config.strategy, STRATEGIES)
    return STRATEGIES[config.strategy](config, names)


def training_weighting(config: WeightingConfig, names: Sequence[str]) -> WeightingStrategy | None:
    """The strategy a trainer runs for ``config``: None for one that is the plain sum
    (``fixed``), which the trainer's own backward of the model's loss already is."""
    if STRATEGIES.get(config.strategy, WeightingStrategy).plain_sum:
        return None
    return build_weighting(config, names)
