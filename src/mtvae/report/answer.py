"""The report's Answer section: the hypotheses' table, sentences, forest and difference plots.

Everything is generated from the hypothesis table of :mod:`mtvae.study.inference`, the trends
and crossovers of :mod:`mtvae.study.trends` and the learnability check; nothing is written by
hand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mtvae.evaluate.catalogue import FAMILY_ORDER
from mtvae.report import figures as F
from mtvae.report.figures import Figure
from mtvae.report.findings import (
    KIND_NAMES,
    caveats,
    effect,
    kind_paragraphs,
    learnability_lines,
    level_lines,
    verdict_word,
)
from mtvae.report.methodology import table
from mtvae.study import learnability
from mtvae.study.expand import point_label
from mtvae.study.trends import axis_slice, numeric_axes

if TYPE_CHECKING:
    from mtvae.report.build import StudyData


def answer_context(data: StudyData, failed: int) -> dict[str, Any]:
    """Everything the Answer section shows."""
    spec = data.spec
    return {
        "table": answer_table(data),
        "kinds": kind_paragraphs(spec, data.table, data.crossovers, data.trends, spec["alpha"]),
        "levels": level_lines(data.levels),
        "learnability": learnability_lines(learnability.best_per_task(data.scores), data.table,
                                           spec),
        "caveats": caveats(data.table, data.exploratory, len(spec["seeds"]), spec["alpha"],
                           failed),
        "declared": bool(spec.get("hypotheses")),
        "intro": intro(bool(spec.get("hypotheses"))),
        "empty": ("No hypothesis could be computed (no variant with a baseline shares an "
                  "outcome metric with it)."),
    }


def intro(declared: bool) -> str:
    """The Answer's first paragraph (every renderer prints this one)."""
    where = ("The hypotheses below are declared in the study spec." if declared else
             "The spec declares no hypotheses: these are the primary hypotheses, one per outcome "
             "kind for each variant with baselines; every other metric is exploratory (Results).")
    return (f"{where} Δ is the paired difference over seeds, oriented so that positive favours "
            "the variant, with its 95% CI at that point (not adjusted for multiplicity); verdicts "
            "use Holm's correction within each hypothesis across its condition points, so an "
            "interval that excludes 0 may still be “no evidence”.")


def answer_table(data: StudyData) -> dict[str, Any]:
    """Hypotheses (rows) x condition points (columns): Δ [95% CI] and the verdict."""
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
    return f"{effect(row)} {verdict_word(row)}" + (" †" if row["unlearned"] else "")


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
                "95% CI at each condition point; green: better, red: worse, blue: equivalent "
                "within the margin (dashed), grey: no evidence (Holm within each hypothesis).",
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
                    f"Paired difference (positive favours the variant) with its 95% CI band "
                    f"against {axis}, other axes at their default; levels in numeric order. "
                    "Triangles: better (up) / worse (down) after Holm within each hypothesis.",
                    F.difference_figure(panels, axis), "differences"))
    return figures
