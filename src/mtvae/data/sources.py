"""Data sources by name: ``shapes`` (built in) and later real datasets and user files."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mtvae.data.dataset import Dataset
from mtvae.data.labels import apply_label_policy
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
    """Load the dataset a :class:`~mtvae.config.DataConfig` names, with its label policy applied."""
    name = cfg.source.split(":", 1)[0]
    if name not in SOURCES:
        raise unknown_name("data source", cfg.source, SOURCES)
    dataset = SOURCES[name].load(cfg)
    apply_label_policy(dataset.train, cfg.label_fraction, cfg.label_policy, seed=cfg.seed)
    return dataset
