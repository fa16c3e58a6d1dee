"""Condition axes: what each one sets in a run's config, and its levels as ordered quantities.

An :class:`Axis` is one declaration in :data:`AXES`: its name in a spec's ``conditions``, the
config key it sets, the line the report's methodology table shows, how a level becomes the
value set (the ``tasks`` axis looks its level up in the dataset's task sets), whether it acts
only through the labels a run sees, and whether the spec's levels are put in order when read.
Any dotted config key (``model.task_dim``) is an axis too, without a declaration
(:func:`axis_of`).

An axis is *numeric* when every level is a number, or ``all`` (a label-count axis' "every
label", placed after the largest count). Numeric levels sort numerically whatever order the
spec lists them in; a numeric axis whose levels span more than 10x is drawn and tested on a
log scale, a level 0 (the task weight's) placed one step below the smallest positive level.
Every other axis (task sets, weighting strategies) is *categorical*: its levels keep the
spec's order, the default first.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mtvae.errors import UserError

if TYPE_CHECKING:
    from mtvae.study.spec import DatasetSpec, StudySpec

ALL = "all"
LOG_SPAN = 10.0  # levels spanning more than this ratio use a log scale
TASKS_KEY = "model.tasks"  # where a model with heads keeps its task list (the dataset's tasks)
NOT_DEFINED = object()  # a level a dataset does not define: the cell has no run there


@dataclass(frozen=True)
class Axis:
    """A condition axis: the config ``key`` its levels set, and how.

    ``setting(level, dataset, source, where)`` gives the value a level sets in a run on
    ``source`` (its :class:`~mtvae.study.spec.DatasetSpec` ``dataset``), :data:`NOT_DEFINED`
    where that dataset has no such level, or raises a UserError naming ``where``; None: the
    level itself. ``check(levels, spec)`` lists the problems of the spec's levels.
    """

    name: str
    key: str
    description: str = "config value"
    # Acts only through the labels a run sees: a model whose training reads no label (vae,
    # vqvae) trains the same at every level, so a study trains it once for them all.
    labels_only: bool = False
    # The spec's numeric levels are put in order when it is read, so its default (the first
    # level) is the smallest: label_count runs from few labels to all.
    in_order: bool = False
    # Its levels name the study data's own task sets: a study moved to other data with
    # `mtvae study --data` drops the axis.
    of_the_data: bool = False
    setting: Callable[[Any, DatasetSpec, str, str], Any] | None = None
    check: Callable[[list[Any], StudySpec], list[str]] | None = None

    def value(self, level: Any, dataset: DatasetSpec, source: str, where: str) -> Any:
        """The value ``level`` sets at :attr:`key` in a run on ``source`` (see the class)."""
        return level if self.setting is None else self.setting(level, dataset, source, where)

    def problems(self, levels: list[Any], spec: StudySpec) -> list[str]:
        """What is wrong with the spec's ``levels`` of this axis (none: an empty list)."""
        return [] if self.check is None else self.check(levels, spec)

    def spec_levels(self, levels: list[Any]) -> list[Any]:
        """The levels as the spec keeps them: in :func:`ordered` order for an ``in_order``
        axis with numeric levels, else as written."""
        return ordered(levels) if self.in_order and is_numeric(levels) else levels

    def ordered(self, levels: list[Any]) -> list[Any]:
        """The levels in report order (:func:`ordered`)."""
        return ordered(levels)

    def label(self, level: Any) -> str:
        """A short label of a level (:func:`level_label`)."""
        return level_label(level)


def _task_set(level: Any, dataset: DatasetSpec, source: str, where: str) -> Any:
    """The tasks axis: a level names one of the dataset's task sets (a dataset without it
    has no run at that level)."""
    return list(dataset.task_sets[level]) if level in dataset.task_sets else NOT_DEFINED


def _task_sets_defined(levels: list[Any], spec: StudySpec) -> list[str]:
    return [f"condition axis 'tasks': no dataset defines the task set '{level}' (add it under "
            "datasets.<source>.task_sets)"
            for level in levels if not any(level in d.task_sets for d in spec.datasets.values())]


def _first_tasks(n: Any, dataset: DatasetSpec, source: str, where: str) -> list[str]:
    """The n_tasks axis: the first ``n`` of the dataset's tasks."""
    if dataset.tasks is None:
        raise UserError(
            f"Invalid {where}: the n_tasks axis takes the first n of datasets.{source}.tasks; "
            "list the tasks there."
        )
    if not isinstance(n, int) or not 1 <= n <= len(dataset.tasks):
        raise UserError(
            f"Invalid {where}: n_tasks={n!r} must be an integer from 1 to {len(dataset.tasks)} "
            f"(the tasks of {source})."
        )
    return list(dataset.tasks[:n])


# The named axes (a short name and the key it sets), then the label settings, which are axes
# under their dotted keys: every setting that acts only through the labels is declared here,
# so that a study trains a model that reads no label once for all of them.
AXES: dict[str, Axis] = {a.name: a for a in (
    Axis("label_fraction", "data.label_fraction", "share of training labels kept per task",
         labels_only=True),
    Axis("label_count", "data.n_labelled",
         "training labels kept per task (a count; all: every label)", labels_only=True,
         in_order=True),
    Axis("n_train", "data.n_train", "training-set size"),
    Axis("beta", "model.beta", "weight of the KL term"),
    Axis("latent_dim", "model.latent_dim", "latent dimensions"),
    Axis("weighting", "model.weighting.strategy", "task-weighting strategy"),
    Axis("task_weight", "model.task_scale_factor",
         "task weight, as a multiple of model.task_scale (0: no head is trained)"),
    Axis("tasks", TASKS_KEY, "task set (relatedness of the tasks learned together)",
         labels_only=True, of_the_data=True, setting=_task_set, check=_task_sets_defined),
    Axis("n_tasks", TASKS_KEY, "number of tasks learned together", labels_only=True,
         setting=_first_tasks),
    Axis("data.label_balance", "data.label_balance",
         "how the kept labels are drawn (per_class: the same count per class)",
         labels_only=True),
    Axis("data.label_policy", "data.label_policy", "which labels are missing (mcar, "
         "disjoint, mnar)", labels_only=True),
    Axis("data.mnar_strength", "data.mnar_strength",
         "how strongly a label's value decides that it is missing", labels_only=True),
    Axis("data.val_labels", "data.val_labels", "the validation labels the heads are scored "
         "and selected on", labels_only=True),
    Axis("train.labelled_per_batch", "train.labelled_per_batch",
         "labelled examples added to each training batch", labels_only=True),
)}


def axis_of(name: str) -> Axis:
    """The axis ``name`` of a spec's conditions: a declared one, or the dotted config key
    ``name`` (acting only through labels when a declared label axis sets that key)."""
    if name in AXES:
        return AXES[name]
    return Axis(name, name, labels_only=name in label_keys())


def named_axes() -> list[str]:
    """The short names a spec may use for an axis (beside any dotted config key)."""
    return [name for name in AXES if "." not in name]


def label_keys() -> tuple[str, ...]:
    """The config keys that act only through the labels a run sees."""
    return tuple(dict.fromkeys(a.key for a in AXES.values() if a.labels_only))


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
    """A short human form of a level or config value: ``0.1``, ``digit+parity``, ``a:1,b:2``."""
    if isinstance(value, list):
        return "+".join(map(str, value))
    if isinstance(value, dict):
        return ",".join(f"{k}:{v}" for k, v in value.items())
    return f"{value:g}" if isinstance(value, float) else str(value)


def point_sort_key(spec: dict):
    """A sort key for canonical point JSON strings, each axis' levels in :func:`ordered`
    order: grouped by the first axis that leaves the default (the default point with the
    first axis' levels), so one-factor-at-a-time points read axis by axis."""
    conditions = spec.get("conditions", {})
    axes = list(conditions)
    ranks = {a: {json.dumps(v): i for i, v in enumerate(axis_of(a).ordered(conditions[a]))}
             for a in axes}
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
