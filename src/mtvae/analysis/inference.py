"""Inference per hypothesis: per-point paired effects, the pooled effect, verdicts, power.

For a hypothesis (variant vs baseline on a metric, one dataset) and each condition point, the
values of the two variants are paired by seed (the baseline's at the same point, or at its
own level of an axis: :attr:`~mtvae.analysis.hypotheses.Hypothesis.baseline_at`) and the
difference oriented by the metric's direction, so that **positive favours the variant**.

* **The pooled effect** (:func:`pooled_table`, the headline): Δ averaged over the hypothesis'
  condition points, from every seed at every point (:func:`~mtvae.analysis.stats.pooled_test`),
  with Holm's correction across **all the study's hypotheses** — the family a reader asks
  about ("does the MT-VAE win on X?"). Its interval is the t-interval at the level Holm's step
  tested it at (:func:`~mtvae.analysis.stats.holm_levels`), so it excludes 0 exactly when the
  verdict is better or worse.
* **Per point** (:func:`hypothesis_table`, the detail): Δ with its t-interval **simultaneous
  over the hypothesis' distinct cells** (Bonferroni: level α/m, m the number of distinct cells;
  cells whose paired differences are identical in every seed, e.g. a model that does not read
  the axis, count once), the paired t-test's p-value adjusted the same way (min(1, m·p)),
  the Wilcoxon signed-rank test and d_z (with g_z, its small-sample correction).

Verdicts (:func:`verdict`) read the printed interval [lo, hi], so the two always agree:

* superiority: ``better`` when lo > 0, ``worse`` when hi < 0; ``equivalent`` (within ±m, the
  smallest effect of interest) when −m < lo and hi < m — two one-sided tests (TOST);
* non-inferiority with margin m (interval with each tail at the adjusted level, so a bound
  beyond −m is the one-sided test at that level): ``better`` when lo > 0, ``worse`` when
  hi < −m, ``equivalent`` when −m < lo and hi < m (TOST), ``non-inferior`` when lo > −m;
* ``no evidence`` otherwise — the data cannot tell, and the interval says which effects they
  rule out;
* ``constant``: the difference is the same in every seed (a fixed property of the
  configurations, e.g. a width): no test applies, no p-value and no verdict is given.

The smallest effect of interest m is the hypothesis' ``margin`` when it declares one, else
the metric catalogue's default for the outcome
(:func:`~mtvae.evaluate.catalogue.smallest_effect`).

Power: per point, the smallest |Δ| the seeds detect with 80% probability at the observed spread
and the cell's level; per hypothesis, the seeds the pooled effect would need at its spread.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mtvae.analysis.hypotheses import Hypothesis
from mtvae.analysis.stats import (
    detectable_effect,
    holm,
    holm_levels,
    interval_at,
    paired_test,
    pooled_test,
    seeds_needed,
)
from mtvae.evaluate.catalogue import smallest_effect

VERDICTS = ("better", "worse", "equivalent", "non-inferior", "no evidence")  # constant: none
CLAIMS = ("better", "worse")  # the verdicts that claim a difference
CONSTANT = "constant"
POWER = 0.8


def is_claim(verdict: str, not_converged: int) -> bool:
    """Whether a pooled estimate is one of the Answer's claims: a difference (better or worse)
    between models whose runs converged. With a run behind it that did not (the report's ‡;
    for reconstruction and generation also its generative objective), its effect describes
    where training stopped, not the converged models, and the Answer lists it apart."""
    return verdict in CLAIMS and not not_converged


def value_index(frame: pd.DataFrame) -> pd.Series:
    """Values indexed by (dataset, point, variant, metric, seed), for pairing."""
    index = frame.set_index(["dataset", "point", "variant", "metric", "seed"])["value"]
    return index[~index.index.duplicated()].sort_index()


def _values(index: pd.Series, dataset, point, variant, metric) -> pd.Series | None:
    try:
        part = index.loc[(dataset, point, variant, metric)]
    except KeyError:
        return None
    return part if len(part) else None


def pair(index: pd.Series, dataset: str, point: str, variant: str, metric: str, baseline: str,
         baseline_metric: str, baseline_point: str | None = None
         ) -> tuple[np.ndarray, np.ndarray, list[int]] | None:
    """The two variants' values on their common seeds (None when they share none); the
    baseline's at ``baseline_point`` when given (else at ``point``)."""
    a = _values(index, dataset, point, variant, metric)
    b = _values(index, dataset, baseline_point or point, baseline, baseline_metric)
    if a is None or b is None:
        return None
    seeds = sorted(set(a.index) & set(b.index))
    if not seeds:
        return None
    return a.loc[seeds].to_numpy(), b.loc[seeds].to_numpy(), seeds


def compare(a: np.ndarray, b: np.ndarray, higher_is_better: bool, margin: float = 0.0) -> dict:
    """Paired statistics of ``a`` against ``b``, oriented so positive favours ``a``."""
    sign = 1.0 if higher_is_better else -1.0
    test = paired_test(sign * (a - b), margin)
    return {"mean_variant": float(a.mean()), "mean_baseline": float(b.mean()), **test}


def _sesoi(h: Hypothesis) -> float:
    """The hypothesis' smallest effect of interest: its margin, else the catalogue's."""
    if h.margin > 0:
        return float(h.margin)
    return float(smallest_effect(h.metric) or 0.0)


def hypothesis_table(frame: pd.DataFrame, hypotheses: list[Hypothesis], alpha: float,
                     point_order=None) -> pd.DataFrame:
    """One row per hypothesis and condition point: Δ with its simultaneous interval
    (``diff_low``/``diff_high``), adjusted p-values, verdict and detectable effect. Points come
    in ``point_order`` (a sort key). The per-seed differences are in ``seed_diffs``."""
    if frame.empty or not hypotheses:
        return pd.DataFrame()
    index = value_index(frame)
    direction = frame.drop_duplicates("metric").set_index("metric")["higher_is_better"]
    points = list(dict.fromkeys(frame["point"]))
    if point_order is not None:
        points.sort(key=point_order)
    rows = []
    for h in hypotheses:
        for point in points:
            base = h.baseline_point(point)
            paired = base and pair(index, h.dataset, point, h.variant, h.metric, h.baseline,
                                   h.baseline_metric, base)
            if not paired:
                continue
            sign = 1.0 if bool(direction[h.metric]) else -1.0
            rows.append({"hypothesis": h.name, "dataset": h.dataset, "point": point,
                         "variant": h.variant, "baseline": h.baseline, "baseline_point": base,
                         "baseline_label": h.baseline_label, "metric": h.metric,
                         "baseline_metric": h.baseline_metric, "family": h.family,
                         "task": h.task, "test": h.test, "margin": h.margin,
                         "sesoi": _sesoi(h), "declared": h.declared,
                         "seed_diffs": dict(zip(paired[2], (sign * (paired[0] - paired[1])
                                                            ).tolist(), strict=True)),
                         **compare(paired[0], paired[1], bool(direction[h.metric]), h.margin)})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    parts = [_correct(group, alpha) for _, group in table.groupby(["hypothesis", "dataset"],
                                                                   sort=False)]
    return pd.concat(parts, ignore_index=True)


def _cell_key(row) -> tuple:
    """Cells with the same paired differences in every seed are one cell of the family."""
    return tuple(sorted((s, round(v, 12)) for s, v in row["seed_diffs"].items()))


def _correct(group: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Bonferroni over the hypothesis' distinct cells: simultaneous intervals, adjusted
    p-values, verdicts from the intervals, detectable effect at the cell's level."""
    group = group.copy()
    tested = group[group["p_t"].notna()]
    m = max(1, len({_cell_key(r) for _, r in tested.iterrows()}))
    group["family_size"] = m
    group["level"] = alpha / m
    for column in ("p_t", "p_ni", "p_inf"):
        group[f"{column}_adj"] = np.minimum(1.0, m * group[column].to_numpy(dtype=float))
    group["p_w_unadj"] = group["p_w"]
    bounds = [_bounds(r["diff"], r["sd"], r["n"], r["test"], alpha / m)
              for _, r in group.iterrows()]
    group["diff_low"] = [b[0] for b in bounds]
    group["diff_high"] = [b[1] for b in bounds]
    group["verdict"] = [verdict(r) for r in group.itertuples()]
    group["detectable"] = [detectable_effect(r.sd, r.n, alpha / m, POWER)
                           for r in group.itertuples()]
    return group


def _bounds(diff: float, sd: float, n: int, test: str, level: float) -> tuple[float, float]:
    """The printed interval: two-sided at ``level`` (superiority) or with each tail at
    ``level`` (non-inferiority: its lower bound is the one-sided test)."""
    if not n > 1 or not sd >= 0 or (isinstance(sd, float) and math.isnan(sd)):
        return math.nan, math.nan
    two_sided = 2 * level if test == "noninferiority" else level
    return interval_at(diff, sd / math.sqrt(n), n - 1, min(two_sided, 1.0))


def verdict(row) -> str:
    """better / worse / equivalent / non-inferior / no evidence from the printed interval
    (see the module docstring), or constant."""
    if getattr(row, "constant", False):
        return CONSTANT
    low, high = row.diff_low, row.diff_high
    if math.isnan(low) or math.isnan(high):
        return "no evidence"
    margin = float(row.margin) if row.test == "noninferiority" else 0.0
    sesoi = float(getattr(row, "sesoi", 0.0) or margin)
    if low > 0:
        return "better"
    if high < -margin:
        return "worse"
    if sesoi > 0 and -sesoi < low and high < sesoi:
        return "equivalent"
    if row.test == "noninferiority" and low > -margin:
        return "non-inferior"
    return "no evidence"


def pooled_table(table: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """One row per hypothesis and dataset: Δ averaged over its condition points from every
    seed at every point, Holm across every hypothesis of the study, the interval at Holm's
    level for it, the verdict, each model's mean, and the seeds the effect would need."""
    if table.empty:
        return pd.DataFrame()
    rows = []
    for (name, dataset), group in table.groupby(["hypothesis", "dataset"], sort=False):
        first = group.iloc[0]
        diffs = pd.DataFrame({r["point"]: pd.Series(r["seed_diffs"]) for _, r in
                              group.iterrows()})
        test = pooled_test(diffs)
        rows.append({"hypothesis": name, "dataset": dataset, "family": first["family"],
                     "variant": first["variant"], "baseline": first["baseline"],
                     "baseline_label": first["baseline_label"],
                     "metric": first["metric"], "baseline_metric": first["baseline_metric"],
                     "test": first["test"], "margin": first["margin"], "sesoi": first["sesoi"],
                     "mean_variant": float(group["mean_variant"].mean()),
                     "mean_baseline": float(group["mean_baseline"].mean()),
                     "n": test["n_seeds"], "n_points": test["n_points"], "diff": test["diff"],
                     "se": test["se"], "sd": test["sd"], "df": test["df"], "p_t": test["p"],
                     "constant": test["constant"] or bool(group["constant"].all())})
    pooled = pd.DataFrame(rows)
    pooled["p_adj"] = holm(pooled["p_t"].to_numpy())
    pooled["level"] = holm_levels(pooled["p_t"].to_numpy(), alpha)
    tested = int(pooled["p_t"].notna().sum())
    lows, highs, needed = [], [], []
    for r in pooled.itertuples():
        low, high = pooled_interval(r.diff, r.se, r.df, r.level, r.test)
        lows.append(low)
        highs.append(high)
        # at Bonferroni's level over the study's hypotheses: Holm's first step, its hardest
        needed.append(seeds_needed(abs(r.diff), r.sd, alpha / max(1, tested), POWER))
    pooled["diff_low"], pooled["diff_high"], pooled["seeds_needed"] = lows, highs, needed
    pooled["verdict"] = [verdict(r) for r in pooled.itertuples()]
    return pooled


def pooled_interval(diff: float, se: float, df: float, level: float,
                    test: str) -> tuple[float, float]:
    """A pooled estimate's printed interval at Holm's ``level`` for it: two-sided for
    superiority, each tail at ``level`` for non-inferiority (NaN bounds without a spread)."""
    if not df == df:  # NaN: fewer than two seeds, or a constant difference
        return math.nan, math.nan
    two_sided = 2 * level if test == "noninferiority" else level
    return interval_at(diff, se, df, min(two_sided, 1.0))


def exploratory_table(frame: pd.DataFrame, baselines: dict[str, dict[str, str]],
                      hypotheses: list[Hypothesis], point_order=None) -> pd.DataFrame:
    """Every other outcome each variant shares with its family's baseline: Δ with its CI,
    d_z and the uncorrected p-values, and no verdict (exploratory, never counted)."""
    if frame.empty:
        return pd.DataFrame()
    primary = {(h.dataset, h.variant, h.baseline, h.metric, h.baseline_metric)
               for h in hypotheses}
    outcomes = frame[frame["kind"] == "outcome"]
    index = value_index(outcomes)
    rows = []
    for (dataset, point, variant, metric), group in outcomes.groupby(
        ["dataset", "point", "variant", "metric"], sort=False
    ):
        baseline = baselines.get(variant, {}).get(group["family"].iloc[0])
        if baseline is None or (dataset, variant, baseline, metric, metric) in primary:
            continue
        paired = pair(index, dataset, point, variant, metric, baseline, metric)
        if paired is None:
            continue
        stats = compare(paired[0], paired[1], bool(group["higher_is_better"].iloc[0]))
        rows.append({"dataset": dataset, "point": point, "variant": variant,
                     "baseline": baseline, "family": group["family"].iloc[0],
                     "metric": metric, **stats})
    table = pd.DataFrame(rows)
    if table.empty or point_order is None:
        return table
    rank = {p: i for i, p in enumerate(sorted(set(table["point"]), key=point_order))}
    return table.sort_values("point", key=lambda s: s.map(rank), kind="stable").reset_index(
        drop=True)

