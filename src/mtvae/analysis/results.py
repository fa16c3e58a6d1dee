"""A study's stored results turned into estimates: the object the report renders from.

:class:`StudyResults` reads a study's runs and cells (from its ``results.db``, or given in
memory) and computes everything the report shows: the long table of metrics, the per-condition
summary, the hypotheses with their per-point cells and pooled estimates, the tested changes
along each numeric axis, the categorical levels, learnability and the exploratory differences
(every cell and estimate with its runs that did not converge), and, on first use, the
task-weight fronts and Δm (:attr:`StudyResults.front`).
:meth:`StudyResults.estimates` and :meth:`StudyResults.changes` give them as typed records;
:meth:`StudyResults.runs_frame` and :meth:`StudyResults.cells_frame` as pandas DataFrames.

``mtvae.load_study(DIR)`` is :func:`load_study`: the entry for notebooks.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mtvae.analysis import convergence, learnability
from mtvae.analysis.front import FrontAnalysis, analyse
from mtvae.analysis.hypotheses import Hypothesis, control_tasks, resolve
from mtvae.analysis.inference import exploratory_table, hypothesis_table, is_claim, pooled_table
from mtvae.analysis.stats import results_frame, summarize
from mtvae.analysis.trends import all_count, axis_slice, level_effects, numeric_axes, trends
from mtvae.study.axes import point_sort_key, sorted_points
from mtvae.study.expand import point_key


@dataclass(frozen=True)
class Estimate:
    """A hypothesis' pooled effect on one dataset: Δ averaged over its condition points
    (positive favours the variant), its interval at the level of Holm's step across the
    study's hypotheses, the Holm-adjusted p-value and the verdict the interval gives."""

    hypothesis: str
    dataset: str
    kind: str  # the outcome kind: reconstruction, generation, representation, task
    variant: str
    baseline: str
    metric: str
    baseline_metric: str
    test: str  # superiority | noninferiority
    margin: float  # the non-inferiority margin (0 for superiority)
    smallest_effect: float  # the effect worth a claim; 0 when none is declared
    mean_variant: float
    mean_baseline: float
    diff: float
    low: float
    high: float
    p: float
    p_adjusted: float
    level: float  # the two-sided level of [low, high]
    verdict: str
    n_seeds: int
    n_points: int
    seeds_needed: float  # for 80% power at the observed pooled Δ and spread
    not_above_chance: tuple[str, ...] = ()  # sides not shown above chance at some point
    not_converged: int = 0  # runs behind it that did not converge (when recorded)
    n_runs: int = 0  # distinct runs behind it (both models, every point and seed)
    points_not_converged: int = 0  # its condition points with a run that did not converge

    @property
    def claim(self) -> bool:
        """Whether the Answer claims it (:func:`~mtvae.analysis.inference.is_claim`)."""
        return is_claim(self.verdict, self.not_converged)


@dataclass(frozen=True)
class Change:
    """How a hypothesis' effect changes between two neighbouring levels of a numeric axis:
    mean Δ below and above the split, and the tested change (above − below) with its
    interval; ``crossover`` when both sides are significant with opposite signs (each at
    Bonferroni's level over the hypothesis' splits and the study's hypotheses)."""

    hypothesis: str
    dataset: str
    axis: str
    low: Any
    high: Any
    diff_below: float
    diff_above: float
    change: float
    change_low: float
    change_high: float
    p_adjusted: float
    crossover: bool


@dataclass
class StudyResults:
    """Everything read from a study's database, and the statistics computed from it."""

    spec: dict[str, Any]
    runs: list[dict[str, Any]]
    cells: list[dict[str, Any]]
    sessions: list[dict[str, Any]] = field(default_factory=list)
    store: Any = None  # the open Store while a report is built (artifacts), else None

    def __post_init__(self) -> None:
        # Rows no cell points at are left from an earlier expansion (e.g. new config defaults
        # changed the run ids); the results are about the current grid only.
        referenced = {c["run_id"] for c in self.cells}
        self.runs = [r for r in self.runs if r["run_id"] in referenced]
        self.frame = results_frame(self.cells, self.runs)
        self.summary = summarize(self.frame) if not self.frame.empty else pd.DataFrame()
        self.order = point_sort_key(self.spec)
        self.points = sorted_points((c["point"] for c in self.cells), self.spec)
        self.models = {n: v["model"] for n, v in self.spec["variants"].items()}
        self.default_values = {a: self.spec["default"].get(a, v[0])
                               for a, v in self.spec["conditions"].items()}
        self.default = point_key(self.default_values)
        self.run_by_id = {r["run_id"]: r for r in self.runs}
        self.alpha = float(self.spec["alpha"])
        self._infer()

    def _infer(self) -> None:
        """Hypotheses, their cells and pooled estimates, exploratory differences, changes,
        levels, learnability."""
        alpha = self.alpha
        self.hypotheses: list[Hypothesis] = resolve(self.spec, self.frame,
                                                    control_tasks(self.runs), self.runs)
        self.table = hypothesis_table(self.frame, self.hypotheses, alpha, self.order)
        self.scores = learnability.scores(self.summary)
        learned_at = learnability.lookup(self.scores)
        by_cell = convergence.runs_by_cell(self.cells, self.run_by_id)
        if not self.table.empty:
            self.table["unlearned"] = [learnability.unlearned_sides(r, learned_at)
                                       for r in self.table.itertuples()]
            behind = [convergence.behind(by_cell, [(r.dataset, r.point, r.variant),
                                                   (r.dataset, r.baseline_point, r.baseline)],
                                         r.family)
                      for r in self.table.itertuples()]
            self.table["runs"] = [runs for runs, _ in behind]
            self.table["unconverged_runs"] = [ids for _, ids in behind]
            self.table["not_converged"] = [len(ids) for _, ids in behind]
            self.table["claim"] = _claims(self.table)
        self.pooled = pooled_table(self.table, alpha)
        if not self.pooled.empty:
            self.pooled["unlearned"] = [self._unlearned_of(r) for r in self.pooled.itertuples()]
            cells = [self._of(r.hypothesis, r.dataset) for r in self.pooled.itertuples()]
            # distinct runs: cells at several points may share one (a model the axis does
            # not change)
            self.pooled["n_runs"] = [len({i for ids in c["runs"] for i in ids}) for c in cells]
            self.pooled["not_converged"] = [
                len({i for ids in c["unconverged_runs"] for i in ids}) for c in cells]
            self.pooled["points_not_converged"] = [int((c["not_converged"] > 0).sum())
                                                   for c in cells]
            self.pooled["claim"] = _claims(self.pooled)
        baselines = {n: v["baselines"] for n, v in self.spec["variants"].items()}
        self.exploratory = exploratory_table(self.frame, baselines, self.hypotheses, self.order)
        all_at = {a: all_count(self.runs, self.cells, a) for a in numeric_axes(self.spec)}
        self.trends, self.changes_table = trends(self.spec, self.frame, self.table,
                                                 self.hypotheses, alpha, all_at)
        self.crossovers = (self.changes_table[self.changes_table["crossover"]]
                           if not self.changes_table.empty else self.changes_table)
        self.levels = level_effects(self.spec, self.frame, self.hypotheses, alpha)
        if not self.levels.empty:
            self.levels["not_converged"] = [self._level_not_converged(r, by_cell)
                                            for r in self.levels.itertuples()]
            self.levels["unlearned"] = [self._level_unlearned(r, learned_at)
                                        for r in self.levels.itertuples()]

    @functools.cached_property
    def front(self) -> FrontAnalysis:
        """The task-weight fronts, their verdicts and placements, and Δm
        (:mod:`mtvae.analysis.front`), computed once however many report parts show them."""
        return analyse(self.spec, self.runs, self.cells, self.alpha)

    def _level_points(self, row) -> list[str]:
        """The condition points of a categorical level comparison: at the level, at the
        reference level."""
        at = axis_slice(self.spec, row.axis)
        return [next((p for p, lv in at.items() if lv == level), "")
                for level in (row.level, row.reference)]

    def _level_not_converged(self, row, by_cell) -> int:
        """Runs behind a categorical level comparison (the variant at the level and at the
        reference level) that did not converge."""
        sides = [(row.dataset, point, row.variant) for point in self._level_points(row)]
        return len(convergence.behind(by_cell, sides, row.family)[1])

    def _level_unlearned(self, row, learned_at: dict) -> list[str]:
        """The levels of a categorical comparison at which the variant is not shown above
        chance on the metric's task."""
        key = learnability.score_key(row.metric)
        return [str(level) for level, point in zip((row.level, row.reference),
                                                   self._level_points(row), strict=True)
                if key and learned_at.get((row.dataset, point, row.variant, key)) is False]

    def _of(self, name: str, dataset: str) -> pd.DataFrame:
        return self.table[(self.table["hypothesis"] == name) & (self.table["dataset"] == dataset)]

    def _unlearned_of(self, row) -> list[str]:
        sides = self._of(row.hypothesis, row.dataset)["unlearned"]
        return list(dict.fromkeys(v for side in sides for v in side))

    # --- typed records and frames -------------------------------------------------------
    def estimates(self) -> list[Estimate]:
        """The pooled estimate of every hypothesis and dataset."""
        return [Estimate(r.hypothesis, r.dataset, r.family, r.variant, r.baseline, r.metric,
                         r.baseline_metric, r.test, float(r.margin), float(r.sesoi),
                         r.mean_variant, r.mean_baseline, r.diff, r.diff_low, r.diff_high,
                         r.p_t, r.p_adj, r.level, r.verdict, int(r.n), int(r.n_points),
                         r.seeds_needed, tuple(r.unlearned), int(r.not_converged),
                         int(r.n_runs), int(r.points_not_converged))
                for r in self.pooled.itertuples()]

    def changes(self, crossovers_only: bool = False) -> list[Change]:
        """Every tested change between neighbouring levels (or only the crossovers)."""
        frame = self.crossovers if crossovers_only else self.changes_table
        return [Change(r.hypothesis, r.dataset, r.axis, r.low, r.high, r.diff_below,
                       r.diff_above, r.change, r.change_low, r.change_high, r.p_change_adj,
                       bool(r.crossover)) for r in frame.itertuples()]

    def runs_frame(self) -> pd.DataFrame:
        """One row per run: id, variant, dataset, seed, model, status, and its metrics as
        columns."""
        rows = [{"run_id": r["run_id"], "variant": r.get("variant"), "dataset": r.get("dataset"),
                 "seed": r.get("seed"), "model": r.get("model"), "status": r.get("status"),
                 **{k: v for k, v in (r.get("metrics") or {}).items()
                    if isinstance(v, int | float | str | bool)}} for r in self.runs]
        return pd.DataFrame(rows)

    def cells_frame(self) -> pd.DataFrame:
        """One row per (dataset, condition point, variant, seed) cell with its run id, and
        one column ``axis:<name>`` per condition axis."""
        import json

        rows = [{**c, **{f"axis:{k}": v for k, v in json.loads(c["point"]).items()}}
                for c in self.cells]
        return pd.DataFrame(rows)

    def cells_table(self) -> pd.DataFrame:
        """The per-point cells of every hypothesis (one row per hypothesis, dataset, point)."""
        return self.table.drop(columns=["seed_diffs"], errors="ignore").copy()


def read_store(store) -> StudyResults:
    """The results of the study in an open :class:`~mtvae.study.store.Store`."""
    from mtvae.errors import UserError

    spec = store.meta("spec")
    if spec is None:
        raise UserError(f"'{store.path}' holds no study spec; is it a study directory's "
                        "results.db?")
    return StudyResults(spec, store.runs(), store.cells(), store.meta("sessions", []), store)


def load_study(study_dir: str | Path) -> StudyResults:
    """Read a study directory's ``results.db`` (its results are not changed) and compute its
    estimates: ``results.runs_frame()``, ``results.cells_frame()``, ``results.estimates()``,
    ``results.changes()``."""
    from mtvae.errors import UserError
    from mtvae.study.store import Store

    path = Path(study_dir) / "results.db"
    if not path.is_file():
        raise UserError(f"'{study_dir}' has no results.db: pass the directory `mtvae study "
                        "--out DIR` wrote")
    store = Store(path, create=False)
    try:
        results = read_store(store)
    finally:
        store.close()
    results.store = None
    return results


def _claims(frame: pd.DataFrame) -> list[bool]:
    """Per row of a cell or pooled table: whether it is a claim (:func:`is_claim`)."""
    return [is_claim(v, int(n)) for v, n in zip(frame["verdict"], frame["not_converged"],
                                                 strict=True)]
