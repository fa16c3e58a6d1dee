"""The report's Answer section: one line per outcome kind (the pooled estimates), one sentence
per hypothesis, the pooled table, the per-point table, forest and difference plots.

Everything is generated from :class:`~mtvae.analysis.results.StudyResults` (pooled estimates
and per-point cells of :mod:`mtvae.analysis.inference`, the tested changes of
:mod:`mtvae.analysis.trends`, the learnability check); nothing is written by hand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mtvae.analysis import learnability
from mtvae.analysis.trends import axis_slice, numeric_axes
from mtvae.evaluate.catalogue import FAMILY_ORDER
from mtvae.report import figures as F
from mtvae.report.figures import Figure
from mtvae.report.findings import (
    DAGGER_MEANS,
    KIND_NAMES,
    MARK_MEANS,
    caveats,
    effect,
    fmt,
    kind_paragraphs,
    learnability_lines,
    level_lines,
    marks,
    verdict_word,
)
from mtvae.report.front import answer_paragraphs as front_paragraphs
from mtvae.report.methodology import table
from mtvae.study.expand import point_label

if TYPE_CHECKING:
    from mtvae.analysis.results import StudyResults as StudyData


def answer_context(data: StudyData, failed: int) -> dict[str, Any]:
    """Everything the Answer section shows."""
    spec = data.spec
    return {
        "pooled": pooled_table(data),
        "table": answer_table(data),
        # the outcome kinds, then the task-weight trade-off and Δm where the study has them
        "kinds": kind_paragraphs(data.pooled, data.table, data.changes_table, data.trends,
                                 data.alpha) + front_paragraphs(data),
        "levels": level_lines(data.levels),
        "learnability": learnability_lines(learnability.best_per_task(data.scores), data.table,
                                           spec),
        "caveats": caveats(data.table, data.pooled, data.exploratory, len(spec["seeds"]),
                           data.alpha, failed),
        "declared": bool(spec.get("hypotheses")),
        "intro": intro(bool(spec.get("hypotheses"))),
        "table_intro": TABLE_INTRO,
        "empty": ("No hypothesis could be computed (no variant with a baseline shares an "
                  "outcome metric with it)."),
    }


TABLE_INTRO = ("Per condition point: Δ with its interval simultaneous over the hypothesis' "
               "distinct cells (Bonferroni) and the verdict it gives: better or worse exactly "
               f"when the interval excludes 0 (or the margin); {DAGGER_MEANS}; {MARK_MEANS}.")


def intro(declared: bool) -> str:
    """The Answer's first paragraph (every renderer prints this one)."""
    where = ("The hypotheses below are declared in the study spec." if declared else
             "The spec declares no hypotheses: these are the primary hypotheses, one per outcome "
             "kind for each variant with baselines; every other metric is exploratory (Results).")
    return (f"{where} Each hypothesis is answered first by its pooled effect: the paired "
            "difference Δ (positive favours the variant) averaged over its condition points, "
            "from every seed at every point, with the interval at the level of Holm's "
            "correction across the study's hypotheses, so a verdict of better or worse is "
            "exactly an interval that excludes 0. Where the effect changes along an axis is "
            "tested; a crossover is named only where the effect is significantly of opposite "
            "signs on the two sides, with the study's hypotheses in its correction as in "
            "the verdicts'. A better or worse behind which a run did not converge (‡) is "
            "listed apart and not claimed: it describes where training stopped.")


def pooled_table(data: StudyData) -> dict[str, Any]:
    """Hypotheses (rows): the pooled Δ [interval], each model's mean, Holm p, verdict."""
    rows = []
    for _, r in data.pooled.iterrows():
        rows.append([r["hypothesis"], r["dataset"], r["n_points"], fmt(r["mean_variant"]),
                     fmt(r["mean_baseline"]), effect(r), fmt(1 - r["level"]) if r["level"]
                     == r["level"] else "—", fmt(r["p_adj"]) if r["p_adj"] == r["p_adj"]
                     else "—", verdict_word(r) + marks(r),
                     _seeds(r["seeds_needed"])])
    return table(["hypothesis", "dataset", "points", "variant mean", "baseline mean",
                  "pooled Δ [interval]", "interval level", "p (Holm)", "verdict",
                  "seeds for 80% power"], rows)


def _seeds(value: float) -> str:
    if value != value:
        return "—"
    return "> 1000" if value == float("inf") else f"{value:.0f}"


def answer_table(data: StudyData) -> dict[str, Any]:
    """Hypotheses (rows) x condition points (columns): Δ [interval] and the verdict."""
    if data.table.empty:
        return table(["hypothesis"], [])
    labels, grid = answer_grid(data)
    rows = [[name, dataset, *[_cell(row) for row in cells]] for name, dataset, cells in grid]
    return table(["hypothesis", "dataset", *labels], rows)


def answer_grid(data: StudyData) -> tuple[list[str], list[tuple[str, str, list]]]:
    """``(condition labels, [(hypothesis, dataset, [its row at each point, or None])])``: the
    Answer table's cells as hypothesis rows, for each renderer to format."""
    points = [p for p in data.points if p in set(data.table["point"])]
    rows = []
    for (name, dataset), group in data.table.groupby(["hypothesis", "dataset"], sort=False):
        cells = {r["point"]: r for _, r in group.iterrows()}
        rows.append((name, dataset, [cells.get(p) for p in points]))
    return [point_label(p) for p in points], rows


def _cell(row) -> str:
    if row is None:
        return "—"
    return f"{effect(row)} {verdict_word(row)}{marks(row)}"


def _hypotheses(data: StudyData, dataset: str, kind: str) -> list:
    part = data.table[(data.table["dataset"] == dataset) & (data.table["family"] == kind)]
    return [(name, part[part["hypothesis"] == name]) for name in dict.fromkeys(part["hypothesis"])]


def answer_figures(data: StudyData, dataset: str) -> list[Figure]:
    """A forest plot of the hypotheses per outcome kind: Δ with its CI per condition point."""
    if data.table.empty:
        return []
    figures = []
    for kind in FAMILY_ORDER:
        panels = []
        for name, rows in _hypotheses(data, dataset, kind):
            panels.append({"title": name, "labels": [point_label(p) for p in rows["point"]],
                           "diff": list(rows["diff"]), "low": list(rows["diff_low"]),
                           "high": list(rows["diff_high"]), "verdict": list(rows["verdict"]),
                           "margin": float(rows["margin"].iloc[0])})
        if panels:
            figures.append(Figure(
                F.slug("forest", dataset, kind), f"{KIND_NAMES[kind]} hypotheses ({dataset})",
                "Forest plot: the paired difference Δ (positive favours the variant) with its "
                "interval at each condition point, simultaneous within each hypothesis "
                "(Bonferroni); green: better, red: worse, blue: equivalent within the margin "
                "(dashed), grey: no evidence.",
                F.forest_figure(panels), "answer"))
    return figures


def difference_figures(data: StudyData, dataset: str) -> list[Figure]:
    """Δ against each numeric axis (levels in numeric order), one panel per hypothesis."""
    if data.table.empty:
        return []
    figures = []
    for axis in numeric_axes(data.spec):
        levels = axis_slice(data.spec, axis)
        for kind in FAMILY_ORDER:
            panels = []
            for name, rows in _hypotheses(data, dataset, kind):
                rows = rows[rows["point"].isin(levels)]
                if len(rows) < 2:
                    continue
                rows = rows.assign(level=rows["point"].map(levels))
                order = {p: i for i, p in enumerate(levels)}
                rows = rows.sort_values("point", key=lambda s: s.map(order))
                panels.append({"title": name, "values": list(rows["level"]),
                               "diff": list(rows["diff"]), "low": list(rows["diff_low"]),
                               "high": list(rows["diff_high"]), "verdict": list(rows["verdict"])})
            if panels:
                figures.append(Figure(
                    F.slug("difference", dataset, axis, kind),
                    f"{KIND_NAMES[kind]}: Δ against {axis} ({dataset})",
                    f"Paired difference (positive favours the variant) with its interval band "
                    f"(simultaneous within each hypothesis, Bonferroni) against {axis}, other "
                    "axes at their default; levels in numeric order. Triangles: better (up) / "
                    "worse (down).",
                    F.difference_figure(panels, axis), "differences"))
    return figures
