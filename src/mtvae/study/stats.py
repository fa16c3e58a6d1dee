"""Statistics of a study: pure functions on pandas DataFrames.

* :func:`results_frame` — the long table: one row per (cell, metric) of every finished run.
* :func:`summarize` — per dataset, condition point, variant and metric: n, mean, sd and the 95%
  t-interval of the mean across seeds.
* :func:`paired_comparisons` — each variant against its baseline per metric family, paired by
  (dataset, condition point, seed): mean paired difference with its t-interval, paired t-test
  and Wilcoxon signed-rank test (SciPy), effect size d_z = mean / sd of the differences, Holm
  correction across every comparison of the study, and an outcome: ``win`` or ``loss`` when the
  paired t-test is significant at ``alpha`` in the variant's favour or against it, else ``tie``.
* :func:`win_table` — wins / ties / losses per dataset, point, variant, baseline and family.
"""

from __future__ import annotations

import json
import math
import warnings
from fnmatch import fnmatch
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

# First matching pattern wins: (pattern, family, higher is better). Family None: bookkeeping
# or descriptive values (sizes, counts, timings) that are never compared.
METRIC_RULES: tuple[tuple[str, str | None, bool], ...] = (
    ("*n_train*", None, True),
    ("*_train", None, True),  # scores on a probe's own training points
    ("*_std", None, True),
    ("nll/*_k", None, True),
    ("nll/*_n", None, True),
    ("gen/n_*", None, True),
    ("gen/reference_*", None, True),  # the measuring instrument, not the model
    ("disent/n_*", None, True),
    ("disent/*active_dims", None, True),
    ("probe/*@*", None, True),  # budgeted probes: label-efficiency curves, shown not compared
    ("recon/*", "reconstruction", False),
    ("nll/*", "reconstruction", False),
    ("elbo", "reconstruction", True),
    ("bits_per_dim", "reconstruction", False),
    ("gen/fd*", "generation", False),
    ("gen/frechet*", "generation", False),
    ("gen/kid*", "generation", False),
    ("gen/*", "generation", True),
    ("probe/*mae", "representation", False),
    ("probe_knn/*mae*", "representation", False),
    ("probe/*", "representation", True),
    ("probe_knn/*", "representation", True),
    ("disent/*tc", "representation", False),
    ("disent/*", "representation", True),
    ("task/*/mae", "task", False),
    ("task/*", "task", True),
)

FAMILY_ORDER = ("reconstruction", "generation", "representation", "task")


def metric_rule(key: str) -> tuple[str | None, bool]:
    """``(family, higher_is_better)`` of a metric key; family None for keys never compared."""
    for pattern, family, higher in METRIC_RULES:
        if fnmatch(key, pattern):
            return family, higher
    return None, True


def results_frame(cells: list[dict[str, Any]], runs: list[dict[str, Any]]) -> pd.DataFrame:
    """Long table of every done run's numeric metrics, one row per (cell, metric).

    Columns: dataset, point (canonical JSON), variant, model, seed, run_id, metric, value,
    family, higher_is_better, plus one column per condition axis holding its value.
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
            family, higher = metric_rule(key)
            rows.append({**cell, "model": run["model"], "metric": key, "value": float(value),
                         "family": family, "higher_is_better": higher,
                         **{f"axis:{k}": _hashable(v) for k, v in axes.items()}})
    columns = ["dataset", "point", "variant", "seed", "run_id", "model", "metric", "value",
               "family", "higher_is_better"]
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
    rows = []
    for key, group in frame.groupby(keys, sort=False):
        values = group["value"].to_numpy()
        mean, low, high = t_interval(values, confidence)
        sd = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        rows.append({**dict(zip(keys, key, strict=True)), "n": len(values), "mean": mean,
                     "sd": sd, "ci_low": low, "ci_high": high,
                     "family": group["family"].iloc[0],
                     "higher_is_better": group["higher_is_better"].iloc[0]})
    return pd.DataFrame(rows, columns=[*keys, "n", "mean", "sd", "ci_low", "ci_high", "family",
                                       "higher_is_better"])


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


def paired_test(diff: np.ndarray, confidence: float = 0.95) -> dict[str, float]:
    """Paired statistics of differences ``diff`` (variant minus baseline, oriented so > 0 is
    better): mean, t-interval, t-test and Wilcoxon p-values, effect size d_z."""
    diff = np.asarray(diff, dtype=float)
    n = len(diff)
    mean, low, high = t_interval(diff, confidence)
    out = {"n": n, "diff": mean, "diff_low": low, "diff_high": high, "t": math.nan,
           "p_t": math.nan, "p_w": math.nan, "d_z": math.nan}
    if n < 2:
        return out
    sd = float(diff.std(ddof=1))
    if sd == 0.0:  # every seed differs by the same amount (often: exactly zero)
        out.update(p_t=1.0 if mean == 0 else 0.0, d_z=0.0 if mean == 0 else math.copysign(
            math.inf, mean), t=0.0 if mean == 0 else math.copysign(math.inf, mean))
    else:
        t = mean / (sd / math.sqrt(n))  # the paired t-test is a one-sample test on diff
        out.update(t=t, d_z=mean / sd, p_t=float(2 * stats.t.sf(abs(t), n - 1)))
    out["p_w"] = wilcoxon_p(diff)
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


def paired_comparisons(
    frame: pd.DataFrame, baselines: dict[str, dict[str, str]], alpha: float = 0.05
) -> pd.DataFrame:
    """Every variant against its baseline per family, metric and condition, paired by seed.

    ``baselines`` maps variant -> {family: baseline variant}. ``improvement`` and its interval
    are oriented so that positive means the variant did better (lower error, higher accuracy).
    """
    rows = []
    compared = frame[frame["family"].notna()]
    index = compared.set_index(["dataset", "point", "variant", "metric", "seed"])["value"]
    index = index[~index.index.duplicated()].sort_index()
    for (dataset, point, variant, metric), group in compared.groupby(
        ["dataset", "point", "variant", "metric"], sort=False
    ):
        family = group["family"].iloc[0]
        baseline = baselines.get(variant, {}).get(family)
        if baseline is None:
            continue
        try:
            other = index.loc[(dataset, point, baseline, metric)]
        except KeyError:
            continue
        mine = group.set_index("seed")["value"]
        seeds = sorted(set(mine.index) & set(other.index))
        if not seeds:
            continue
        a, b = mine.loc[seeds].to_numpy(), other.loc[seeds].to_numpy()
        sign = 1.0 if group["higher_is_better"].iloc[0] else -1.0
        test = paired_test(sign * (a - b))
        rows.append({"dataset": dataset, "point": point, "variant": variant,
                     "baseline": baseline, "family": family, "metric": metric,
                     "higher_is_better": bool(sign > 0), "mean_variant": float(a.mean()),
                     "mean_baseline": float(b.mean()), "improvement": test.pop("diff"),
                     "improvement_low": test.pop("diff_low"),
                     "improvement_high": test.pop("diff_high"), **test})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["p_t_holm"] = holm(table["p_t"].to_numpy())
    table["p_w_holm"] = holm(table["p_w"].to_numpy())
    table["outcome"] = [_outcome(r, alpha) for r in table.itertuples()]
    table["significant_holm"] = table["p_t_holm"] < alpha
    return table


def _outcome(row: Any, alpha: float) -> str:
    if not row.p_t < alpha:  # also NaN (a single seed): no evidence either way
        return "tie"
    return "win" if row.improvement > 0 else "loss"


def win_table(comparisons: pd.DataFrame) -> pd.DataFrame:
    """Wins, ties and losses (and Holm-significant wins and losses) per dataset, condition
    point, variant, baseline and metric family."""
    keys = ["dataset", "point", "variant", "baseline", "family"]
    columns = [*keys, "win", "tie", "loss", "n", "win_holm", "loss_holm"]
    if comparisons.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for key, group in comparisons.groupby(keys, sort=False):
        counts = group["outcome"].value_counts()
        significant = group[group["significant_holm"]]
        rows.append({**dict(zip(keys, key, strict=True)),
                     **{o: int(counts.get(o, 0)) for o in ("win", "tie", "loss")},
                     "n": len(group),
                     "win_holm": int((significant["outcome"] == "win").sum()),
                     "loss_holm": int((significant["outcome"] == "loss").sum())})
    table = pd.DataFrame(rows, columns=columns)
    # Datasets, variants and baselines in the order they first appear (the spec's order),
    # families in FAMILY_ORDER, condition points as they come.
    rank = {f: i for i, f in enumerate(FAMILY_ORDER)}

    def order(column: pd.Series) -> pd.Series:
        if column.name == "family":
            return column.map(lambda f: rank.get(f, len(rank)))
        return column.map({v: i for i, v in enumerate(dict.fromkeys(column))})

    return table.sort_values(["dataset", "variant", "baseline", "family"], key=order,
                             kind="stable").reset_index(drop=True)
