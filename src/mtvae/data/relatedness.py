"""Task-relatedness controls that work on any dataset: random and composite tasks, nuisance.

``data.extra_tasks`` adds tasks with a small syntax, each optionally named ``NAME=...``:

* ``random`` / ``random:K``: a categorical task whose labels (K classes, default 2) are drawn
  uniformly at random, independent of the image: a control where no representation of the
  image can help, so multitask learning cannot either. Default name ``random``.
* ``composite:A+B[+C...]``: a function of several tasks or ground-truth factors. Each part is
  a task or factor name, optionally binarised with a threshold, ``x>0.5`` (1 above, else 0).
  When every part is a regression task without a threshold, the composite is the regression
  on their mean; otherwise every part must be discrete (a categorical or binary task, a
  factor, or a thresholded part) and the composite is their joint class, in mixed radix with
  the first part most significant (``shape+x>0.5`` -> ``2 * shape + (x > 0.5)``, 6 classes).
  Default name ``composite``.

``data.nuisance: true`` (datasets with ground-truth factors, e.g. ``shapes``) adds a factor that
changes the image but belongs to no task: ``brightness``, 4 levels that scale the image's
intensity by :data:`BRIGHTNESS`. It is appended to the factors (so disentanglement metrics see
it) and never becomes a task.

Labels and levels come from seeded streams per split, drawn in row order, so a smaller training
set gets the same values for the rows it keeps.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

import numpy as np
import torch

from mtvae.data.dataset import SPLITS, Dataset, Split
from mtvae.data.tasks import TaskSpec
from mtvae.errors import UserError, did_you_mean

BRIGHTNESS = (0.4, 0.6, 0.8, 1.0)
MAX_JOINT_CLASSES = 1000
_NAME = r"[A-Za-z_][A-Za-z0-9_.\-]*"
_SPEC = re.compile(rf"(?:(?P<name>{_NAME})=)?(?P<body>.+)")
_RANDOM = re.compile(r"random(?::(?P<k>\d+))?")
_PART = re.compile(rf"(?P<name>{_NAME})(?:>(?P<thr>-?\d+(?:\.\d*)?(?:[eE]-?\d+)?))?")


@dataclass(frozen=True)
class ExtraTask:
    """A parsed ``data.extra_tasks`` entry."""

    name: str
    kind: str  # a key of ADDERS: how the task's labels are made
    n_classes: int = 2
    parts: tuple[tuple[str, float | None], ...] = ()
    spec: str = ""  # the entry as written, for error messages


def parse_extra_task(spec: str) -> ExtraTask:
    """Parse one entry; a ValueError says what the syntax is."""
    match = _SPEC.fullmatch(spec.strip())
    body = match["body"] if match else ""
    if (m := _RANDOM.fullmatch(body)) is not None:
        k = int(m["k"] or 2)
        if not 2 <= k <= MAX_JOINT_CLASSES:
            raise ValueError(f"'{spec}': a random task needs 2 to {MAX_JOINT_CLASSES} classes")
        return ExtraTask(match["name"] or "random", "random", k, spec=spec)
    if body.startswith("composite:"):
        parts = [_PART.fullmatch(p.strip()) for p in body[len("composite:"):].split("+")]
        if len(parts) >= 2 and all(parts):
            return ExtraTask(match["name"] or "composite", "composite",
                             parts=tuple((p["name"], _float(p["thr"])) for p in parts), spec=spec)
    raise ValueError(
        f"bad extra task '{spec}': use random, random:K, composite:A+B (parts are task or factor "
        "names, optionally thresholded like x>0.5), each optionally named NAME=..."
    )


def add_extra_tasks(dataset: Dataset, specs: list[str], seed: int) -> None:
    """Add the tasks ``specs`` describe to every split of ``dataset``, in place."""
    for spec in specs:
        task = parse_extra_task(spec)
        if task.name in dataset.tasks:
            raise UserError(f"data.extra_tasks: '{spec}' would replace the existing task "
                            f"'{task.name}'; give it another name, e.g. my_{task.name}={spec}.")
        ADDERS[task.kind](dataset, task, seed)


def _add_random(dataset: Dataset, task: ExtraTask, seed: int) -> None:
    stream = zlib.crc32(task.name.encode())
    for i, split_name in enumerate(SPLITS):
        split = dataset.split(split_name)
        rng = np.random.default_rng(np.random.SeedSequence([seed, 8803, stream, i]))
        labels = torch.from_numpy(rng.integers(0, task.n_classes, size=len(split)))
        _set_task(split, task.name, labels)
    dataset.tasks[task.name] = TaskSpec(
        task.name, "categorical", task.n_classes,
        f"{task.n_classes} classes drawn uniformly at random, independent of the image (control)",
        control=True,
    )


def _add_composite(dataset: Dataset, task: ExtraTask, seed: int) -> None:
    spec = task.spec
    parts = [_resolve_part(dataset, name, thr, spec) for name, thr in task.parts]
    regression = [size is None for _, size, _ in parts]
    if all(regression):
        for split_name in SPLITS:
            split = dataset.split(split_name)
            values = torch.stack([fn(split) for _, _, fn in parts]).mean(0)
            _set_task(split, task.name, values.float())
        label = " + ".join(d for d, _, _ in parts)
        dataset.tasks[task.name] = TaskSpec(task.name, "regression", description=f"mean of {label}")
        return
    if any(regression):
        names = ", ".join(d for d, size, _ in parts if size is None)
        raise UserError(f"data.extra_tasks '{spec}': the regression part(s) {names} need a "
                        "threshold to join discrete parts, e.g. x>0.5.")
    n_classes = int(np.prod([size for _, size, _ in parts]))
    if n_classes > MAX_JOINT_CLASSES:
        raise UserError(f"data.extra_tasks '{spec}' has {n_classes} joint classes; at most "
                        f"{MAX_JOINT_CLASSES} are allowed (threshold parts, e.g. x>0.5).")
    for split_name in SPLITS:
        split = dataset.split(split_name)
        joint = torch.zeros(len(split), dtype=torch.int64)
        for _, size, fn in parts:
            joint = joint * size + fn(split).long()
        _set_task(split, task.name, joint)
    label = " x ".join(f"{d} ({size})" for d, size, _ in parts)
    dataset.tasks[task.name] = TaskSpec(task.name, "categorical", n_classes,
                                        f"joint class of {label}, first part most significant")


# Each extra-task kind and the function that adds its labels to a dataset (dataset, task, seed).
ADDERS = {"random": _add_random, "composite": _add_composite}


def _resolve_part(dataset: Dataset, name: str, thr: float | None, spec: str):
    """``(description, n_levels or None for regression, split -> values)`` of one part."""
    described = name if thr is None else f"{name}>{thr:g}"
    if name in dataset.tasks:
        kind = dataset.tasks[name].task_kind
        if not kind.scalar:
            raise UserError(f"data.extra_tasks '{spec}': multilabel task '{name}' cannot be a part.")
        if thr is not None:
            return described, 2, lambda s: (s.targets[name].float() > thr).long()
        if kind.continuous:
            return described, None, lambda s: s.targets[name].float()
        size = dataset.tasks[name].n_classes or 2
        return described, size, lambda s: s.targets[name].long()
    if name in dataset.factor_names:
        j = dataset.factor_names.index(name)
        if thr is not None:
            return described, 2, lambda s: (s.factors[:, j].float() > thr).long()
        return described, dataset.factor_sizes[j], lambda s: s.factors[:, j]
    choices = sorted(set(dataset.tasks) | set(dataset.factor_names))
    raise UserError(f"data.extra_tasks '{spec}': '{name}' is neither a task nor a factor of "
                    f"'{dataset.name}'.{did_you_mean(name, choices)} Available: {', '.join(choices)}.")


def add_nuisance(dataset: Dataset, seed: int) -> None:
    """Scale each image's intensity by a random ``brightness`` level, a factor of no task."""
    if not dataset.factor_names:
        raise UserError(
            f"data.nuisance adds a ground-truth factor, but '{dataset.name}' has no factors; "
            "use it with a source that has them (shapes)."
        )
    levels = torch.tensor(BRIGHTNESS, dtype=torch.float32)
    for i, split_name in enumerate(SPLITS):
        split = dataset.split(split_name)
        rng = np.random.default_rng(np.random.SeedSequence([seed, 6007, i]))
        level = torch.from_numpy(rng.integers(0, len(BRIGHTNESS), size=len(split)))
        split.x = split.x * levels[level].view(-1, 1, 1, 1)
        split.factors = torch.cat([split.factors, level.view(-1, 1)], dim=1)
    dataset.factor_names = [*dataset.factor_names, "brightness"]
    dataset.factor_sizes = [*dataset.factor_sizes, len(BRIGHTNESS)]
    dataset.description += (f"; nuisance factor brightness ({len(BRIGHTNESS)} levels "
                            f"{', '.join(map(str, BRIGHTNESS))}, no task)")


def _set_task(split: Split, name: str, values: torch.Tensor) -> None:
    split.targets[name] = values
    split.masks[name] = torch.ones(len(split), dtype=torch.bool)


def _float(text: str | None) -> float | None:
    return None if text is None else float(text)
