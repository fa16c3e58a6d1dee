"""Label policies: which training samples keep which task labels.

Only the training split loses labels; validation and test keep all of them so every model is
scored on the same labelled data. Policies are seeded by ``data.seed`` and recorded in the run's
config (``data.label_fraction``, ``data.label_policy``).

- ``mcar`` (missing completely at random): for each task independently, a random subset of
  exactly ``round(fraction_t * N)`` samples keeps its label.
- ``disjoint``: every sample is labelled for at most one task. A random permutation of the
  training samples is cut into consecutive chunks, one per task, of ``round(fraction_t * N)``
  samples each, so the fractions must add up to at most 1.
- ``mnar`` (missing not at random): the chance that a label is missing depends on its value.
  Each sample gets a score ``s`` in ``[0, 1]`` from its label (categorical: ``class / (K - 1)``;
  binary: the label; regression: the label's rank quantile (mid-rank for ties); multilabel: the mean of its
  entries) and exactly ``round(fraction_t * N)`` samples keep their label, drawn without
  replacement with weights ``exp(-strength * s)`` (``data.mnar_strength``). Strength 0 is
  MCAR; a positive strength keeps low labels more often (high classes, large values go
  missing), a negative one the reverse; for small fractions the odds of keeping a label with
  ``s = 0`` over one with ``s = 1`` approach ``exp(strength)``.
"""

from __future__ import annotations

import torch

from mtvae.data.dataset import Split
from mtvae.data.tasks import TaskSpec
from mtvae.errors import UserError, unknown_name


def task_fractions(fraction: float | dict[str, float], tasks: list[str]) -> dict[str, float]:
    """Expand one fraction or a per-task dict (unnamed tasks keep all labels) to every task."""
    if not isinstance(fraction, dict):
        return dict.fromkeys(tasks, float(fraction))
    for name in fraction:
        if name not in tasks:
            raise unknown_name("task in data.label_fraction", name, tasks)
    return {task: float(fraction.get(task, 1.0)) for task in tasks}


def label_masks(
    n: int,
    fractions: dict[str, float],
    policy: str,
    seed: int,
    scores: dict[str, torch.Tensor] | None = None,
    strength: float = 0.0,
) -> dict[str, torch.Tensor]:
    """Boolean keep-masks ``(n,)`` per task under ``policy``.

    ``mnar`` needs ``scores[task]`` ``(n,)`` in ``[0, 1]`` (see :func:`label_scores`).
    """
    gen = torch.Generator().manual_seed(10_007 * seed + 17)
    if policy == "mnar":
        masks = {}
        for task in sorted(fractions):
            # Gumbel top-k: exactly k draws without replacement, weights exp(-strength * s).
            uniform = torch.rand(n, generator=gen, dtype=torch.float64).clamp_min(1e-300)
            keys = -strength * scores[task].double() - torch.log(-torch.log(uniform))
            k = round(fractions[task] * n)
            masks[task] = _mask_of(n, torch.topk(keys, k).indices if k else torch.zeros(0, dtype=torch.long))
        return masks
    if policy == "disjoint":
        total = sum(fractions.values())
        if total > 1.0 + 1e-9:
            raise UserError(
                f"data.label_policy=disjoint labels each sample for at most one task, so the "
                f"label fractions must add up to at most 1 (they add up to {total:.3g})."
            )
        order, start, masks = torch.randperm(n, generator=gen), 0, {}
        for task in sorted(fractions):
            count = round(fractions[task] * n)
            masks[task] = _mask_of(n, order[start : start + count])
            start += count
        return masks
    return {
        task: _mask_of(n, torch.randperm(n, generator=gen)[: round(fractions[task] * n)])
        for task in sorted(fractions)
    }


def label_scores(spec: TaskSpec, targets: torch.Tensor) -> torch.Tensor:
    """The MNAR score ``(N,)`` in ``[0, 1]`` of each label (higher: more often missing)."""
    y = targets.double()
    if spec.kind == "categorical":
        return y / max((spec.n_classes or 2) - 1, 1)
    if spec.kind == "multilabel":
        return y.mean(dim=1)
    if spec.kind == "regression":
        ordered = torch.sort(y).values  # mid-ranks, so equal labels get equal scores
        low = torch.searchsorted(ordered, y, right=False)
        high = torch.searchsorted(ordered, y, right=True)
        return (low + high - 1).double() / 2 / max(len(y) - 1, 1)
    return y  # binary: the label itself


def apply_label_policy(
    split: Split,
    fraction,
    policy: str,
    seed: int,
    tasks: dict[str, TaskSpec] | None = None,
    strength: float = 0.0,
) -> None:
    """Remove training labels from ``split`` in place according to the policy.

    ``mnar`` needs the task specs ``tasks`` to score labels, and its ``strength``.
    """
    names = sorted(split.targets)
    if not names:
        return
    fractions = task_fractions(fraction, names)
    if policy in ("mcar", "mnar") and all(f >= 1.0 for f in fractions.values()):
        return
    scores = None
    if policy == "mnar":
        if tasks is None:
            raise ValueError("the mnar label policy needs the task specs")
        scores = {t: label_scores(tasks[t], split.targets[t]) for t in names}
    for task, keep in label_masks(len(split), fractions, policy, seed, scores, strength).items():
        split.masks[task] = split.masks[task] & keep


def _mask_of(n: int, index: torch.Tensor) -> torch.Tensor:
    mask = torch.zeros(n, dtype=torch.bool)
    mask[index] = True
    return mask
