"""Per-task losses with label masks, and the z-scoring of regression targets.

What a loss is for each task kind (cross-entropy, BCE, MSE, Gaussian NLL) lives in the kind's
object (:mod:`mtvae.data.task_kinds`). Samples whose label is missing (``mask`` False)
contribute nothing: their per-sample loss is multiplied by zero and the mean is taken over
labelled samples only, so neither the value nor the gradient depends on them.
"""

from __future__ import annotations

import torch
from torch import nn

from mtvae.data.tasks import TaskSpec

# Loss names of the terms that read labels: a task head's loss (``task/<task>``) and an
# inhibition adversary's (``adv/<task>``). What a model's loss holds besides them is its
# generative objective (``Output.generative_loss``), the part the validation split measures on
# every sample; weighting strategies with ``scope: tasks`` balance the task terms.
TASK_PREFIX = "task/"
ADVERSARY_PREFIX = "adv/"


def is_label_term(name: str) -> bool:
    """Whether the loss ``name`` reads labels (a task or an adversary term)."""
    return name.startswith((TASK_PREFIX, ADVERSARY_PREFIX))


def masked_task_loss(
    task: TaskSpec, output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Mean loss over the labelled samples (0 when none is labelled in the batch)."""
    target = _fill_missing(target, mask)
    losses = task.task_kind.per_sample_loss(output, target)
    weight = mask.to(losses.dtype)
    return (losses * weight).sum() / weight.sum().clamp(min=1.0)


def _fill_missing(target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    # Missing labels may hold anything (-1, NaN); replace them with a valid value so the loss
    # stays finite. Their contribution is multiplied by zero afterwards.
    fill = torch.zeros((), dtype=target.dtype, device=target.device)
    shape = (-1,) + (1,) * (target.dim() - 1)
    return torch.where(mask.view(shape), target, fill)


class TargetScaling(nn.Module):
    """Z-scoring of regression targets: heads learn ``(y - mean) / std``, users see ``y``.

    A regression target in its natural units (a length of 4-10 px, a price in thousands) puts
    a head's Gaussian NLL or MSE on an arbitrary scale, so one task can dwarf the others and a
    head initialised near 0 starts far from the targets. Standardising with the training
    split's labelled statistics fixes both. The statistics are buffers, so they are saved with
    the weights; predictions are mapped back, so every metric is in the user's units.
    """

    def __init__(self, tasks: dict[str, TaskSpec], stats: dict[str, tuple[float, float]]):
        super().__init__()
        self.names = [t for t, spec in tasks.items() if spec.task_kind.continuous]
        for name in self.names:
            mean, std = stats.get(name, (0.0, 1.0))
            self.register_buffer(f"mean_{name}", torch.tensor(float(mean)))
            self.register_buffer(f"std_{name}", torch.tensor(float(std)))

    def _stats(self, task: str) -> tuple[torch.Tensor, torch.Tensor]:
        return getattr(self, f"mean_{task}"), getattr(self, f"std_{task}")

    def standardize(self, targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Targets in head units: regression tasks z-scored, the others unchanged."""
        out = dict(targets)
        for task in self.names:
            if task in out:
                mean, std = self._stats(task)
                out[task] = (out[task] - mean) / std
        return out

    def standardize_value(self, task: str, value: float) -> float:
        """One label in head units (e.g. a regression value to condition on)."""
        if task not in self.names:
            return value
        mean, std = self._stats(task)
        return float((value - mean) / std)

    def unstandardize(self, task: str, prediction: torch.Tensor) -> torch.Tensor:
        """A head's point prediction back in the user's units."""
        if task not in self.names:
            return prediction
        mean, std = self._stats(task)
        return prediction * std + mean


def task_loss_terms(
    tasks: dict[str, TaskSpec],
    outputs: dict[str, torch.Tensor],
    targets: dict[str, torch.Tensor],
    masks: dict[str, torch.Tensor],
    weights: dict[str, float],
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Weighted ``task/<t>`` losses and their unweighted values, for heads' ``outputs``.

    ``targets`` are in head units (see :class:`TargetScaling`); ``weights`` holds each task's
    effective weight.
    """
    losses, terms = {}, {}
    for task, out in outputs.items():
        loss = masked_task_loss(tasks[task], out, targets[task], masks[task])
        losses[f"{TASK_PREFIX}{task}"] = weights[task] * loss
        terms[f"{TASK_PREFIX}{task}"] = loss.detach()
    return losses, terms
