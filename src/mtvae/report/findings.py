"""Findings: sentences generated from the win / tie / loss table and the paired comparisons.

Nothing here states a conclusion of its own: every sentence is filled in from the numbers, so
a study with other results says other things (including "no significant difference").
"""

from __future__ import annotations

import math

import pandas as pd

from mtvae.study.expand import point_label
from mtvae.study.stats import FAMILY_ORDER, min_wilcoxon_p

GENERATIVE_MT = ("mtvae", "mtvqvae")  # models whose comparisons answer the research question
TRADITIONAL = ("vae", "vqvae")


def fmt(value: float) -> str:
    """A number with about 3 significant digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return f"{value:.3g}"


def _counts(group: pd.DataFrame) -> dict[str, int]:
    return {k: int(group[k].sum()) for k in ("win", "tie", "loss", "n", "win_holm", "loss_holm")}


def _family_sort(families) -> list[str]:
    order = {f: i for i, f in enumerate(FAMILY_ORDER)}
    return sorted(families, key=lambda f: order.get(f, 99))


def headline(wins: pd.DataFrame, models: dict[str, str]) -> list[str]:
    """The research question's answer: the MT-VAE variants against each of their baselines
    (the traditional VAE first), per metric family, summed over datasets and conditions."""
    if wins.empty:
        return []
    part = wins[wins["variant"].map(models).isin(GENERATIVE_MT)]
    baselines = sorted(dict.fromkeys(part["baseline"]),
                       key=lambda b: models.get(b) not in TRADITIONAL)
    sentences = []
    for baseline in baselines:
        rows = part[part["baseline"] == baseline]
        kind = ("the traditional VAE baseline" if models.get(baseline) in TRADITIONAL
                else "the baseline")
        pieces = []
        for family in _family_sort(rows["family"].unique()):
            c = _counts(rows[rows["family"] == family])
            pieces.append(
                f"on {family} metrics they won {c['win']}, tied {c['tie']} and lost {c['loss']} "
                f"of {c['n']} comparisons ({c['win_holm']} wins and {c['loss_holm']} losses "
                "significant after Holm correction)"
            )
        variants = ", ".join(dict.fromkeys(rows["variant"]))
        sentences.append(f"Against {kind} {baseline}, the MT-VAE variants ({variants}): "
                         + "; ".join(pieces) + ".")
    return sentences


def per_condition(wins: pd.DataFrame, alpha: float = 0.05) -> list[str]:
    """Per dataset, variant-baseline pair and condition: where the variant won and lost."""
    sentences = []
    for (dataset, variant, baseline), pair in wins.groupby(
        ["dataset", "variant", "baseline"], sort=False
    ):
        for point, group in pair.groupby("point", sort=False):
            sentences.append(_condition_sentence(dataset, variant, baseline, point, group, alpha))
    return sentences


def _condition_sentence(dataset, variant, baseline, point, group: pd.DataFrame, alpha) -> str:
    won, lost, even = [], [], []
    for row in group.itertuples():
        if row.win > row.loss:
            won.append(f"{row.family} metrics in {row.win} of {row.n} comparisons "
                       f"(Holm-corrected p < {fmt(alpha)} in {row.win_holm})")
        elif row.loss > row.win:
            lost.append(f"{row.family} metrics in {row.loss} of {row.n} comparisons "
                        f"(Holm-corrected p < {fmt(alpha)} in {row.loss_holm})")
        else:
            even.append(row.family)
    where = point_label(point)
    where = f"At {where}" if where != "default" else "Overall"
    parts = []
    if won:
        parts.append(f"{variant} beat {baseline} on " + " and on ".join(won))
    if lost:
        lead = "it lost on " if won else f"{variant} lost to {baseline} on "
        parts.append(lead + " and on ".join(lost))
    if even and (won or lost):
        parts.append(f"there was no clear difference on {', '.join(even)} metrics")
    elif even:
        parts.append(f"{variant} and {baseline} did not differ significantly on "
                     f"{', '.join(even)} metrics")
    return f"{where} on {dataset}, " + "; ".join(parts) + "."


def best_and_worst(wins: pd.DataFrame) -> list[str]:
    """Where each variant did best and worst against its baselines (net wins minus losses)."""
    sentences = []
    for (dataset, variant, baseline), pair in wins.groupby(
        ["dataset", "variant", "baseline"], sort=False
    ):
        net = pair.groupby("point", sort=False).apply(
            lambda g: int(g["win"].sum() - g["loss"].sum()), include_groups=False
        )
        if len(net) < 2 or net.max() == net.min():
            continue
        best, worst = net.idxmax(), net.idxmin()
        lead = "fared best against" if net[best] > 0 else "lost least to"
        tail = "worst" if net[worst] < 0 else "least well"
        sentences.append(
            f"On {dataset}, {variant} {lead} {baseline} at {point_label(best)} "
            f"(net {net[best]:+d} wins minus losses over all families) and {tail} at "
            f"{point_label(worst)} (net {net[worst]:+d})."
        )
    return sentences


def largest_effects(comparisons: pd.DataFrame, limit: int = 3) -> list[str]:
    """The biggest significant (uncorrected) paired differences, in the metric's own units."""
    if comparisons.empty:
        return []
    decided = comparisons[comparisons["outcome"] != "tie"].copy()
    decided = decided[decided["d_z"].abs() < math.inf]
    if decided.empty:
        return []
    decided["size"] = decided["d_z"].abs()
    sentences = []
    for row in decided.sort_values("size", ascending=False).head(limit).itertuples():
        verb = "better" if row.improvement > 0 else "worse"
        sentences.append(
            f"Among the largest effects: on {row.dataset} at {point_label(row.point)}, "
            f"{row.variant} was {verb} than {row.baseline} on {row.metric} "
            f"({fmt(row.mean_variant)} vs {fmt(row.mean_baseline)}, d_z = {fmt(abs(row.d_z))}, "
            f"paired t-test p = {fmt(row.p_t)}, Holm-corrected p = {fmt(row.p_t_holm)})."
        )
    return sentences


def caveats(comparisons: pd.DataFrame, n_seeds: int, alpha: float, failed: int) -> list[str]:
    """What the numbers can and cannot support."""
    failures = ([f"{failed} run(s) failed; their cells are missing from the comparisons (see "
                 "the failed-runs table; rerun with --retry-failed)."] if failed else [])
    if comparisons.empty:
        return ["No paired comparisons could be made: no variant has a baseline with finished "
                "runs on the same seeds.", *failures]
    sentences = []
    m = int(comparisons["p_t"].notna().sum())
    sig = int(comparisons["significant_holm"].sum())
    decided = int((comparisons["outcome"] != "tie").sum())
    sentences.append(
        f"Wins and losses are paired t-tests at α = {fmt(alpha)} over {n_seeds} seeds; "
        f"{decided} of {len(comparisons)} comparisons were decided that way, and {sig} remain "
        f"significant after Holm correction across all {m} tests of the study."
    )
    floor = min_wilcoxon_p(n_seeds)
    if floor >= alpha:
        sentences.append(
            f"With {n_seeds} seeds the Wilcoxon signed-rank test cannot reach p < {fmt(alpha)} "
            f"(its smallest two-sided p is {fmt(floor)}), so it is reported but cannot confirm "
            "any difference; more seeds are needed for distribution-free evidence."
        )
    if n_seeds < 5:
        sentences.append(
            f"With only {n_seeds} seeds, treat uncorrected wins and losses as suggestive and "
            "differences that are not Holm-significant as not established."
        )
    return sentences + failures


def generate_findings(
    wins: pd.DataFrame,
    comparisons: pd.DataFrame,
    models: dict[str, str],
    n_seeds: int,
    alpha: float,
    failed: int,
) -> dict[str, list[str]]:
    """Every generated statement, grouped for the report's Findings section."""
    return {
        "headline": headline(wins, models),
        "conditions": per_condition(wins, alpha) + best_and_worst(wins),
        "effects": largest_effects(comparisons),
        "caveats": caveats(comparisons, n_seeds, alpha, failed),
    }
