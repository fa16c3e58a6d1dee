"""Label policies: which training samples keep which task labels.

Only the training split loses labels; validation and test keep all of them so every model is
scored on the same labelled data. Policies are seeded by ``data.seed`` and recorded in the run's
config (``data.label_fraction``, ``data.label_policy``).

- ``mcar`` (missing completely at random): for each task independently, a random subset of
  exactly ``round(fraction_t * N)`` samples keeps its label.
- ``disjoint``: every sample is labelled for at most one task. A random permutation of the
  training samples is cut into consecutive chunks, one per task, of ``round(fraction_t * N)``
  samples each, so the fractions must add up to at most 1.
"""

from __future__ import annotations

import torch

from mtvae.data.dataset import Split
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
    n: int, fractions: dict[str, float], policy: str, seed: int
) -> dict[str, torch.Tensor]:
    """Boolean keep-masks ``(n,)`` per task under ``policy``."""
    gen = torch.Generator().manual_seed(10_007 * seed + 17)
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


def apply_label_policy(split: Split, fraction, policy: str, seed: int) -> None:
    """Remove training labels from ``split`` in place according to the policy."""
    tasks = sorted(split.targets)
    if not tasks:
        return
    fractions = task_fractions(fraction, tasks)
    if policy == "mcar" and all(f >= 1.0 for f in fractions.values()):
        return
    for task, keep in label_masks(len(split), fractions, policy, seed).items():
        split.masks[task] = split.masks[task] & keep


def _mask_of(n: int, index: torch.Tensor) -> torch.Tensor:
    mask = torch.zeros(n, dtype=torch.bool)
    mask[index] = True
    return mask
