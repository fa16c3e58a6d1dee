"""In-memory datasets: images, per-task targets and label masks, ground-truth factors, splits."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from mtvae.data.byte_images import ByteImages, take_rows
from mtvae.data.tasks import TaskSpec

SPLITS = ("train", "val", "test")  # every dataset's splits, in this order (a file's 0, 1, 2)
OOD = "ood"  # the optional held-out region's split (data.holdout)


@dataclass
class Split:
    """One split held in memory as tensors.

    ``x`` is ``(N, C, H, W)`` float32 in ``[0, 1]``, or :class:`ByteImages` (uint8 images
    decoded from files, which index as such float32); ``targets[task]`` is ``(N,)`` (or
    ``(N, K)`` for multilabel); ``masks[task]`` is ``(N,)`` bool, True where the label is known;
    ``factors`` is ``(N, F)`` int64 factor levels when the generative factors are known.
    """

    x: torch.Tensor | ByteImages
    targets: dict[str, torch.Tensor] = field(default_factory=dict)
    masks: dict[str, torch.Tensor] = field(default_factory=dict)
    factors: torch.Tensor | None = None

    def __post_init__(self) -> None:
        for task in self.masks:
            if task not in self.targets:
                raise ValueError(f"mask for unknown task '{task}'")
        for task, target in self.targets.items():
            if len(target) != len(self.x):
                raise ValueError(f"task '{task}' has {len(target)} targets for {len(self.x)} images")
            self.masks.setdefault(task, torch.ones(len(self.x), dtype=torch.bool))

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, index: torch.Tensor | slice) -> Split:
        """Return the rows selected by ``index`` as a new split (tensors are indexed, not shared)."""
        return Split(
            x=take_rows(self.x, index),
            targets={k: v[index] for k, v in self.targets.items()},
            masks={k: v[index] for k, v in self.masks.items()},
            factors=None if self.factors is None else self.factors[index],
        )


@dataclass(frozen=True)
class DataInfo:
    """What a model needs to know about the data to build itself."""

    image_shape: tuple[int, int, int]  # (C, H, W)
    tasks: dict[str, TaskSpec]
    # (mean, std) of each regression task's labelled training targets; heads learn z-scores.
    # Empty when a model is rebuilt from its weights, which carry the statistics themselves.
    target_stats: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass
class Dataset:
    """A named dataset with fixed train/val/test splits."""

    name: str
    train: Split
    val: Split
    test: Split
    tasks: dict[str, TaskSpec]
    factor_names: list[str] = field(default_factory=list)
    factor_sizes: list[int] = field(default_factory=list)
    description: str = ""
    ood: Split | None = None  # held-out region (data.holdout): never trained on, tested apart

    @property
    def info(self) -> DataInfo:
        """Shape, task information and regression-target statistics for building a model."""
        return DataInfo(
            image_shape=tuple(self.train.x.shape[1:]),
            tasks=dict(self.tasks),
            target_stats=regression_stats(self.tasks, self.train.targets, self.train.masks),
        )

    def split(self, name: str) -> Split:
        """Return the split called ``name`` (train, val, test, or ood when there is one)."""
        if name not in (*SPLITS, OOD) or getattr(self, name) is None:
            raise ValueError(f"unknown split '{name}'")
        return getattr(self, name)


def regression_stats(
    tasks: dict[str, TaskSpec], targets: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]
) -> dict[str, tuple[float, float]]:
    """Mean and standard deviation of each regression task's labelled targets.

    A task with fewer than two labels, or with constant labels, gets std 1 (nothing to scale).
    """
    stats = {}
    for name, spec in tasks.items():
        if not spec.task_kind.continuous or name not in targets:
            continue
        y = targets[name][masks[name]].double() if name in masks else targets[name].double()
        y = y[torch.isfinite(y)]
        mean = float(y.mean()) if len(y) else 0.0
        std = float(y.std()) if len(y) > 1 else 1.0
        stats[name] = (mean, std if math.isfinite(std) and std > 1e-12 else 1.0)
    return stats
