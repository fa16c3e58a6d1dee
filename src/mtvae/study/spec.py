"""The study spec: which data, which model variants, which conditions, seeds and metrics.

Why one module of over 400 lines: the spec's sections, their cross-checks (hypotheses name
variants and levels, crossed axes, reserved keys) and the ways a spec is read (preset, file,
``--data`` on other data) are one schema; split apart, each check would import the others.

A study is written as YAML and validated like every config (unknown keys are errors, with a
did-you-mean). Presets ship as YAML files in ``mtvae/study/presets``. Example::

    name: my-study
    datasets:
      shapes: {tasks: [shape, scale, x, y]}
    base:                       # a partial run config shared by every run
      data: {n_train: 4000}
      train: {epochs: 5}
    variants:                   # name -> registry model + dotted config overrides
      vae: {model: vae}
      mt: {model: mtvae, set: {model.layout: shared},
           baselines: {reconstruction: vae, representation: vae}}
    conditions:                 # axes: name (or dotted config key) -> values
      label_fraction: [0.1, 1.0]   # or label_count: [100, 1000, all]
    design: product             # or ofat: one factor at a time around `default`
    seeds: [0, 1, 2]
    metrics: [recon, nll, task]
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from mtvae.base import StrictModel, flatten
from mtvae.errors import UserError, did_you_mean, not_a_file, quoted, yaml_problem
from mtvae.safe_yaml import load_yaml, read_yaml_file
from mtvae.study.axes import TASKS_KEY, axis_of, named_axes

if TYPE_CHECKING:
    from mtvae.study.expand import Plan

Family = Literal["reconstruction", "generation", "representation", "task"]
FAMILIES: tuple[str, ...] = ("reconstruction", "generation", "representation", "task")


def dotted_overrides(value: Any) -> Any:
    """``{data: {n_val: 300}}`` -> ``{"data.n_val": 300}``: nested mappings in ``set`` are
    shorthand for dotted keys, so they merge into the config (and are checked against the
    condition axes key by key) instead of replacing a whole section."""
    return flatten(value) if isinstance(value, dict) else value


MAX_SEED_COUNT = 1_000  # `seeds: N` stands for 0..N-1; each seed repeats every run


class DatasetSpec(StrictModel):
    """One data source of the study and the tasks its models learn."""

    tasks: list[str] | None = Field(
        None, description="tasks every model with heads learns (None: the source's default "
        "tasks where it has them, CelebA's five; else all the data's tasks)"
    )
    task_sets: dict[str, list[str]] = Field(
        default_factory=dict, description="named task lists for the `tasks` condition axis"
    )
    set: dict[str, Any] = Field(
        default_factory=dict, description="dotted config overrides for this dataset's runs"
    )

    _dotted_set = field_validator("set", mode="before")(lambda cls, v: dotted_overrides(v))


class VariantSpec(StrictModel):
    """A named model variant: a registry model plus config overrides."""

    model: str = Field(description="registry model name (see `mtvae models`)")
    description: str = Field("", description="one line the report shows for this variant")
    set: dict[str, Any] = Field(
        default_factory=dict, description="dotted config overrides, e.g. {model.layout: shared}"
    )

    _dotted_set = field_validator("set", mode="before")(lambda cls, v: dotted_overrides(v))
    baselines: dict[Family, str] = Field(
        default_factory=dict,
        description="metric family -> the variant this one is compared with on that family",
    )


class HypothesisSpec(StrictModel):
    """A question the study answers: does ``variant`` beat ``baseline`` on ``metric``?

    ``{task}`` in a key expands to each task both variants have the key for. The difference is
    paired by seed and oriented by the metric's direction (positive favours the variant).
    """

    name: str = Field(min_length=1, description="the hypothesis' name in the report")
    variant: str = Field(description="the variant the hypothesis is about")
    baseline: str = Field(description="the variant it is compared with")
    metric: str = Field(description="the variant's metric key, e.g. task/{task}/accuracy")
    baseline_metric: str | None = Field(
        None, description="the baseline's key (default: the same), e.g. probe/{task}/accuracy"
    )
    test: Literal["superiority", "noninferiority"] = Field(
        "superiority", description="superiority: the variant is better; noninferiority: it is "
        "worse by less than margin"
    )
    margin: float = Field(
        0.0, ge=0, description="non-inferiority margin, in the metric's units (> 0 for that test)"
    )
    baseline_at: dict[str, Any] = Field(
        default_factory=dict, description="read the baseline at the same point with these "
        "axis levels instead, e.g. {tasks: single} with the variant as its own baseline: the "
        "MT-VAE against itself with one task (multitask vs single-task)"
    )


class RobustnessSpec(StrictModel):
    """A budget-sensitivity check: the centre point re-run with a larger maximum budget."""

    budget: float = Field(
        gt=1, description="multiplies the budget (train.epochs, the maximum, and the "
        "early-stopping patience) of every run at the centre point; the report says, per "
        "hypothesis, whether the effect keeps its sign and how much its size moves"
    )


class StudySpec(StrictModel):
    """A grid of runs: datasets x condition points x variants x seeds, and how to compare them."""

    name: str = Field(min_length=1, description="the study's name, shown by the report")
    description: str = Field("", description="what the study compares, shown by the report")
    datasets: dict[str, DatasetSpec] = Field(
        default_factory=lambda: {"shapes": DatasetSpec()},
        description="data source -> its tasks and overrides (a list of sources is short for "
        "{source: {}})",
    )
    base: dict[str, Any] = Field(
        default_factory=dict, description="partial run config shared by every run"
    )
    variants: dict[str, VariantSpec] = Field(
        min_length=1, description="variant name -> a registry model and its overrides"
    )
    conditions: dict[str, list[Any]] = Field(
        default_factory=dict, description="condition axis (a named axis or a dotted config "
        "key) -> its levels"
    )
    design: Literal["product", "ofat"] = Field(
        "product", description="product: every combination of the axes' levels; ofat: one "
        "axis at a time, the others at the default point"
    )
    default: dict[str, Any] = Field(
        default_factory=dict, description="ofat centre point (default: each axis' first value)"
    )
    # Left out of study.yaml when empty (exclude_if), so earlier specs dump as before.
    crossed: list[list[str]] = Field(
        default_factory=list, exclude_if=lambda v: not v,
        description="ofat: groups of axes varied together, every combination of their levels "
        "(e.g. [[label_count, task_weight]]: a task-weight front at every label count)",
    )
    seeds: list[int] = Field(
        default_factory=lambda: [0, 1, 2], min_length=1,
        description="seeds every run is repeated with (a count N is short for 0..N-1)",
    )
    seed_data: bool = Field(
        True, description="each seed also reseeds the data (generation, splits, label masks)"
    )
    metrics: tuple[str, ...] = Field(
        ("recon", "nll", "task"), min_length=1,
        description="metric families every run is evaluated on (the names `mtvae evaluate "
        "--metrics` takes)",
    )
    alpha: float = Field(0.05, gt=0, lt=1, description="significance level of the tests")
    hypotheses: list[HypothesisSpec] = Field(
        default_factory=list,
        description="the study's questions (none: one primary hypothesis per outcome kind)",
    )
    robustness: RobustnessSpec | None = Field(
        None, description="re-run the centre point with the maximum budget multiplied, e.g. "
        "{budget: 4} (None: no re-run)"
    )
    # The spec's expansion and the dump of the spec it was made from (see plan()).
    _expansion: tuple[dict[str, Any], Plan] | None = PrivateAttr(None)

    @field_validator("datasets", mode="before")
    @classmethod
    def _list_of_names(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):  # [shapes, mnist] is short for {shapes: {}, ...}
            value = {str(name): {} for name in value}
        if isinstance(value, dict):  # `mnist:` with nothing under it
            return {k: _default_tasks(k, {} if v is None else v) for k, v in value.items()}
        return value

    @field_validator("conditions")
    @classmethod
    def _levels_in_order(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        """An ``in_order`` axis' levels in order, whatever order they were written in (the
        label-count axis runs from few labels to all)."""
        return {name: axis_of(name).spec_levels(levels) for name, levels in value.items()}

    @field_validator("seeds", mode="before")
    @classmethod
    def _count_of_seeds(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):  # `seeds: 3` -> [0, 1, 2]
            if not 1 <= value <= MAX_SEED_COUNT:
                raise ValueError(f"a count of seeds must be at least 1 and at most "
                                 f"{MAX_SEED_COUNT:,}; give "
                                 "a count such as `seeds: 3` or a list such as `seeds: [0, 1, 2]`")
            return list(range(value))
        return value

    @model_validator(mode="after")
    def _consistent(self) -> StudySpec:
        problems = _check_spec(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def plan(self, where: str = "study spec") -> Plan:
        """Every run of the spec (:func:`mtvae.study.expand.expand`), expanded once.

        :func:`parse_spec` validates a spec by expanding it and keeps that expansion, so
        running the study does not resolve every run config again; it is made anew only when
        the spec has changed since (``where`` names the spec in the errors of a new one).
        """
        from mtvae.study.expand import expand

        dump = self.model_dump(mode="json")
        if self._expansion is None or self._expansion[0] != dump:
            self._expansion = (dump, expand(self, where=where))
        return self._expansion[1]

    def axis_default(self, axis: str) -> Any:
        """The ofat centre value of ``axis``."""
        return self.default.get(axis, self.conditions[axis][0])


def _default_tasks(source: Any, dataset: Any) -> Any:
    """A dataset naming no tasks learns its source's default ones where it has them
    (CelebA's five of 40 attributes; :func:`mtvae.data.sources.default_tasks`)."""
    from mtvae.data.sources import default_tasks

    default = default_tasks(str(source))
    if default and isinstance(dataset, dict) and dataset.get("tasks") is None:
        return {**dataset, "tasks": default}
    return dataset


def _check_spec(spec: StudySpec) -> list[str]:
    from mtvae.data.sources import SOURCES
    from mtvae.evaluate.runner import METRIC_FAMILIES
    from mtvae.models.registry import MODELS

    problems = []
    for source in spec.datasets:
        if source.split(":", 1)[0] not in SOURCES:
            problems.append(
                f"unknown data source '{source}'.{did_you_mean(source, SOURCES)} "
                f"Available: {', '.join(e.name for e in SOURCES.values())}"
            )
    for name in spec.metrics:
        if name not in METRIC_FAMILIES:
            problems.append(
                f"unknown metric family '{name}'.{did_you_mean(name, METRIC_FAMILIES)} "
                f"Available: {', '.join(METRIC_FAMILIES)}"
            )
    for name, variant in spec.variants.items():
        if variant.model not in MODELS:
            problems.append(
                f"variant '{name}': unknown model '{variant.model}'."
                f"{did_you_mean(variant.model, MODELS)} Available: {', '.join(MODELS)}"
            )
        for family, other in variant.baselines.items():
            if other not in spec.variants or other == name:
                problems.append(
                    f"variant '{name}': baseline for {family} must be another variant, got "
                    f"'{other}'.{did_you_mean(other, spec.variants)}"
                )
    if len(set(spec.seeds)) != len(spec.seeds) or any(s < 0 for s in spec.seeds):
        problems.append(f"seeds must be distinct non-negative integers, got {quoted(spec.seeds)}")
    problems += _check_axes(spec)
    problems += _check_hypotheses(spec)
    return problems


def _check_hypotheses(spec: StudySpec) -> list[str]:
    from mtvae.evaluate.catalogue import is_outcome

    problems, names = [], set()
    for h in spec.hypotheses:
        where = f"hypothesis '{h.name}'"
        if h.name in names:
            problems.append(f"{where} is declared twice; give each hypothesis its own name")
        names.add(h.name)
        for role in ("variant", "baseline"):
            if getattr(h, role) not in spec.variants:
                problems.append(f"{where}: {role} '{getattr(h, role)}' is not a variant."
                                f"{did_you_mean(getattr(h, role), spec.variants)}")
        if h.variant == h.baseline and not h.baseline_at:
            problems.append(f"{where}: variant and baseline are both '{h.variant}' (to compare "
                            "a variant with itself at another level, give baseline_at, e.g. "
                            "{tasks: single})")
        for axis, level in h.baseline_at.items():
            if level not in spec.conditions.get(axis, []):
                problems.append(f"{where}: baseline_at {axis}={level!r} is not a level of the "
                                f"study's conditions ({axis}: {spec.conditions.get(axis)})")
        for key in {h.metric, h.baseline_metric or h.metric}:
            if not is_outcome(key.replace("{task}", "t")):
                problems.append(f"{where}: '{key}' is not an outcome metric (see the metric "
                                "catalogue: counts, sizes and settings are never compared)")
        if h.test == "noninferiority" and h.margin <= 0:
            problems.append(f"{where}: a non-inferiority test needs a margin > 0")
    return problems


def _check_axes(spec: StudySpec) -> list[str]:
    problems = []
    named = named_axes()
    for axis, values in spec.conditions.items():
        if axis not in named and "." not in axis:
            problems.append(
                f"unknown condition axis '{axis}'.{did_you_mean(axis, named)} Use one of "
                f"{', '.join(named)} or a dotted config key such as model.task_dim"
            )
        if not values:
            problems.append(f"condition axis '{axis}' has no values")
        elif len({yaml.safe_dump(v) for v in values}) != len(values):
            problems.append(f"condition axis '{axis}' repeats a value: {quoted(values)}")
        problems += axis_of(axis).problems(values, spec)
    keys: dict[str, str] = {}
    for axis in spec.conditions:
        key = axis_of(axis).key
        if keys.setdefault(key, axis) != axis:
            problems.append(f"condition axes '{keys[key]}' and '{axis}' both set {key}; keep one")
    problems += _check_crossed(spec)
    for axis, value in spec.default.items():
        if axis not in spec.conditions:
            problems.append(f"default names '{axis}', which is not a condition axis")
        elif value not in spec.conditions[axis]:
            problems.append(
                f"default {axis}={quoted(value)} is not one of the axis' values "
                f"{quoted(spec.conditions[axis])}"
            )
    return problems


def _check_crossed(spec: StudySpec) -> list[str]:
    problems, seen = [], set()
    if spec.crossed and spec.design != "ofat":
        problems.append("crossed groups axes of an ofat design; a product design already "
                        "crosses every axis (remove crossed, or set design: ofat)")
    for group in spec.crossed:
        if len(group) < 2:
            problems.append(f"crossed group {group} needs two or more axes")
        for axis in group:
            if axis not in spec.conditions:
                problems.append(f"crossed names '{axis}', which is not a condition axis."
                                f"{did_you_mean(axis, spec.conditions)}")
            elif axis in seen:
                problems.append(f"crossed names '{axis}' in two groups; merge them")
            seen.add(axis)
    return problems


# --- loading ------------------------------------------------------------------------------
def preset_names() -> list[str]:
    """Names of the presets shipped with mtvae."""
    folder = resources.files("mtvae.study") / "presets"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def preset_text(name: str) -> str:
    """The YAML text of preset ``name`` (a UserError with a suggestion when unknown)."""
    names = preset_names()
    if name not in names:
        raise UserError(
            f"Unknown study preset '{name}'.{did_you_mean(name, names)} "
            f"Available: {', '.join(names)}; or pass your own --spec FILE.yaml."
        )
    return (resources.files("mtvae.study") / "presets" / f"{name}.yaml").read_text("utf-8")


def load_preset(name: str, expand: bool = True) -> StudySpec:
    """The validated preset ``name`` (``expand``: see :func:`parse_spec`)."""
    return parse_spec(load_yaml(preset_text(name)), f"preset '{name}'", expand)


def load_spec_file(path: str | Path, expand: bool = True) -> StudySpec:
    """Read and validate a study spec YAML file (``expand``: see :func:`parse_spec`)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"Study spec '{path}' {not_a_file(path)}. Pass an existing YAML file.")
    try:
        raw = read_yaml_file(path)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise UserError(f"Study spec '{path}' is not valid YAML: {yaml_problem(exc)}.") from None
    return parse_spec(raw, f"study spec '{path}'", expand)


def parse_spec(raw: Any, where: str = "study spec", expand: bool = True) -> StudySpec:
    """Validate raw data into a :class:`StudySpec`; every problem in one UserError.

    With ``expand`` (default) every run config is resolved too, and the plan is kept for the
    study; False checks the spec's own keys only, for a spec that is changed before it runs
    (``mtvae study --data`` validates the changed spec in full, so it is expanded once).
    """
    if not isinstance(raw, dict):
        raise UserError(f"The {where} must be a YAML mapping with name, variants, ... keys.")
    try:
        spec = StudySpec.model_validate(raw)
    except ValidationError as exc:
        raise UserError(f"Invalid {where}: " + "; ".join(_spec_problems(exc)) + ".") from None
    if expand:
        spec.plan(where)  # every run config must resolve, too (the plan is kept for the study)
    return spec


def _spec_problems(exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        key = ".".join(loc)
        if err["type"] == "value_error" and not loc:
            problems.append(str(err["ctx"]["error"]))
        elif err["type"] == "missing":
            problems.append(f"missing key '{key}'")
        elif err["type"] == "extra_forbidden":
            allowed = _allowed_at(loc[:-1])
            problems.append(
                f"unknown key '{key}'.{did_you_mean(loc[-1], allowed)} "
                f"Allowed here: {', '.join(allowed)}"
            )
        else:
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"'{key}': {msg} (got {quoted(err.get('input'))})")
    return problems


def _allowed_at(path: list[str]) -> list[str]:
    """Field names of the spec section at ``path`` (a mapping level consumes one key)."""
    node: Any = StudySpec
    for part in path:
        if get_origin(node) is dict:
            node = get_args(node)[1]
        elif isinstance(node, type) and issubclass(node, BaseModel) and part in node.model_fields:
            node = node.model_fields[part].annotation
        else:
            return []
    return sorted(node.model_fields) if isinstance(node, type) and issubclass(node, BaseModel) else []


def with_data(spec: StudySpec, source: str | None, root: str | None = None) -> StudySpec:
    """The spec with every run on data ``source`` (and/or files under ``root``) instead.

    The study's own settings for ``source`` are kept when it is one of its datasets, or the same
    source at another path whose tasks do not depend on the path (a preset's
    ``celeba:~/data/celeba`` -> your copy); otherwise
    the first dataset's overrides carry over, but not its task lists nor the variants'
    ``model.tasks`` (they name the other data's tasks: models then learn the new source's
    default tasks, CelebA's five, or where it has none every task of the new data), the axes
    whose levels name its task sets (``tasks``) or its split sizes (the new source's own apply).

    The result is parsed again, not copied: the new source's tasks and every check across
    variants, axes and hypotheses must hold for the spec it becomes (a copy would skip them).
    """
    from mtvae.data.sources import absolute_source, same_tasks

    raw = spec.model_dump(mode="json")
    if source:  # a PATH absolute, so a resume from elsewhere finds it
        source = absolute_source(source)
    if root:
        raw["base"].setdefault("data", {})["root"] = str(Path(root).expanduser().resolve())
    datasets = raw["datasets"]
    same = [k for k in datasets  # the same files (a relative PATH too) or the same tasks
            if source and (absolute_source(k) == source or same_tasks(k, source))]
    if source in datasets or same:
        raw["datasets"] = {source: datasets[source if source in datasets else same[0]]}
    elif source:
        sizes = ("n_train", "n_val", "n_test")
        first = next(iter(datasets.values()))
        keep = {k: v for k, v in first["set"].items() if k not in [f"data.{s}" for s in sizes]}
        raw["datasets"] = {source: {"tasks": None, "task_sets": {}, "set": keep}}
        for size in sizes:  # the other data's split sizes: the new source's own apply
            raw["base"].get("data", {}).pop(size, None)
        _drop_axes(raw, [a for a in raw["conditions"] if axis_of(a).of_the_data])
        for variant in raw["variants"].values():  # e.g. m2's [digit]: the new data's apply
            variant.get("set", {}).pop(TASKS_KEY, None)
        _drop_repeated_variants(raw)
    return parse_spec(raw, f"study spec '{spec.name}' with --data {source or root}")


def _drop_axes(raw: dict[str, Any], axes: list[str]) -> None:
    """Drop condition ``axes`` with their default, their place in ``crossed`` groups (a group
    left with one axis goes) and the hypotheses that read a baseline at one of their levels."""
    for axis in axes:
        raw["conditions"].pop(axis)
        raw["default"].pop(axis, None)
    groups = [[a for a in group if a not in axes] for group in raw.get("crossed") or []]
    raw["crossed"] = [group for group in groups if len(group) > 1]
    raw["hypotheses"] = [h for h in raw.get("hypotheses") or []
                         if not set(h.get("baseline_at") or {}) & set(axes)]


def _drop_repeated_variants(raw: dict[str, Any]) -> None:
    """Drop each variant that, without the other data's task list, is an earlier one again
    (quick's single-task MT-VAE learns the digit alone: on other data it would be the MT-VAE),
    with the hypotheses that compare it."""
    seen, dropped = [], set()
    for name, variant in raw["variants"].items():
        same = (variant["model"], variant.get("set") or {})
        if same in seen:
            dropped.add(name)
        seen.append(same)
    for name in dropped:
        del raw["variants"][name]
    raw["hypotheses"] = [h for h in raw.get("hypotheses") or []
                         if h["variant"] not in dropped and h["baseline"] not in dropped]


def spec_yaml(spec: StudySpec) -> str:
    """The canonical YAML form of ``spec`` (what ``study.yaml`` holds); without a robustness
    check it has no ``robustness`` key, as the study.yaml of a study from before the option."""
    raw = spec.model_dump(mode="json")
    if raw.get("robustness") is None:
        raw.pop("robustness", None)
    return yaml.safe_dump(raw, sort_keys=False)
