"""Task specifications: what a label is and how a head should predict it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TaskKind = Literal["categorical", "binary", "multilabel", "regression"]


@dataclass(frozen=True)
class TaskSpec:
    """One supervised task a dataset provides.

    ``categorical`` targets are class indices (int64) in ``[0, n_classes)``; ``binary`` targets
    are 0/1 floats; ``multilabel`` targets are 0/1 float vectors of length ``n_classes``;
    ``regression`` targets are float32 scalars.
    """

    name: str
    kind: TaskKind
    n_classes: int | None = None
    description: str = ""
    control: bool = False  # labels independent of the image (data.extra_tasks: random)

    @property
    def discrete(self) -> bool:
        """Categorical or binary: the label is one of :attr:`n_values` classes."""
        return self.kind in ("categorical", "binary")

    @property
    def n_values(self) -> int | None:
        """How many values a discrete label takes (``n_classes``; 2 for binary); None for
        multilabel and regression tasks."""
        if self.kind == "categorical":
            return self.n_classes
        return 2 if self.kind == "binary" else None

    def __post_init__(self) -> None:
        needs_classes = self.kind in ("categorical", "multilabel")
        if needs_classes and (self.n_classes is None or self.n_classes < 2):
            raise ValueError(f"task '{self.name}' of kind {self.kind} needs n_classes >= 2")
