"""A loader over in-memory tensors: shuffle indices, slice tensors, no per-item collation."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from mtvae.data.dataset import Split


@dataclass
class Batch:
    """A mini-batch: images ``x`` ``(B, C, H, W)``, per-task ``targets`` and label ``masks``."""

    x: torch.Tensor
    targets: dict[str, torch.Tensor]
    masks: dict[str, torch.Tensor]

    def to(self, device: torch.device | str) -> Batch:
        """Move every tensor to ``device`` (a no-op when already there)."""
        return Batch(
            x=self.x.to(device, non_blocking=True),
            targets={k: v.to(device, non_blocking=True) for k, v in self.targets.items()},
            masks={k: v.to(device, non_blocking=True) for k, v in self.masks.items()},
        )


class InMemoryLoader:
    """Iterate over a :class:`Split` in mini-batches.

    With ``shuffle`` a permutation is drawn from ``generator`` at the start of every epoch, so
    the order is reproducible from the generator's state (which checkpoints save).
    """

    def __init__(
        self,
        split: Split,
        batch_size: int,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.split = split
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator
        self.drop_last = drop_last

    def __len__(self) -> int:
        n, b = len(self.split), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self) -> Iterator[Batch]:
        n = len(self.split)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else None
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            stop = min(start + self.batch_size, n)
            if order is None:  # contiguous slices are views: no copy at all
                index: torch.Tensor | slice = slice(start, stop)
            else:
                index = order[start:stop]
            yield Batch(
                x=self.split.x[index],
                targets={k: v[index] for k, v in self.split.targets.items()},
                masks={k: v[index] for k, v in self.split.masks.items()},
            )
