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

    ``labelled_per_batch > 0`` appends that many samples drawn from the labelled ones (those
    with at least one label of ``labelled_tasks``, default every task) to every batch. With few labels, a plain batch holds only a
    handful of labelled samples, so task heads see each label once per epoch; oversampling
    lets them see labels as often as a supervised model would (as semi-supervised VAEs do with
    separate labelled batches). The extra samples are also reconstructed like the others.

    ``shard=(rank, world)`` yields only every ``world``-th sample of each global batch, starting
    at ``rank``: with the same generator on every rank, the ranks together see exactly the
    batches a single process would.
    """

    def __init__(
        self,
        split: Split,
        batch_size: int,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
        labelled_per_batch: int = 0,
        shard: tuple[int, int] = (0, 1),
        labelled_tasks: list[str] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.split = split
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator
        self.drop_last = drop_last
        self.labelled_per_batch = labelled_per_batch
        self.labelled = labelled_index(split, labelled_tasks) if labelled_per_batch > 0 else None
        self.rank, self.world = shard  # data parallel: this rank's share of each global batch

    def __len__(self) -> int:
        n, b = len(self.split), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self) -> Iterator[Batch]:
        n = len(self.split)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else None
        extra = self._labelled_stream()
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            stop = min(start + self.batch_size, n)
            if order is None:  # contiguous slices are views: no copy at all
                index: torch.Tensor | slice = slice(start, stop)
            else:
                index = order[start:stop]
            if extra is not None:
                index = torch.cat([torch.arange(n)[index], next(extra)])
            if self.world > 1:
                index = torch.arange(n)[index][self.rank :: self.world]
            yield self._batch(index)

    def _batch(self, index: torch.Tensor | slice) -> Batch:
        return Batch(
            x=self.split.x[index],
            targets={k: v[index] for k, v in self.split.targets.items()},
            masks={k: v[index] for k, v in self.split.masks.items()},
        )

    def _labelled_stream(self) -> Iterator[torch.Tensor] | None:
        """Endless chunks of labelled indices, reshuffled on every pass over them."""
        if self.labelled is None or len(self.labelled) == 0:
            return None

        def chunks() -> Iterator[torch.Tensor]:
            pool, k = self.labelled, self.labelled_per_batch
            while True:
                perm = pool[torch.randperm(len(pool), generator=self.generator)]
                reps = -(-k // len(perm))  # a pool smaller than k repeats within one chunk
                perm = perm.repeat(reps) if reps > 1 else perm
                for start in range(0, len(perm) - k + 1, k):
                    yield perm[start : start + k]

        return chunks()


def labelled_index(split: Split, tasks: list[str] | None = None) -> torch.Tensor:
    """Indices of samples with at least one label of ``tasks`` (None: of any task)."""
    masks = [m for t, m in split.masks.items() if tasks is None or t in tasks]
    if not masks:
        return torch.zeros(0, dtype=torch.long)
    any_label = torch.stack(masks).any(0)
    return torch.nonzero(any_label).flatten()
