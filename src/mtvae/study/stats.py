"""Statistics of a study: pure functions on arrays and pandas DataFrames.

* :func:`results_frame` — the long table: one row per (cell, metric) of every finished run,
  with each key's family, direction and kind from the metric catalogue.
* :func:`summarize` — per dataset, condition point, variant and metric: n, mean, sd and the 95%
  t-interval of the mean across seeds.
* :func:`paired_test` — paired differences (oriented so > 0 favours the variant): mean and
  t-interval, paired t-test, Wilcoxon signed-rank test, d_z; one-sided tests against a
  non-inferiority margin. Differences identical in every seed get no p-value (``constant``).
* :func:`holm` — Holm-Bonferroni adjusted p-values.
* :func:`detectable_effect` / :func:`seeds_needed` — power of the paired t-test (noncentral t).

Hypotheses, verdicts and trends are in :mod:`mtvae.study.inference` and
:mod:`mtvae.study.trends`.
"""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from mtvae.evaluate import catalogue

MAX_SEEDS = 1000  # seeds_needed reports "more than this" beyond


def results_frame(cells: list[dict[str, Any]], runs: list[dict[str, Any]]) -> pd.DataFrame:
    """Long table of every done run's numeric metrics, one row per (cell, metric).

    Columns: dataset, point (canonical JSON), variant, model, seed, run_id, metric, value,
    family, higher_is_better, kind (``outcome`` | ``info``), plus one column ``axis:<name>``
    per condition axis holding its value.
    """
    by_id = {r["run_id"]: r for r in runs}
    rows = []
    for cell in cells:
        run = by_id.get(cell["run_id"])
        if run is None or run["status"] != "done":
            continue
        axes = json.loads(cell["point"])
        for key, value in run["metrics"].items():
            if isinstance(value, bool) or not isinstance(value, int | float):
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
    effect size ``d_z`` = mean / sd, and one-sided p-values against the margin: ``p_ni`` for
    Δ > −margin (non-inferiority) and ``p_inf`` for Δ < −margin (inferiority). ``constant`` is
    True when every seed differs by the same amount: the spread is zero, so no test applies
    and every p-value is NaN (a difference fixed by the configuration, not an effect).
    """
    diff = np.asarray(diff, dtype=float)
    n = len(diff)
    mean, low, high = t_interval(diff, confidence)
    nan = math.nan
    out = {"n": n, "diff": mean, "diff_low": low, "diff_high": high, "sd": nan, "t": nan,
           "p_t": nan, "p_w": nan, "d_z": nan, "p_ni": nan, "p_inf": nan, "constant": False}
    if n < 2:
        return out
    sd = float(diff.std(ddof=1))
    if sd == 0.0 or sd <= 1e-12 * max(1.0, abs(mean)):
        out.update(sd=0.0, constant=True)
        return out
    se = sd / math.sqrt(n)
    t = mean / se
    t_margin = (mean + margin) / se
    out.update(sd=sd, t=t, d_z=mean / sd, p_t=float(2 * stats.t.sf(abs(t), n - 1)),
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


def power(effect: float, sd: float, n: int, alpha: float) -> float:
    """Power of the two-sided paired t-test at level ``alpha`` for a true mean difference
    ``effect`` with spread ``sd`` over ``n`` seeds (noncentral t)."""
    if n < 2 or not sd > 0:
        return math.nan
    df = n - 1
    crit = stats.t.ppf(1 - alpha / 2, df)
    nc = abs(effect) / sd * math.sqrt(n)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = float(stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc))
    if not math.isfinite(value):  # far in the tail, where SciPy's nct gives up: ~ certain
        value = float(stats.norm.sf(crit - nc) + stats.norm.cdf(-crit - nc))
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
