"""In-memory datasets: images, per-task targets and label masks, ground-truth factors, splits."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mtvae.data.tasks import TaskSpec


@dataclass
class Split:
    """One split held in memory as tensors.

    ``x`` is ``(N, C, H, W)`` float32 in ``[0, 1]``; ``targets[task]`` is ``(N,)`` (or
    ``(N, K)`` for multilabel); ``masks[task]`` is ``(N,)`` bool, True where the label is known;
    ``factors`` is ``(N, F)`` int64 factor levels when the generative factors are known.
    """

    x: torch.Tensor
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
            x=self.x[index],
            targets={k: v[index] for k, v in self.targets.items()},
            masks={k: v[index] for k, v in self.masks.items()},
            factors=None if self.factors is None else self.factors[index],
        )


@dataclass(frozen=True)
class DataInfo:
    """What a model needs to know about the data to build itself."""

    image_shape: tuple[int, int, int]  # (C, H, W)
    tasks: dict[str, TaskSpec]


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
        """Shape and task information for building a model."""
        return DataInfo(image_shape=tuple(self.train.x.shape[1:]), tasks=dict(self.tasks))

    def split(self, name: str) -> Split:
        """Return the split called ``name`` (train, val, test, or ood when there is one)."""
        if name not in ("train", "val", "test", "ood") or getattr(self, name) is None:
            raise ValueError(f"unknown split '{name}'")
        return getattr(self, name)
