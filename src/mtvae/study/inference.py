"""Inference per hypothesis and condition point: paired effects, Holm, verdicts, power.

For a hypothesis (variant vs baseline on a metric, one dataset) and each condition point, the
values of the two variants are paired by seed and the difference oriented by the metric's
direction, so that **positive favours the variant**. Per point: the mean difference Δ with its
95% t-interval, the paired t-test, the Wilcoxon signed-rank test and d_z. Holm's correction
runs **within each hypothesis across its condition points** — the family a reader asks about
("does the MT-VAE beat the VAE on NLL, and where?").

Verdicts (from the Holm-corrected paired t-test at the spec's alpha):

* superiority: ``better`` / ``worse`` when the two-sided test rejects Δ = 0 in that direction;
* non-inferiority with margin m: ``worse`` when the one-sided test shows Δ < −m; when it shows
  Δ > −m, ``better`` if the superiority test also rejects Δ = 0 upwards, else ``equivalent``
  (within the margin: a loss larger than m is ruled out);
* ``no evidence`` otherwise — the data cannot tell, said plainly;
* ``constant``: the difference is the same in every seed (a fixed property of the
  configurations, e.g. a width): no test applies, no p-value and no verdict is given.

Power: the smallest |Δ| the seeds detect with 80% probability at the observed spread (at level
alpha / points, Bonferroni, as conservative as Holm's first step) and the number of seeds the
observed Δ would need.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mtvae.study.hypotheses import Hypothesis
from mtvae.study.stats import detectable_effect, holm, paired_test, seeds_needed

VERDICTS = ("better", "worse", "equivalent", "no evidence")  # "constant" is no verdict
CONSTANT = "constant"
POWER = 0.8


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
         baseline_metric: str) -> tuple[np.ndarray, np.ndarray, list[int]] | None:
    """The two variants' values on their common seeds (None when they share none)."""
    a = _values(index, dataset, point, variant, metric)
    b = _values(index, dataset, point, baseline, baseline_metric)
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


def hypothesis_table(frame: pd.DataFrame, hypotheses: list[Hypothesis], alpha: float,
                     point_order=None) -> pd.DataFrame:
    """One row per hypothesis and condition point, with Holm-corrected p-values, verdicts,
    detectable effect and seeds needed. Points come in ``point_order`` (a sort key)."""
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
            paired = pair(index, h.dataset, point, h.variant, h.metric, h.baseline,
                          h.baseline_metric)
            if paired is None:
                continue
            rows.append({"hypothesis": h.name, "dataset": h.dataset, "point": point,
                         "variant": h.variant, "baseline": h.baseline, "metric": h.metric,
                         "baseline_metric": h.baseline_metric, "family": h.family,
                         "task": h.task, "test": h.test, "margin": h.margin,
                         "declared": h.declared,
                         **compare(paired[0], paired[1], bool(direction[h.metric]), h.margin)})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    parts = [_correct(group, alpha) for _, group in table.groupby(["hypothesis", "dataset"],
                                                                   sort=False)]
    return pd.concat(parts, ignore_index=True)


def _correct(group: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Holm within one hypothesis across its points; verdicts and power."""
    group = group.copy()
    for column in ("p_t", "p_w", "p_ni", "p_inf"):
        group[f"{column}_holm"] = holm(group[column].to_numpy())
    group["verdict"] = [verdict(r, alpha) for r in group.itertuples()]
    level = alpha / max(1, int(group["p_t"].notna().sum()))
    group["detectable"] = [detectable_effect(r.sd, r.n, level, POWER) for r in group.itertuples()]
    group["seeds_needed"] = [seeds_needed(abs(r.diff), r.sd, level, POWER)
                             for r in group.itertuples()]
    return group


def verdict(row, alpha: float) -> str:
    """better / worse / equivalent / no evidence (see the module docstring), or constant."""
    if row.constant:
        return CONSTANT
    superior = row.p_t_holm < alpha
    if row.test == "noninferiority":
        if row.p_inf_holm < alpha:
            return "worse"
        if row.p_ni_holm < alpha:
            return "better" if superior and row.diff > 0 else "equivalent"
        return "no evidence"
    if superior:
        return "better" if row.diff > 0 else "worse"
    return "no evidence"


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

