"""The study's questions: hypotheses resolved against the stored results.

A spec may declare ``hypotheses`` (see :class:`~mtvae.study.spec.HypothesisSpec`); ``{task}``
in a key expands to every task both variants have the key for. A spec that declares none gets
the **primary hypotheses** of its variants with baselines, one per outcome kind:

* reconstruction: ``nll/iwae`` (else ``recon/bce``) against the reconstruction baseline;
* generation: ``gen/fd`` against the generation baseline;
* representation: the linear probe of each task (accuracy, or R² for regression) against the
  representation baseline;
* task: the variant's own head on each task (a) against the task baseline's head and (b)
  against the two-stage baseline's linear probe of the same score (the representation
  baseline, when it has no heads of its own: a VAE + probe).

and, where a variant of the same model learns a single task of the variant's tasks (a
single-task MT-VAE beside the MT-VAE), **multitask vs single-task**: the variant's head on that
task against the single-task variant's (:func:`single_task_variants`); and where a ``tasks``
(or ``n_tasks``) axis has a **single-task level** (a task set of one study task, like
standard's ``single: [digit]``), multitask vs single-task along it: each variant with baselines
whose model learns tasks, on that task's head, at every multi-task level whose set holds the
task against itself at the single level, the other axes equal, paired by seed
(:func:`single_task_levels`; :attr:`Hypothesis.baseline_at`).

Default hypotheses cover the dataset's study tasks (``datasets.<source>.tasks``, when the spec
names them) but not the random control tasks (``data.extra_tasks: [random]``): no
representation of the image can predict those (a declared ``{task}`` skips them too). Every
other metric is exploratory.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pandas as pd

from mtvae.errors import UserError
from mtvae.evaluate.catalogue import FAMILY_ORDER, family
from mtvae.study.axes import TASKS_KEY, axis_of
from mtvae.study.spec import DatasetSpec

DEFAULT_METRICS: dict[str, tuple[str, ...]] = {  # first key both sides have wins
    "reconstruction": ("nll/iwae", "recon/bce"),
    "generation": ("gen/fd",),
    "representation": ("probe/{task}/accuracy", "probe/{task}/r2"),
    "task": ("task/{task}/accuracy", "task/{task}/r2"),
}
_RANDOM = re.compile(r"^(?:(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)=)?random(?::\d+)?$")


@dataclass(frozen=True)
class Hypothesis:
    """One resolved hypothesis on one dataset: Holm's correction runs over its condition
    points."""

    name: str
    dataset: str
    variant: str
    baseline: str
    metric: str
    baseline_metric: str
    family: str
    task: str | None = None
    test: str = "superiority"
    margin: float = 0.0
    declared: bool = False
    # ((axis, level),): the baseline's values are read at the same point with these levels
    # (the variant against itself at another level); empty: at the same point
    baseline_at: tuple[tuple[str, Any], ...] = ()

    def baseline_point(self, point: str) -> str | None:
        """The point the baseline's values are read at; None at the baseline's own level."""
        if not self.baseline_at:
            return point
        values = json.loads(point)
        if all(values.get(axis) == level for axis, level in self.baseline_at):
            return None
        values |= dict(self.baseline_at)
        return json.dumps(values, separators=(",", ":"))

    @property
    def baseline_label(self) -> str:
        """The baseline as the report names it (``mt at tasks=single`` for a level)."""
        where = ", ".join(f"{axis}={level}" for axis, level in self.baseline_at)
        return f"{self.baseline} at {where}" if where else self.baseline

    @property
    def key(self) -> tuple[str, str]:
        """(name, dataset): one correction family."""
        return self.name, self.dataset


def control_tasks(runs: list[dict]) -> set[str]:
    """Names of the random control tasks the runs' ``data.extra_tasks`` add."""
    names = set()
    for run in runs:
        for entry in run["config"].get("data", {}).get("extra_tasks") or []:
            match = _RANDOM.match(str(entry))
            if match:
                names.add(match["name"] or "random")
    return names


def metric_keys(frame: pd.DataFrame) -> dict[tuple[str, str], list[str]]:
    """``{(dataset, variant): [outcome keys, in order of first appearance]}``."""
    part = frame[frame["kind"] == "outcome"]
    return {k: list(dict.fromkeys(g["metric"])) for k, g in part.groupby(["dataset", "variant"],
                                                                       sort=False)}


def _tasks(pattern: str, keys: list[str]) -> list[str]:
    """Tasks for which ``pattern`` (with ``{task}``) names one of ``keys``."""
    head, _, tail = pattern.partition("{task}")
    regex = re.compile(re.escape(head) + r"(?P<task>[^/@]+)" + re.escape(tail) + "$")
    return list(dict.fromkeys(m["task"] for k in keys if (m := regex.match(k))))


def expand(name: str, dataset: str, variant: str, baseline: str, metric: str,
           baseline_metric: str, keys: dict, controls: set[str] = frozenset(),
           tasks_of_study: list[str] | None = None, **extra) -> list[Hypothesis]:
    """The hypothesis for each task ``{task}`` expands to (one if there is none), kept only
    where both variants have their key on ``dataset``; ``controls`` are skipped, and only
    ``tasks_of_study`` are kept when given."""
    mine, theirs = keys.get((dataset, variant), []), keys.get((dataset, baseline), [])
    tasks = _tasks(metric, mine) if "{task}" in metric else [None]
    out = []
    for task in tasks:
        if task in controls or (task and tasks_of_study and task not in tasks_of_study):
            continue
        fill = (lambda s, t=task: s.replace("{task}", t)) if task else (lambda s: s)
        a, b = fill(metric), fill(baseline_metric)
        if a in mine and b in theirs:
            label = fill(name) if "{task}" in name or task is None else f"{name} [{task}]"
            out.append(Hypothesis(label, dataset, variant, baseline, a, b, family(a) or "",
                                  task, **extra))
    return out


def declared(spec: dict, keys: dict, controls: set[str] = frozenset()) -> list[Hypothesis]:
    """The spec's own hypotheses, expanded per dataset and task (``{task}`` skips the random
    control tasks, and keeps only the dataset's study tasks when the spec names them; a key
    that names a task explicitly keeps it)."""
    out = []
    for h in spec.get("hypotheses") or []:
        for dataset in spec["datasets"]:
            tasks = (spec["datasets"][dataset] or {}).get("tasks")
            out += expand(h["name"], dataset, h["variant"], h["baseline"], h["metric"],
                          h.get("baseline_metric") or h["metric"], keys, controls, tasks,
                          test=h["test"], margin=float(h["margin"]), declared=True,
                          baseline_at=tuple((h.get("baseline_at") or {}).items()))
    return out


def variant_tasks(runs: list[dict]) -> dict[str, tuple[str, tuple[str, ...]]]:
    """``{variant: (model name, its tasks)}`` from the runs' configs (first run of each)."""
    out: dict[str, tuple[str, tuple[str, ...]]] = {}
    for run in runs:
        model = (run.get("config") or {}).get("model") or {}
        if run.get("variant") and run["variant"] not in out and model.get("name"):
            out[run["variant"]] = (model["name"], tuple(model.get("tasks") or ()))
    return out


def single_task_variants(variant: str, tasks: dict) -> list[tuple[str, str]]:
    """``[(single-task variant, its task)]``: variants of the same model as ``variant`` that
    learn exactly one of ``variant``'s tasks while ``variant`` learns more than one."""
    if variant not in tasks:
        return []
    model, mine = tasks[variant]
    if len(mine) < 2:
        return []
    return [(other, theirs[0]) for other, (name, theirs) in tasks.items()
            if other != variant and name == model and len(theirs) == 1 and theirs[0] in mine]


def _level_tasks(spec: dict, dataset: str, axis: str, level: Any) -> list[str] | None:
    """The tasks a level of a task axis (one that sets ``model.tasks``: ``tasks``,
    ``n_tasks``) gives on ``dataset``, as the study set them (None when it names none)."""
    try:
        tasks = axis_of(axis).value(level, DatasetSpec.model_validate(
            spec["datasets"].get(dataset) or {}), dataset, "study spec")
    except (UserError, ValueError):  # a level this dataset cannot give
        return None
    return tasks if isinstance(tasks, list) else None  # not NOT_DEFINED


def single_task_levels(spec: dict, dataset: str,
                       controls: set[str] = frozenset()) -> list[tuple[str, Any, str]]:
    """``[(axis, level, task)]``: levels of a task axis whose task set is one study task (not
    a random control) that a multi-task level of the same axis also learns."""
    out = []
    for axis in (a for a in spec.get("conditions", {}) if axis_of(a).key == TASKS_KEY):
        sets = {json.dumps(v): _level_tasks(spec, dataset, axis, v)
                for v in spec["conditions"][axis]}
        for level in spec["conditions"][axis]:
            mine = sets[json.dumps(level)]
            if not mine or len(mine) != 1 or mine[0] in controls:
                continue
            if any(t and len(t) > 1 and mine[0] in t for t in sets.values()):
                out.append((axis, level, mine[0]))
    return out


def _single_task_level_hypotheses(spec, dataset, keys, controls, runs) -> list[Hypothesis]:
    tasks = variant_tasks(runs or [])
    out = []
    for variant, v in spec["variants"].items():
        if not v.get("baselines") or not tasks.get(variant, ("", ()))[1]:
            continue  # not under study, or a model without task heads
        for axis, level, task in single_task_levels(spec, dataset, controls):
            for pattern in DEFAULT_METRICS["task"]:
                score = pattern.replace("{task}", task)
                out += expand(f"{variant} multitask vs single-task ({axis}={level}): {score}",
                              dataset, variant, variant, score, score, keys,
                              controls=controls, baseline_at=((axis, level),))
    return out


def defaults(spec: dict, keys: dict, controls: set[str] = frozenset(),
             runs: list[dict] | None = None) -> list[Hypothesis]:
    """One primary hypothesis per outcome kind for each variant with baselines, and
    multitask vs single-task where a single-task variant of the same model exists or a task
    axis has a single-task level."""
    out = []
    tasks = variant_tasks(runs or [])
    for dataset in spec["datasets"]:
        study_tasks = (spec["datasets"][dataset] or {}).get("tasks")
        for variant, v in spec["variants"].items():
            out += _defaults_of(dataset, variant, v["baselines"], keys,
                                {"controls": controls, "tasks_of_study": study_tasks})
            for single, task in single_task_variants(variant, tasks):
                for pattern in DEFAULT_METRICS["task"]:
                    score = pattern.replace("{task}", task)
                    out += expand(f"{variant} multitask vs {single} single-task: {score}",
                                  dataset, variant, single, score, score, keys,
                                  controls=controls)
        out += _single_task_level_hypotheses(spec, dataset, keys, controls, runs)
    return out


def _defaults_of(dataset, variant, baselines, keys, which) -> list[Hypothesis]:
    out = []
    for kind in FAMILY_ORDER:
        baseline = baselines.get(kind)
        if baseline is None:
            continue
        found: list[Hypothesis] = []
        for pattern in DEFAULT_METRICS[kind]:
            more = expand(f"{variant} vs {baseline}: {pattern}", dataset, variant, baseline,
                          pattern, pattern, keys, **which)
            if "{task}" not in pattern and more:  # a single key: the first one found wins
                found = more
                break
            seen = {h.task for h in found}
            found += [h for h in more if h.task not in seen]
        out += found
    two_stage = baselines.get("representation")
    if two_stage and not any(k.startswith("task/") for k in keys.get((dataset, two_stage), [])):
        for pattern in DEFAULT_METRICS["task"]:
            score = pattern.rsplit("/", 1)[1]
            out += expand(f"{variant} head vs {two_stage} probe: {{task}} {score}", dataset,
                          variant, two_stage, pattern, f"probe/{{task}}/{score}", keys, **which)
    return out


def resolve(spec: dict, frame: pd.DataFrame, controls: set[str] = frozenset(),
            runs: list[dict] | None = None) -> list[Hypothesis]:
    """The study's hypotheses: declared ones if the spec has any, else the defaults (``runs``
    tell which variants learn a single task)."""
    if frame.empty:
        return []
    keys = metric_keys(frame)
    if spec.get("hypotheses"):
        return declared(spec, keys, controls)
    return defaults(spec, keys, controls, runs)
