"""Turning image arrays into a :class:`Dataset`: scaling, padding, seeded splits.

Shared by the real-data sources (``fashion-mnist``, ``mnist``, ``digits``, ``npz``).
"""

from __future__ import annotations

import numpy as np
import torch

from mtvae.data.byte_images import ByteImages, take_rows
from mtvae.data.dataset import Dataset, Split
from mtvae.data.tasks import TaskSpec
from mtvae.errors import UserError


def split_rng(seed: int, stream: int) -> np.random.Generator:
    """The generator of one seeded stream (``stream`` tells splits and uses apart)."""
    return np.random.default_rng(np.random.SeedSequence([seed, 7411, stream]))


def holdout_parts(n: int, n_val: int, n_test: int, seed: int) -> dict[str, np.ndarray]:
    """Seeded ``test`` / ``val`` / ``train`` indices over ``n`` pooled samples (no overlap)."""
    order = split_rng(seed, 0).permutation(n)
    return {
        "train": order[n_val + n_test :],
        "val": order[n_test : n_test + n_val],
        "test": order[:n_test],
    }


def train_val_parts(n_train_pool: int, n_test: int, n_val: int, seed: int) -> dict[str, np.ndarray]:
    """Seeded parts when the source has its own test set: val is cut from the training pool.

    Indices of ``train`` and ``val`` point into the training pool, those of ``test`` into the
    test set (in a seeded order, so a prefix of it is a random subset).
    """
    order = split_rng(seed, 0).permutation(n_train_pool)
    return {
        "train": order[n_val:],
        "val": order[:n_val],
        "test": split_rng(seed, 1).permutation(n_test),
    }


def pad_amounts(native: int, side: int, source: str) -> tuple[int, int]:
    """Zero padding ``(before, after)`` that centres a ``native`` side in ``side``."""
    if side < native:
        raise UserError(
            f"data.image_size={side} is smaller than the {native}x{native} images of "
            f"'{source}'; use {native} (native) or a larger size (zero-padded, e.g. 32 for "
            "the default conv body)."
        )
    before = (side - native) // 2
    return before, side - native - before


def to_tensor_images(images: np.ndarray, side: int, source: str) -> torch.Tensor:
    """``(N, H, W)`` uint8 (0..255) or float in ``[0, 1]`` -> ``(N, 1, side, side)`` float32.

    Square images smaller than ``side`` are zero-padded around the centre (the background of
    these datasets is 0), so shapes and strokes keep their size in pixels.
    """
    x = torch.from_numpy(np.ascontiguousarray(images))
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    before, after = pad_amounts(x.shape[-1], side, source)
    if before or after:
        x = torch.nn.functional.pad(x, (before, after, before, after))
    return x.unsqueeze(1)


def build_dataset(
    name: str,
    pools: dict[str, tuple[torch.Tensor, dict[str, np.ndarray]]],
    parts: dict[str, tuple[str, np.ndarray]],
    tasks: dict[str, TaskSpec],
    description: str,
) -> Dataset:
    """A dataset whose splits index into ``pools``.

    ``pools`` maps a pool name to ``(x (N, C, H, W) or ByteImages, {task: (N,) targets})``; ``parts`` maps
    train/val/test to ``(pool name, indices)``.
    """
    splits = {}
    for split, (pool, index) in parts.items():
        x, targets = pools[pool]
        idx = torch.from_numpy(np.asarray(index, dtype=np.int64))
        splits[split] = Split(
            x=take_rows(x, idx) if isinstance(x, ByteImages) else x[idx].contiguous(),
            targets={t: _as_target(tasks[t], v)[idx] for t, v in targets.items()},
        )
    return Dataset(name=name, **splits, tasks=tasks, description=description)


def _as_target(spec: TaskSpec, values: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(values, dtype=spec.task_kind.target_dtype))


def measured_tasks(
    values: dict[str, np.ndarray], reference: np.ndarray, units: dict[str, str]
) -> tuple[dict[str, np.ndarray], dict[str, TaskSpec]]:
    """Regression tasks from measurements, z-scored with the mean/std over ``reference`` rows.

    The statistics come from the source's whole training pool, so the targets do not change
    with ``data.n_train``; each task's description records them.
    """
    from mtvae.data.morphometrics import standardize

    targets, specs = {}, {}
    for name, v in values.items():
        targets[name], mean, std = standardize(v, v[reference])
        specs[name] = TaskSpec(
            name, "regression",
            description=f"{units[name]}, z-scored: (value - {mean:.4g}) / {std:.4g}",
        )
    return targets, specs
