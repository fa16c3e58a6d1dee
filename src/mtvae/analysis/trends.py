"""How a hypothesis' effect changes along the condition axes: tested changes, crossovers, trends.

* **Numeric axes** (label fraction or count, training-set size, β, latent size, any numeric
  dotted key): the slice of points with every other axis at its default, levels sorted
  numerically.

  - **Changes** (:func:`split_tests`): for each place between two neighbouring levels, each
    seed's mean Δ over the levels below it and over the levels above it. The change is the
    per-seed difference (above − below), t-tested over the seeds — a test of the interaction,
    with seed-to-seed offsets cancelled. Bonferroni over every split of every numeric axis of
    the hypothesis; the printed intervals are at that level.
  - **Crossover** (:func:`crossover_split`): only where the effect is significantly of opposite
    signs on the two sides (both sides' intervals exclude 0, with opposite signs; an
    intersection-union test, so each side at the family's level). A crossover is a claim of
    the Answer's first screen, like a pooled verdict, so its family is the pooled verdicts'
    one: Bonferroni over the hypothesis' splits and over the study's hypotheses (each
    hypothesis and dataset of the pooled table). A change of verdict between two levels is not
    a crossover: the verdicts of two cells can differ when the effects do not.
  - **Trend**: per seed, the least-squares slope of Δ against the level (its log10 when the
    levels span more than 10x; ``all`` at its real labelled count), t-tested over the seeds.

* **Categorical axes** (task sets, weighting strategies): the variant against itself, each
  level against the axis' default level (``with-random`` vs ``related``, each strategy vs
  ``fixed``), paired by seed, with Bonferroni-simultaneous intervals across the levels of that
  axis and verdicts read from them.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from mtvae.analysis.hypotheses import Hypothesis
from mtvae.analysis.inference import compare, pair, value_index, verdict
from mtvae.analysis.stats import interval_at, t_interval
from mtvae.study import axes as A
from mtvae.study.expand import point_key


def axis_slice(spec: dict, axis: str) -> dict[str, object]:
    """``{point JSON: level}`` of the points with every axis but ``axis`` at its default."""
    conditions = spec.get("conditions", {})
    default = {a: spec.get("default", {}).get(a, v[0]) for a, v in conditions.items()}
    out = {}
    for level in A.ordered(conditions[axis]):
        point = {a: (level if a == axis else default[a]) for a in conditions}
        out[point_key(point)] = level
    return out


def numeric_axes(spec: dict) -> list[str]:
    """Condition axes with at least two levels, all numeric."""
    return [a for a, v in spec.get("conditions", {}).items() if len(v) > 1 and A.is_numeric(v)]


def categorical_axes(spec: dict) -> list[str]:
    """Condition axes with at least two levels that are not numeric."""
    return [a for a, v in spec.get("conditions", {}).items()
            if len(v) > 1 and not A.is_numeric(v)]


def trend_test(diffs: dict[float, pd.Series]) -> dict:
    """Per-seed least-squares slopes of Δ against position, t-tested against 0 (seeds that
    have every level only). Returns slope, slope_low, slope_high, p, n_seeds."""
    xs = sorted(diffs)
    seeds = sorted(set.intersection(*(set(diffs[x].index) for x in xs))) if xs else []
    out = {"slope": math.nan, "slope_low": math.nan, "slope_high": math.nan, "p": math.nan,
           "n_seeds": len(seeds)}
    if len(xs) < 2 or not seeds:
        return out
    x = np.asarray(xs, dtype=float)
    y = np.array([[diffs[p].loc[s] for p in xs] for s in seeds], dtype=float)  # seeds x levels
    slopes = ((x - x.mean()) * (y - y.mean(axis=1, keepdims=True))).sum(axis=1) / (
        (x - x.mean()) ** 2).sum()
    mean, low, high = t_interval(slopes)
    out.update(slope=mean, slope_low=low, slope_high=high)
    if len(seeds) > 1:
        sd = slopes.std(ddof=1)
        if sd > 1e-12 * max(1.0, abs(mean)):
            t = mean / (sd / math.sqrt(len(seeds)))
            out["p"] = float(2 * scipy_stats.t.sf(abs(t), len(seeds) - 1))
    return out


def _side(values: np.ndarray, level: float) -> tuple[float, float, float, float]:
    """``(mean, low, high, t)`` of per-seed values at two-sided ``level``."""
    mean = float(values.mean())
    if len(values) < 2:
        return mean, math.nan, math.nan, math.nan
    sd = float(values.std(ddof=1))
    se = sd / math.sqrt(len(values))
    if se <= 1e-12 * max(1.0, abs(mean)):
        return mean, mean, mean, (math.inf if mean else 0.0) * (1 if mean >= 0 else -1)
    low, high = interval_at(mean, se, len(values) - 1, level)
    return mean, low, high, mean / se


def split_tests(y: np.ndarray, level: float) -> list[dict]:
    """For a seeds x levels array of Δ (levels in order), one row per split between neighbours
    ``s`` and ``s + 1``: each side's mean Δ with its interval, the change (above − below, per
    seed) with its interval and p-value, all at two-sided ``level``."""
    n, k = y.shape
    out = []
    for s in range(1, k):
        below, above = y[:, :s].mean(axis=1), y[:, s:].mean(axis=1)
        left, right, change = _side(below, level), _side(above, level), _side(above - below,
                                                                               level)
        p = (float(2 * scipy_stats.t.sf(abs(change[3]), n - 1))
             if n > 1 and math.isfinite(change[3]) else (0.0 if n > 1 and change[0] else math.nan))
        out.append({"split": s, "diff_below": left[0], "below_low": left[1],
                    "below_high": left[2], "t_below": left[3], "diff_above": right[0],
                    "above_low": right[1], "above_high": right[2], "t_above": right[3],
                    "change": change[0], "change_low": change[1], "change_high": change[2],
                    "t_change": change[3], "p_change": p})
    return out


def _significant(low: float, high: float) -> int:
    """+1 / −1 when the interval lies above / below 0, else 0."""
    return 1 if low > 0 else -1 if high < 0 else 0


def crossover_split(splits: list[dict]) -> int | None:
    """The split where Δ is significantly positive on one side and significantly negative on
    the other, or None; where several are, the least-squares change point: the split whose
    two side means explain most of the spread of the level means (s(k − s)/k · (above −
    below)², k levels), the place a single step in the effect is most likely to be."""
    k = len(splits) + 1
    best, strength = None, -1.0
    for row in splits:
        below = _significant(row["below_low"], row["below_high"])
        above = _significant(row["above_low"], row["above_high"])
        if below * above < 0:
            s = row["split"]
            explained = s * (k - s) / k * (row["diff_above"] - row["diff_below"]) ** 2
            if explained > strength:
                best, strength = s, explained
    return best


def all_count(runs: list[dict], cells: list[dict], axis: str) -> float | None:
    """The real number of labels at a label-count axis' ``all`` level: the training-set size
    its runs recorded (``data.n_train``; else the probes' ``n_train@all``), None if unknown."""
    if axis != "label_count":
        return None
    at_all = {c["run_id"] for c in cells if json.loads(c["point"]).get(axis) == A.ALL}
    counts = []
    for run in runs:
        if run["run_id"] not in at_all:
            continue
        n = (run.get("config") or {}).get("data", {}).get("n_train")
        if isinstance(n, int | float) and not isinstance(n, bool):
            counts.append(float(n))
            continue
        counts += [float(v) for k, v in (run.get("metrics") or {}).items()
                   if re.fullmatch(r"probe/[^/]+/n_train@all", k) and isinstance(v, int | float)]
    return max(counts) if counts else None


# The columns of a split row that the crossover decides on: each side's interval and t, at the
# crossover's level rather than the change's.
SIDE_KEYS = ("below_low", "below_high", "t_below", "above_low", "above_high", "t_above")


def trends(spec: dict, frame: pd.DataFrame, table: pd.DataFrame,
           hypotheses: list[Hypothesis], alpha: float = 0.05,
           all_at: dict[str, float | None] | None = None
           ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(trends, changes)`` for every hypothesis and numeric axis: the trend test, and every
    split's tested change with ``crossover`` True at the one crossover split, if any. The
    change is at ``alpha`` over the hypothesis' splits; the sides (``SIDE_KEYS``) and the
    crossover at ``alpha`` over those splits times the study's hypotheses (``cross_level``).
    ``all_at``: per axis, the real count ``all`` stands for (:func:`all_count`)."""
    trend_rows, change_rows = [], []
    if table.empty:
        return pd.DataFrame(), pd.DataFrame()
    all_at = all_at or {}
    axes = numeric_axes(spec)
    tested = table.groupby(["hypothesis", "dataset"], sort=False).ngroups  # the pooled family
    for (name, dataset), rows in table.groupby(["hypothesis", "dataset"], sort=False):
        by_point = rows.set_index("point")
        slices = []
        for axis in axes:
            levels = [(p, lv) for p, lv in axis_slice(spec, axis).items() if p in by_point.index]
            if len(levels) >= 2:
                slices.append((axis, levels))
        family = sum(len(levels) - 1 for _, levels in slices)
        first = rows.iloc[0]
        for axis, levels in slices:
            values = [lv for _, lv in levels]
            place = A.positions(values, all_at.get(axis))
            diffs = {lv: pd.Series(by_point.loc[p, "seed_diffs"]) for p, lv in levels}
            trend_rows.append({"hypothesis": name, "dataset": dataset, "axis": axis,
                               "levels": values, "log": A.log_scale(values),
                               "positions": [place[v] for v in values],
                               "points": [p for p, _ in levels],
                               **trend_test({place[lv]: d for lv, d in diffs.items()})})
            y = pd.DataFrame(diffs).dropna().to_numpy(dtype=float)
            if len(y) == 0:
                continue
            level, cross_level = alpha / max(1, family), alpha / max(1, family * tested)
            splits, sides = split_tests(y, level), split_tests(y, cross_level)
            cross = crossover_split(sides)
            for row, side in zip(splits, sides, strict=True):
                row.update({key: side[key] for key in SIDE_KEYS})
                change_rows.append({
                    "hypothesis": name, "dataset": dataset, "family": first["family"],
                    "axis": axis, "low": values[row["split"] - 1], "high": values[row["split"]],
                    "n_seeds": len(y), "tests": family, "level": level,
                    "cross_level": cross_level, "cross_tests": family * tested, **row,
                    "p_change_adj": min(1.0, row["p_change"] * family)
                    if row["p_change"] == row["p_change"] else math.nan,
                    "crossover": row["split"] == cross})
    return pd.DataFrame(trend_rows), pd.DataFrame(change_rows)


def level_effects(spec: dict, frame: pd.DataFrame, hypotheses: list[Hypothesis],
                  alpha: float) -> pd.DataFrame:
    """The variant against itself on each categorical axis: every level vs the default one."""
    rows = []
    if frame.empty:
        return pd.DataFrame()
    index = value_index(frame)
    direction = frame.drop_duplicates("metric").set_index("metric")["higher_is_better"]
    seen = set()
    for h in hypotheses:
        for axis in categorical_axes(spec):
            if (h.dataset, h.variant, h.metric, axis) in seen:
                continue
            seen.add((h.dataset, h.variant, h.metric, axis))
            points = list(axis_slice(spec, axis).items())
            default = spec.get("default", {}).get(axis, spec["conditions"][axis][0])
            ref = next((p for p, lv in points if lv == default), None)
            group = []
            for point, level in points:
                if point == ref:
                    continue
                paired = pair(index, h.dataset, point, h.variant, h.metric, h.variant, h.metric)
                base = pair(index, h.dataset, ref, h.variant, h.metric, h.variant, h.metric)
                if paired is None or base is None:
                    continue
                a = pd.Series(paired[0], index=paired[2])
                b = pd.Series(base[0], index=base[2])
                seeds = sorted(set(a.index) & set(b.index))
                if not seeds:
                    continue
                group.append({"dataset": h.dataset, "variant": h.variant, "metric": h.metric,
                              "family": h.family, "axis": axis, "level": level,
                              "reference": default, "test": "superiority", "margin": 0.0,
                              "sesoi": 0.0,
                              **compare(a.loc[seeds].to_numpy(), b.loc[seeds].to_numpy(),
                                        bool(direction.get(h.metric, True)))})
            if group:
                part = pd.DataFrame(group)
                m = max(1, int(part["p_t"].notna().sum()))
                part["p_t_adj"] = np.minimum(1.0, m * part["p_t"].to_numpy(dtype=float))
                bounds = [interval_at(r.diff, r.sd / math.sqrt(r.n), r.n - 1, alpha / m)
                          if r.n > 1 and r.sd == r.sd else (math.nan, math.nan)
                          for r in part.itertuples()]
                part["diff_low"] = [b[0] for b in bounds]
                part["diff_high"] = [b[1] for b in bounds]
                part["verdict"] = [verdict(r) for r in part.itertuples()]
                rows.append(part)
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
