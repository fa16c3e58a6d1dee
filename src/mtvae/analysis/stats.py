"""Statistics of a study: pure functions on arrays and pandas DataFrames.

* :func:`results_frame` — the long table: one row per (cell, metric) of every finished run,
  with each key's family, direction and kind from the metric catalogue.
* :func:`summarize` — per dataset, condition point, variant and metric: n, mean, sd and the 95%
  t-interval of the mean across seeds.
* :func:`paired_test` — paired differences (oriented so > 0 favours the variant): mean and
  t-interval, paired t-test, Wilcoxon signed-rank test, d_z; one-sided tests against a
  non-inferiority margin. Differences identical in every seed get no p-value (``constant``).
* :func:`holm` — Holm-Bonferroni adjusted p-values; :func:`holm_levels` — the level each
  hypothesis was tested at in Holm's steps, for intervals that agree with Holm's decisions.
* :func:`interval_at` — the two-sided t-interval at an adjusted level (Bonferroni, Holm step).
* :func:`pooled_test` — one effect over several condition points from every seed at every point.
* :func:`power` / :func:`detectable_effect` / :func:`seeds_needed` — power of the paired t-test
  (noncentral t on both tails, averaged over the chi-square so that it stays accurate where
  SciPy's ``nct`` gives NaN).

Hypotheses, verdicts and trends are in :mod:`mtvae.analysis.inference` and
:mod:`mtvae.analysis.trends`.
"""

from __future__ import annotations

import json
import math
import warnings
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from mtvae.analysis.run_settings import heads_untrained
from mtvae.evaluate import catalogue

MAX_SEEDS = 1000  # seeds_needed reports "more than this" beyond


def results_frame(cells: list[dict[str, Any]], runs: list[dict[str, Any]]) -> pd.DataFrame:
    """Long table of every done run's numeric metrics, one row per (cell, metric).

    Columns: dataset, point (canonical JSON), variant, model, seed, run_id, metric, value,
    family, higher_is_better, kind (``outcome`` | ``info``), plus one column ``axis:<name>``
    per condition axis holding its value. The task heads' scores (the ``task`` family) of a
    run whose heads got no gradient (:func:`~mtvae.analysis.run_settings.heads_untrained`:
    task weight 0) are left out: at chance by design, they would enter every comparison of
    heads as the variant's failure.
    """
    by_id = {r["run_id"]: r for r in runs}
    rows = []
    for cell in cells:
        run = by_id.get(cell["run_id"])
        if run is None or run["status"] != "done":
            continue
        axes = json.loads(cell["point"])
        untrained = heads_untrained(run.get("config") or {})
        for key, value in run["metrics"].items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if untrained and catalogue.family(key) == "task":
                continue
            rows.append({**cell, "model": run["model"], "metric": key, "value": float(value),
                         "family": catalogue.family(key),
                         "higher_is_better": catalogue.higher_is_better(key),
                         "kind": "outcome" if catalogue.is_outcome(key) else "info",
                         **{f"axis:{k}": _hashable(v) for k, v in axes.items()}})
    columns = ["dataset", "point", "variant", "seed", "run_id", "model", "metric", "value",
               "family", "higher_is_better", "kind"]
    return pd.DataFrame(rows, columns=None if rows else columns)


def _hashable(value: Any) -> Any:
    return "+".join(map(str, value)) if isinstance(value, list) else value


def t_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)``: the t-interval of the mean (NaN bounds for fewer than 2 values)."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean()) if len(values) else math.nan
    if len(values) < 2:
        return mean, math.nan, math.nan
    half = stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(
        len(values)
    )
    return mean, mean - half, mean + half


def summarize(frame: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Mean, sd and t-interval across seeds per (dataset, point, variant, metric)."""
    keys = ["dataset", "point", "variant", "metric"]
    extra = ["family", "higher_is_better", "kind"]
    rows = []
    for key, group in frame.groupby(keys, sort=False):
        values = group["value"].to_numpy()
        mean, low, high = t_interval(values, confidence)
        sd = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        rows.append({**dict(zip(keys, key, strict=True)), "n": len(values), "mean": mean,
                     "sd": sd, "ci_low": low, "ci_high": high,
                     **{c: group[c].iloc[0] for c in extra}})
    return pd.DataFrame(rows, columns=[*keys, "n", "mean", "sd", "ci_low", "ci_high", *extra])


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (NaN entries stay NaN and do not count)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    order = valid[np.argsort(p[valid], kind="stable")]
    m = len(order)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        out[index] = running
    return out


def paired_test(diff: np.ndarray, margin: float = 0.0, confidence: float = 0.95) -> dict:
    """Paired statistics of differences ``diff`` (variant minus baseline, oriented so > 0 is
    better).

    Returns n, the mean ``diff`` with its t-interval ``diff_low``/``diff_high``, ``sd``, the
    paired t statistic ``t`` and its two-sided ``p_t``, the Wilcoxon signed-rank ``p_w``, the
    effect size ``d_z`` = mean / sd and ``g_z``, d_z with Hedges' small-sample correction
    (d_z overstates the standardized effect at a few seeds: by 1/(1 − 3/(4·df − 1)), 60% at 3
    seeds), and one-sided p-values against the margin: ``p_ni`` for
    Δ > −margin (non-inferiority) and ``p_inf`` for Δ < −margin (inferiority). ``constant`` is
    True when every seed differs by the same amount: the spread is zero, so no test applies
    and every p-value is NaN (a difference fixed by the configuration, not an effect).
    """
    diff = np.asarray(diff, dtype=float)
    n = len(diff)
    mean, low, high = t_interval(diff, confidence)
    nan = math.nan
    out = {"n": n, "diff": mean, "diff_low": low, "diff_high": high, "sd": nan, "t": nan,
           "p_t": nan, "p_w": nan, "d_z": nan, "g_z": nan, "p_ni": nan, "p_inf": nan, "constant": False}
    if n < 2:
        return out
    sd = float(diff.std(ddof=1))
    if sd == 0.0 or sd <= 1e-12 * max(1.0, abs(mean)):
        out.update(sd=0.0, constant=True)
        return out
    se = sd / math.sqrt(n)
    t = mean / se
    t_margin = (mean + margin) / se
    out.update(sd=sd, t=t, d_z=mean / sd, g_z=hedges(n) * mean / sd, p_t=float(2 * stats.t.sf(abs(t), n - 1)),
               p_ni=float(stats.t.sf(t_margin, n - 1)), p_inf=float(stats.t.cdf(t_margin, n - 1)),
               p_w=wilcoxon_p(diff))
    return out


def wilcoxon_p(diff: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value (1.0 when every difference is zero)."""
    diff = np.asarray(diff, dtype=float)
    if not np.any(diff):
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return float(stats.wilcoxon(diff).pvalue)
        except ValueError:
            return math.nan


def min_wilcoxon_p(n: int) -> float:
    """The smallest two-sided p-value an exact Wilcoxon signed-rank test on n pairs can give."""
    return min(1.0, 2.0 ** (1 - n)) if n > 0 else 1.0


def hedges(n: int) -> float:
    """Hedges' small-sample correction of a standardized mean difference over n pairs."""
    df = n - 1
    return 1.0 - 3.0 / (4.0 * df - 1.0) if df > 0 else math.nan


def holm_levels(pvalues: np.ndarray, alpha: float) -> np.ndarray:
    """The level at which Holm's step-down procedure tested each hypothesis: α/(m − k) for
    the hypothesis of rank k (0-based, smallest p first) up to the first it keeps, α/(m − r)
    for that one and every later one (r rejected). An interval at its level excludes the null
    value exactly when Holm rejects (NaN p-values: NaN level, not counted)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    order = valid[np.argsort(p[valid], kind="stable")]
    m = len(order)
    stopped = None
    for rank, index in enumerate(order):
        if stopped is None and p[index] >= alpha / (m - rank):
            stopped = alpha / (m - rank)
        out[index] = stopped if stopped is not None else alpha / (m - rank)
    return out


def interval_at(mean: float, se: float, df: float, level: float) -> tuple[float, float]:
    """The two-sided t-interval ``mean ± t(1 − level/2, df)·se`` (NaN bounds without a spread
    or degrees of freedom); at ``level`` = α/m it is Bonferroni's simultaneous interval."""
    if not (df > 0 and se >= 0 and math.isfinite(level) and level > 0):
        return math.nan, math.nan
    half = stats.t.ppf(1 - level / 2, df) * se
    return mean - half, mean + half


def pooled_test(diffs: pd.DataFrame | np.ndarray) -> dict:
    """One effect over several condition points: ``diffs`` is seeds (rows) x points
    (columns) of paired differences (a DataFrame or a 2-D array; NaN where a seed lacks a
    point). Each seed's mean over the points is one observation; the
    effect is their mean, t-tested over the seeds (df = seeds − 1).

    In a balanced design this is the mixed model of the differences with the point as a fixed
    effect and the seed as a random effect: its REML estimate of the points' average effect
    and that estimate's standard error are the seeds' means' mean and standard error, and the
    Kenward-Roger degrees of freedom are seeds − 1. Unlike the mixed model it assumes nothing
    about how a seed's differences at different points correlate. Seeds without every point
    are left out. Returns n_seeds, n_points, diff, se, sd (of the seed means), df, t, p,
    constant."""
    values = np.asarray(diffs, dtype=float)
    full = values[~np.isnan(values).any(axis=1)]  # plain arrays: simulations call it often
    n, k = full.shape
    nan = math.nan
    out = {"n_seeds": n, "n_points": k, "diff": nan, "se": nan, "sd": nan, "df": nan, "t": nan,
           "p": nan, "constant": False}
    if n == 0 or k == 0:
        return out
    means = full.mean(axis=1)
    out["diff"] = float(means.mean())
    if n < 2:
        return out
    sd = float(means.std(ddof=1))
    if sd <= 1e-12 * max(1.0, abs(out["diff"])):
        out.update(sd=0.0, se=0.0, constant=True)
        return out
    se = sd / math.sqrt(n)
    t = out["diff"] / se
    out.update(sd=sd, se=se, df=float(n - 1), t=t, p=float(2 * stats.t.sf(abs(t), n - 1)))
    return out


@lru_cache(maxsize=64)
def _chi_nodes(df: int, n: int = 4096) -> np.ndarray:
    """√(V/df) at the midpoints of ``n`` equal-probability slices of V ~ χ²(df)."""
    return np.sqrt(stats.chi2.ppf((np.arange(n) + 0.5) / n, df) / df)


def power(effect: float, sd: float, n: int, alpha: float) -> float:
    """Power of the two-sided paired t-test at level ``alpha`` for a true mean difference
    ``effect`` with spread ``sd`` over ``n`` seeds: P(|T| > t(1 − α/2)) for T noncentral t
    with df = n − 1 and noncentrality δ = |effect|/sd·√n, both tails.

    Computed as the expectation over V ~ χ²(df) of Φ(δ − c√(V/df)) + Φ(−δ − c√(V/df)), on
    4,096 equal-probability nodes of V (within 1e-4 of SciPy's ``nct`` where that is finite):
    ``nct`` returns NaN at noncentralities above ~7 for 2-4 degrees of freedom, and a normal
    approximation there overstates power (0.92 instead of 0.80)."""
    if n < 2 or not sd > 0:
        return math.nan
    df = n - 1
    crit = float(stats.t.ppf(1 - alpha / 2, df))
    nc = abs(effect) / sd * math.sqrt(n)
    scaled = crit * _chi_nodes(df)
    value = float(np.mean(special.ndtr(nc - scaled) + special.ndtr(-nc - scaled)))
    return min(1.0, max(0.0, value))


def detectable_effect(sd: float, n: int, alpha: float, target: float = 0.8) -> float:
    """The smallest |mean difference| the paired t-test detects with probability ``target``
    at level ``alpha``, ``n`` seeds and spread ``sd`` (NaN when it cannot be computed)."""
    if n < 2 or not sd > 0 or not math.isfinite(sd):
        return math.nan
    high = sd
    while power(high, sd, n, alpha) < target:
        high *= 2
        if high > 1e6 * sd:
            return math.nan
    return float(optimize.brentq(lambda e: power(e, sd, n, alpha) - target, 0.0, high,
                                 xtol=1e-9 * sd))


def seeds_needed(effect: float, sd: float, alpha: float, target: float = 0.8) -> float:
    """The fewest seeds for which the paired t-test detects ``effect`` with probability
    ``target`` (``inf`` beyond :data:`MAX_SEEDS`, NaN without a spread or an effect)."""
    if not sd > 0 or not math.isfinite(sd) or not effect or not math.isfinite(effect):
        return math.nan
    low, high = 2, MAX_SEEDS
    if power(effect, sd, high, alpha) < target:
        return math.inf
    while low < high:  # power grows with n: bisect for the first n that reaches the target
        mid = (low + high) // 2
        if power(effect, sd, mid, alpha) >= target:
            high = mid
        else:
            low = mid + 1
    return float(low)
