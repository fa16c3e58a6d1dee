"""How a hypothesis' effect changes along the condition axes: trends, crossovers, levels.

* **Numeric axes** (label fraction or count, training-set size, β, latent size, any numeric
  dotted key): the slice of points with every other axis at its default, levels sorted
  numerically. The trend test fits, for each seed, the least-squares slope of the paired
  difference Δ against the level (its log10 when the levels span more than 10x; see
  :mod:`mtvae.study.axes`) and t-tests the seeds' slopes against 0 — seeds are the blocks, so
  seed-to-seed offsets cancel. A **crossover** is a pair of neighbouring levels between which
  the verdict or the sign of the mean Δ changes; it is named with both levels. A sign change
  between two levels without a verdict is listed (``verdict_change`` False) but is noise as
  far as the seeds can tell, so the Answer's sentences name only verdict changes.
* **Categorical axes** (task sets, weighting strategies): the variant against itself, each
  level against the axis' default level (``with-random`` vs ``related``, each strategy vs
  ``fixed``), paired by seed, Holm-corrected across the levels of that axis.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from mtvae.study import axes as A
from mtvae.study.expand import point_key
from mtvae.study.hypotheses import Hypothesis
from mtvae.study.inference import CONSTANT, compare, pair, value_index, verdict
from mtvae.study.stats import holm, t_interval


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


def _seed_diffs(index, h: Hypothesis, point: str, sign: float) -> pd.Series | None:
    paired = pair(index, h.dataset, point, h.variant, h.metric, h.baseline, h.baseline_metric)
    if paired is None:
        return None
    a, b, seeds = paired
    return pd.Series(sign * (a - b), index=seeds)


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


def trends(spec: dict, frame: pd.DataFrame, table: pd.DataFrame,
           hypotheses: list[Hypothesis]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(trends, crossovers)`` for every hypothesis and numeric axis."""
    trend_rows, cross_rows = [], []
    if table.empty:
        return pd.DataFrame(), pd.DataFrame()
    index = value_index(frame)
    direction = frame.drop_duplicates("metric").set_index("metric")["higher_is_better"]
    for h in hypotheses:
        rows = table[(table["hypothesis"] == h.name) & (table["dataset"] == h.dataset)]
        by_point = rows.set_index("point")
        sign = 1.0 if direction.get(h.metric, True) else -1.0
        for axis in numeric_axes(spec):
            levels = [(p, lv) for p, lv in axis_slice(spec, axis).items() if p in by_point.index]
            if len(levels) < 2:
                continue
            place = A.positions([lv for _, lv in levels])
            diffs = {place[lv]: d for p, lv in levels
                     if (d := _seed_diffs(index, h, p, sign)) is not None}
            trend_rows.append({"hypothesis": h.name, "dataset": h.dataset, "axis": axis,
                               "levels": [lv for _, lv in levels],
                               "log": A.log_scale([lv for _, lv in levels]),
                               **trend_test(diffs)})
            cross_rows += _crossovers(h, axis, [(lv, by_point.loc[p]) for p, lv in levels])
    return pd.DataFrame(trend_rows), pd.DataFrame(cross_rows)


def _crossovers(h: Hypothesis, axis: str, levels: list) -> list[dict]:
    out = []
    for (lo, a), (hi, b) in zip(levels, levels[1:], strict=False):
        flips = np.sign(a["diff"]) * np.sign(b["diff"]) < 0
        if a["verdict"] != b["verdict"] or flips:
            out.append({"hypothesis": h.name, "dataset": h.dataset, "family": h.family,
                        "axis": axis, "low": lo, "high": hi,
                        "verdict_low": a["verdict"], "verdict_high": b["verdict"],
                        "diff_low": a["diff"], "diff_high": b["diff"],
                        "ci_low": (a["diff_low"], a["diff_high"]),
                        "ci_high": (b["diff_low"], b["diff_high"]), "sign_change": bool(flips),
                        "verdict_change": a["verdict"] != b["verdict"]
                        and CONSTANT not in (a["verdict"], b["verdict"])})
    return out


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
                              **compare(a.loc[seeds].to_numpy(), b.loc[seeds].to_numpy(),
                                        bool(direction.get(h.metric, True)))})
            if group:
                part = pd.DataFrame(group)
                part["p_t_holm"] = holm(part["p_t"].to_numpy())
                part["p_inf_holm"] = part["p_ni_holm"] = math.nan
                part["verdict"] = [verdict(r, alpha) for r in part.itertuples()]
                rows.append(part)
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
