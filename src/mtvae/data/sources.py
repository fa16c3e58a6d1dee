"""Data sources by name: ``shapes`` (built in) and later real datasets and user files."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from mtvae.data.dataset import Dataset
from mtvae.errors import unknown_name


@dataclass(frozen=True)
class SourceEntry:
    """A data source: how to load it and one line describing it."""

    name: str
    load: Callable[..., Dataset]
    description: str


def _load_shapes(cfg) -> Dataset:
    from mtvae.data.shapes import load_shapes

    return load_shapes(
        n_train=cfg.n_train or 20000,
        n_val=cfg.n_val or 2000,
        n_test=cfg.n_test or 2000,
        image_size=cfg.image_size,
        seed=cfg.seed,
    )


SOURCES: dict[str, SourceEntry] = {
    "shapes": SourceEntry(
        "shapes",
        _load_shapes,
        "procedural dSprites-like shapes (32x32 or 64x64); factors shape, scale, orientation, "
        "x, y; tasks shape (3 classes), scale, orientation, x, y (regression); 20000/2000/2000",
    ),
}


def load_dataset(cfg) -> Dataset:
    """Load the dataset a :class:`~mtvae.config.DataConfig` names, with its label fraction applied."""
    name = cfg.source.split(":", 1)[0]
    if name not in SOURCES:
        raise unknown_name("data source", cfg.source, SOURCES)
    dataset = SOURCES[name].load(cfg)
    if cfg.label_fraction < 1.0:
        apply_label_fraction(dataset, cfg.label_fraction, seed=cfg.seed)
    return dataset


def apply_label_fraction(dataset: Dataset, fraction: float, seed: int) -> None:
    """Keep each training label with probability-free exact share ``fraction`` (per task, seeded).

    Labels are missing completely at random: a random ``round(fraction * N)`` subset of the
    training samples keeps its label for each task, drawn independently per task.
    """
    train = dataset.train
    n = len(train)
    for i, task in enumerate(sorted(train.targets)):
        gen = torch.Generator().manual_seed(seed * 1000 + 17 + i)
        keep = torch.zeros(n, dtype=torch.bool)
        keep[torch.randperm(n, generator=gen)[: round(fraction * n)]] = True
        train.masks[task] = train.masks[task] & keep
