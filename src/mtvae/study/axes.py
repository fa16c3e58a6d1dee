"""Condition axes as ordered quantities: which are numeric, their order, scale and positions.

An axis is *numeric* when every level is a number, or ``all`` (a label-count axis' "every
label", placed after the largest count). Numeric levels sort numerically whatever order the
spec lists them in; a numeric axis whose levels span more than 10x is drawn and tested on a
log scale, a level 0 (the task weight's) placed one step below the smallest positive level. Every other axis (task sets, weighting strategies) is *categorical*: its levels keep
the spec's order, the default first.
"""

from __future__ import annotations

import json
import math
from typing import Any

ALL = "all"
LOG_SPAN = 10.0  # levels spanning more than this ratio use a log scale

# Named condition axes and the config key each one sets. Any dotted config key
# (``model.task_dim``) is an axis too; ``tasks`` and ``n_tasks`` choose the task list.
AXIS_KEYS: dict[str, str] = {
    "label_fraction": "data.label_fraction",
    "label_count": "data.n_labelled",
    "n_train": "data.n_train",
    "beta": "model.beta",
    "latent_dim": "model.latent_dim",
    "weighting": "model.weighting.strategy",
    "task_weight": "model.task_scale_factor",
    "tasks": "model.tasks",
    "n_tasks": "model.tasks",
}

AXIS_DESCRIPTIONS: dict[str, str] = {
    "label_fraction": "share of training labels kept per task",
    "label_count": "training labels kept per task (a count; all: every label)",
    "n_train": "training-set size",
    "beta": "weight of the KL term",
    "latent_dim": "latent dimensions",
    "weighting": "task-weighting strategy",
    "task_weight": "task weight, as a multiple of model.task_scale (0: no head is trained)",
    "tasks": "task set (relatedness of the tasks learned together)",
    "n_tasks": "number of tasks learned together",
}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_numeric(values: list[Any]) -> bool:
    """Every level a number (or ``all``), with at least one number."""
    return any(_is_number(v) for v in values) and all(_is_number(v) or v == ALL for v in values)


def ordered(values: list[Any]) -> list[Any]:
    """Levels in order: numeric axes ascending (``all`` last), categorical as given."""
    if not is_numeric(values):
        return list(values)
    return sorted(values, key=lambda v: (v == ALL, v if _is_number(v) else 0))


def log_scale(values: list[Any]) -> bool:
    """Whether a numeric axis spans more than :data:`LOG_SPAN`: its positive levels do, or
    span exactly 10x with a level beyond them (``all``, more than the largest count; 0, less
    than the smallest weight). Needs two positive levels and none below 0."""
    numbers = [float(v) for v in values if _is_number(v)]
    positive = [v for v in numbers if v > 0]
    if len(positive) < 2 or min(numbers) < 0:
        return False
    ratio = max(positive) / min(positive)
    beyond = ALL in values or 0 in numbers
    return ratio > LOG_SPAN or (beyond and ratio >= LOG_SPAN)


def positions(values: list[Any], all_at: float | None = None) -> dict[Any, float]:
    """Plot / trend positions of numeric levels: the value (log10 of it on a log scale).
    ``all`` sits at ``all_at``, its real count (every label: the training-set size), when
    known and beyond the largest number; else one step (the mean spacing, at least one decade
    on a log scale) past the largest. On a log scale 0 (a task weight of 0: no head trained)
    sits the same step below the smallest positive level, e.g. at log10 0.01 = −2 for the
    levels 0, 0.1, 0.3, 1, 3, 10."""
    log = log_scale(values)
    numbers = sorted(float(v) for v in values if _is_number(v))
    place = {v: (math.log10(float(v)) if log else float(v)) for v in values
             if _is_number(v) and (v > 0 or not log)}
    xs = sorted(place.values())
    step = (xs[-1] - xs[0]) / (len(xs) - 1) if len(xs) > 1 else 1.0
    if log:  # the zero level(s) one step below the smallest positive one
        place |= {v: xs[0] - max(step, 1.0) for v in values if _is_number(v) and v == 0}
    if ALL in values:
        if all_at is not None and numbers and all_at > numbers[-1]:
            place[ALL] = math.log10(all_at) if log else float(all_at)
            return place
        place[ALL] = xs[-1] + (max(step, 1.0) if log else (step or max(1.0, numbers[-1])))
    return place


def level_label(value: Any) -> str:
    """A short label of a level."""
    if isinstance(value, float):
        return f"{value:g}"
    return "+".join(map(str, value)) if isinstance(value, list) else str(value)


def point_sort_key(spec: dict):
    """A sort key for canonical point JSON strings, each axis' levels in :func:`ordered`
    order: grouped by the first axis that leaves the default (the default point with the
    first axis' levels), so one-factor-at-a-time points read axis by axis."""
    conditions = spec.get("conditions", {})
    axes = list(conditions)
    ranks = {a: {json.dumps(v): i for i, v in enumerate(ordered(conditions[a]))} for a in axes}
    default = {a: spec.get("default", {}).get(a, conditions[a][0]) for a in axes}

    def key(point: str) -> tuple:
        values = json.loads(point)
        off = [i for i, a in enumerate(axes) if values.get(a) != default[a]]
        return (off[0] if off else 0,
                tuple(ranks[a].get(json.dumps(values.get(a)), 99) for a in axes))

    return key


def sorted_points(points, spec: dict) -> list[str]:
    """Distinct canonical points in report order (see :func:`point_sort_key`)."""
    return sorted(dict.fromkeys(points), key=point_sort_key(spec))
