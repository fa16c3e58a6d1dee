"""Expand a study spec into runs: datasets x condition points x variants x seeds.

Each run's config is resolved and validated like any ``mtvae train`` config; its id is a short
SHA-256 of the canonical JSON of that resolved config, so the same spec always gives the same
ids, and a condition that does not touch a variant (``beta`` for the supervised baseline) maps
several cells of the grid to one run instead of training the same thing twice.

Runs whose configs differ only in what training never reads share a *training id*
(:func:`training_identity`): evaluation settings, and for a model that reads no label (a VAE,
a VQ-VAE and its prior) the label settings (the axes that act only through labels,
:func:`mtvae.study.axes.label_keys`). The study trains one of them and
evaluates the others from its weights, each with its own config, so a label condition re-fits
the probes with its own labels without retraining the same model.

A variant compared with a baseline that also learns from labels (an MT-VAE with
``supervised``) must give it the same label budget: the keys in ``LABEL_BUDGET`` (epochs,
batch size, labelled oversampling, model selection and its validation labels) must agree in
every cell, or the spec is refused.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, get_origin

from pydantic import BaseModel

from mtvae.base import drop_path, flatten, get_path, set_path
from mtvae.errors import UserError
from mtvae.models.capacity import example_tasks, task_capacity_problem
from mtvae.models.registry import get_model_entry
from mtvae.runconfig import resolve_config
from mtvae.study.axes import NOT_DEFINED, TASKS_KEY, axis_of, label_keys

if TYPE_CHECKING:
    from mtvae.study.spec import StudySpec

RESERVED = {"seed": "the study's seeds", "data.source": "the study's datasets",
            "model.name": "the variant's model"}

# What decides how often, and on which validation labels, a model's heads see the labels.
LABEL_BUDGET = ("train.epochs", "train.batch_size", "train.labelled_per_batch",
                "train.early_stopping", "train.min_improvement", "train.restore_best",
                "data.val_labels")


@dataclass(frozen=True)
class Cell:
    """One cell of the grid and the run that fills it."""

    dataset: str
    point: str  # canonical JSON of {axis: value}
    variant: str
    seed: int
    run_id: str


@dataclass
class PlannedRun:
    """A run to train and evaluate: its id, what it belongs to, its resolved config."""

    run_id: str
    variant: str
    model: str
    dataset: str
    seed: int
    config: dict[str, Any]
    train_id: str = ""  # runs with the same training id share one trained model

    def __post_init__(self) -> None:
        self.train_id = self.train_id or train_id(self.config)


@dataclass(frozen=True)
class RobustCell:
    """A cell of the centre point re-run with the maximum budget times ``factor``."""

    dataset: str
    point: str
    variant: str
    seed: int
    factor: float
    run_id: str


@dataclass
class Plan:
    """Every run of a study (ordered: seed-major, so early results cover every variant)."""

    runs: dict[str, PlannedRun] = field(default_factory=dict)
    cells: list[Cell] = field(default_factory=list)
    robustness: list[RobustCell] = field(default_factory=list)  # spec.robustness's re-runs


def run_id(config: dict[str, Any]) -> str:
    """12 hex digits of the SHA-256 of the config's canonical JSON."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def training_identity(config: dict[str, Any]) -> dict[str, Any]:
    """The part of a resolved run config that training reads.

    Evaluation settings are left out (``eval.batch_size`` stays: a VQ-VAE's prior stage
    encodes its codes in batches of that size), and so are the label settings
    (:func:`~mtvae.study.axes.label_keys`) of a model that reads no label.
    """
    out = copy.deepcopy(config)
    out["eval"] = {"batch_size": config.get("eval", {}).get("batch_size")}
    if not get_model_entry(config["model"]["name"]).reads_labels:
        for key in label_keys():
            drop_path(out, key)
    return out


def train_id(config: dict[str, Any]) -> str:
    """12 hex digits identifying what a run's training reads (see :func:`training_identity`)."""
    return run_id(training_identity(config))


def point_key(point: dict[str, Any]) -> str:
    """Canonical JSON of a condition point (axis order kept)."""
    return json.dumps(point, separators=(",", ":"))


def point_label(point: dict[str, Any] | str) -> str:
    """``label_fraction=0.1, beta=4`` (``default`` for a study without condition axes)."""
    if isinstance(point, str):
        point = json.loads(point)
    return ", ".join(f"{k}={axis_of(k).label(v)}" for k, v in point.items()) or "default"


def condition_points(spec: StudySpec) -> list[dict[str, Any]]:
    """The condition points of the design: the full product, or one factor at a time."""
    axes = list(spec.conditions)
    if spec.design == "product":
        return [dict(zip(axes, values, strict=True))
                for values in itertools.product(*spec.conditions.values())]
    centre = {axis: spec.axis_default(axis) for axis in axes}
    points = [centre]
    for factor in ofat_factors(spec):  # an axis alone, or a crossed group of axes
        for values in itertools.product(*(spec.conditions[a] for a in factor)):
            point = {**centre, **dict(zip(factor, values, strict=True))}
            if point not in points:
                points.append(point)
    return points


def ofat_factors(spec: StudySpec) -> list[list[str]]:
    """The factors an ofat design varies one at a time: each axis alone, except the axes of a
    ``crossed`` group, which vary together (at the place of the group's first axis)."""
    group_of = {axis: group for group in spec.crossed for axis in group}
    factors: list[list[str]] = []
    for axis in spec.conditions:
        factor = group_of.get(axis, [axis])
        if factor not in factors:
            factors.append(factor)
    return factors


def expand(spec: StudySpec, where: str = "study spec") -> Plan:
    """Resolve every run of ``spec``; raise one UserError naming the first run that fails."""
    _check_reserved(spec, where)
    plan, owner = Plan(), {}
    points = condition_points(spec)
    for seed, source, point, (name, variant) in itertools.product(
        spec.seeds, spec.datasets, points, spec.variants.items()
    ):
        raw = _raw_config(spec, source, point, name, seed, where)
        if raw is None:  # this dataset does not define the point's task set
            continue
        try:
            resolved = resolve_config(raw)
        except UserError as exc:
            raise UserError(
                f"Invalid {where}: variant '{name}' on {source} at {point_key(point)}, seed "
                f"{seed}: {exc}"
            ) from None
        _check_task_capacity(resolved, name, where)
        config = resolved.to_dict()
        rid = run_id(config)
        if owner.setdefault(rid, name) != name:
            raise UserError(
                f"Invalid {where}: variants '{owner[rid]}' and '{name}' give the same run "
                "config; make them differ or drop one."
            )
        plan.runs.setdefault(rid, PlannedRun(rid, name, variant.model, source, seed, config))
        plan.cells.append(Cell(source, point_key(point), name, seed, rid))
    if not plan.cells:
        raise UserError(f"Invalid {where}: it expands to no runs.")
    _check_label_budgets(spec, plan, where)
    if spec.robustness is not None:
        _add_robustness(spec, plan)
    return plan


def centre_point(spec: StudySpec) -> dict[str, Any]:
    """The centre point: every axis at its default (the first point of an ofat design)."""
    return {axis: spec.axis_default(axis) for axis in spec.conditions}


def _add_robustness(spec: StudySpec, plan: Plan) -> None:
    """The centre point's cells again with the budget times ``spec.robustness.budget``
    (rounded up), identically for every variant: ``train.epochs`` (the maximum) and the
    early-stopping patience, so that a run which converged by the rule trains on as long
    again before it may stop (multiplying the maximum alone would change nothing for it)."""
    factor, centre = spec.robustness.budget, point_key(centre_point(spec))
    for cell in [c for c in plan.cells if c.point == centre]:
        run = plan.runs[cell.run_id]
        config = copy.deepcopy(run.config)
        train = config["train"]
        train["epochs"] = math.ceil(train["epochs"] * factor)
        if train.get("early_stopping") is not None:
            train["early_stopping"] = math.ceil(train["early_stopping"] * factor)
        rid = run_id(config)
        plan.runs.setdefault(rid, PlannedRun(rid, run.variant, run.model, run.dataset,
                                             run.seed, config))
        plan.robustness.append(RobustCell(cell.dataset, cell.point, cell.variant, cell.seed,
                                          factor, rid))


def _check_task_capacity(config, variant: str, where: str) -> None:
    """Refuse a variant whose model cannot hold the tasks it gets (e.g. an MT-VAE's latent
    too narrow for one block per task), before any run starts (see mtvae.models.capacity)."""
    problem = task_capacity_problem(config.model, config.data)
    if problem:
        source = config.data.source
        example = ", ".join(example_tasks(config.model, config.data))
        raise UserError(
            f"Invalid {where}: variant '{variant}' on {source}: {problem} (in the spec's "
            f"base.model or the variant's set). Or name the tasks the study uses in a spec "
            f"file, `datasets: {{{source}: {{tasks: [{example}]}}}}`, and run it with --spec."
        )


def _check_label_budgets(spec: StudySpec, plan: Plan, where: str) -> None:
    """A baseline that learns from labels gets the same label budget as the variant compared
    with it, in every cell (see ``LABEL_BUDGET``)."""
    cells: dict[tuple, dict[str, dict]] = {}
    for cell in plan.cells:
        key = (cell.dataset, cell.point, cell.seed)
        cells.setdefault(key, {})[cell.variant] = plan.runs[cell.run_id].config
    for (source, point, seed), configs in cells.items():
        for name, variant in spec.variants.items():
            for family, other in variant.baselines.items():
                if name not in configs or other not in configs:
                    continue
                if not all(get_model_entry(configs[v]["model"]["name"]).reads_labels
                           for v in (name, other)):
                    continue
                for key in LABEL_BUDGET:
                    mine, theirs = get_path(configs[name], key), get_path(configs[other], key)
                    if mine != theirs:
                        raise UserError(
                            f"Invalid {where}: variant '{name}' is compared with '{other}' on "
                            f"{family} metrics, and both learn from labels, but {key} is "
                            f"{mine!r} for '{name}' and {theirs!r} for '{other}' (on {source} at "
                            f"{point_key(json.loads(point))}, seed {seed}): the baseline would "
                            "not see its labels as often, or not be selected the same way. Set "
                            f"{key} in `base` (or the same in both variants)."
                        )


def _raw_config(spec, source, point, name, seed, where) -> dict[str, Any] | None:
    """The raw config of one cell: base < dataset < variant < condition values."""
    dataset, variant = spec.datasets[source], spec.variants[name]
    raw = {k: copy.deepcopy(v) for k, v in spec.base.items() if k != "model"}
    raw["seed"] = seed
    raw.setdefault("data", {})["source"] = source
    if spec.seed_data:
        raw["data"]["seed"] = seed
    raw.setdefault("train", {})["progress"] = False
    model = variant.model
    raw["model"] = {"name": model}
    for key, value in flatten(spec.base.get("model", {}), "model.").items():
        if has_key(model, key):
            set_path(raw, key, value)
    if dataset.tasks is not None and has_key(model, TASKS_KEY):
        set_path(raw, TASKS_KEY, list(dataset.tasks))
    for key, value in [*dataset.set.items(), *variant.set.items()]:
        set_path(raw, key, value)
    for name, level in point.items():
        ax = axis_of(name)
        if not has_key(model, ax.key):
            continue
        value = ax.value(level, dataset, source, where)
        if value is NOT_DEFINED:  # this dataset does not define the level
            return None
        set_path(raw, ax.key, value)
    return raw


def _check_reserved(spec: StudySpec, where: str) -> None:
    """Overrides may not set what the study itself varies; every axis must change something."""
    axis_keys = {axis_of(a).key: a for a in spec.conditions}
    sources = [(f"variant '{n}'", v.set) for n, v in spec.variants.items()]
    sources += [(f"datasets.{n}", d.set) for n, d in spec.datasets.items()]
    for owner, overrides in sources:
        for key in overrides:
            if key in RESERVED:
                raise UserError(f"Invalid {where}: {owner} sets '{key}', which {RESERVED[key]} set.")
            for axis_key, axis in axis_keys.items():
                if key == axis_key or key.startswith(axis_key + ".") or axis_key.startswith(key + "."):
                    raise UserError(
                        f"Invalid {where}: {owner} sets '{key}', which the condition axis "
                        f"'{axis}' varies; remove one of them."
                    )
    models = {v.model for v in spec.variants.values()}
    for key, axis in axis_keys.items():
        if not any(has_key(m, key) for m in models):
            raise UserError(
                f"Invalid {where}: the condition axis '{key}' ({axis}) changes no variant: none "
                f"of the models {sorted(models)} has that option."
            )
    for key in flatten(spec.base.get("model", {}), "model."):
        if not any(has_key(m, key) for m in models):
            raise UserError(
                f"Invalid {where}: base sets '{key}', which none of the models "
                f"{sorted(models)} has."
            )


def has_key(model: str, key: str) -> bool:
    """Whether a run of ``model`` has config key ``key`` (``model.*`` keys depend on the model)."""
    if not key.startswith("model."):
        return True
    node: Any = get_model_entry(model).config_cls
    for part in key.split(".")[1:]:
        if get_origin(node) is dict:  # a mapping field takes any sub-key
            return True
        if not (isinstance(node, type) and issubclass(node, BaseModel)):
            return False
        if part not in node.model_fields:
            return False
        node = node.model_fields[part].annotation
    return True
