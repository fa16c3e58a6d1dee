"""Task specifications: what a label is and how a head should predict it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from mtvae.data.task_kinds import KindName, TaskKind, task_kind


@dataclass(frozen=True)
class TaskSpec:
    """One supervised task a dataset provides.

    ``categorical`` targets are class indices (int64) in ``[0, n_classes)``; ``binary`` targets
    are 0/1 floats; ``multilabel`` targets are 0/1 float vectors of length ``n_classes``;
    ``regression`` targets are float32 scalars. What depends on the kind lives in its
    :mod:`~mtvae.data.task_kinds` object, :attr:`task_kind`.
    """

    name: str
    kind: KindName
    n_classes: int | None = None
    description: str = ""
    control: bool = False  # labels independent of the image (data.extra_tasks: random)

    @cached_property
    def task_kind(self) -> TaskKind:
        """The kind's behaviour: head size, loss, predictions, probabilities, value count."""
        return task_kind(self.kind, self.n_classes)

    @property
    def discrete(self) -> bool:
        """Categorical or binary: the label is one of :attr:`n_values` classes."""
        return self.task_kind.discrete

    @property
    def n_values(self) -> int | None:
        """How many values a discrete label takes (``n_classes``; 2 for binary); None for
        multilabel and regression tasks."""
        return self.task_kind.n_values

    def __post_init__(self) -> None:
        kind = task_kind(self.kind, self.n_classes)  # an unknown kind fails here
        if kind.needs_classes and (self.n_classes is None or self.n_classes < 2):
            raise ValueError(f"task '{self.name}' of kind {self.kind} needs n_classes >= 2")
