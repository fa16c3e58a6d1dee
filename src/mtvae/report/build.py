"""Build a study's report from its ``results.db`` alone: ``report/index.html`` + ``report.md``.

The HTML is self-contained (figures embedded as base64 PNG data URIs, compacted by
:func:`~mtvae.report.figures.compact_png`; inline CSS, no network)
and rendered by Jinja2 with autoescaping, so study and variant names are shown, never run.
The Markdown has the same content and links the same figures saved as PNG files beside it.

Why one module of over 400 lines: it decides what one report holds, its tables and which
figures it shows, as short functions of the study's data; the drawing itself is
:mod:`mtvae.report.figures`, the Answer, findings, fronts and LaTeX have their own modules.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pandas as pd

from mtvae import __version__
from mtvae.analysis.results import StudyResults, read_store
from mtvae.evaluate.catalogue import FAMILY_ORDER, GROUP_ORDER
from mtvae.io import atomic_write, write_text
from mtvae.report import figures as F
from mtvae.report.answer import answer_context, answer_figures, difference_figures
from mtvae.report.convergence import convergence_figures, convergence_lines
from mtvae.report.figures import Figure
from mtvae.report.findings import effect, fmt, marks, signed, verdict_word
from mtvae.report.front import front_context, front_figures
from mtvae.report.methodology import methodology, table
from mtvae.study.axes import level_label
from mtvae.study.expand import point_label
from mtvae.study.store import Store

SECTIONS = ("answer", "differences", "axes", "pareto", "grids", "mtvae", "curves")


# The report renders this typed object (see mtvae.analysis.results); the name stays for callers.
StudyData = StudyResults


FORMATS = ("html", "latex", "pdf")
# what `mtvae study` writes; "pdf?": main.pdf where pdflatex is installed, a failure only warns
STUDY_FORMATS = ("html", "latex", "pdf?")


def build_report(study_dir: str | Path, formats: tuple[str, ...] = ("html",)) -> Path:
    """(Re)write ``STUDY_DIR/report/`` from ``results.db``; return the path of index.html.

    ``formats``: ``html`` (index.html + report.md), ``latex`` (``report/latex/``, see
    :mod:`mtvae.report.latex`), ``pdf`` (latex, then ``latex/main.pdf`` with pdflatex).
    """
    study_dir = Path(study_dir)
    store = Store(study_dir / "results.db", create=False)
    try:
        data = read_store(store)
        figures = make_figures(data)
        context = report_context(data, figures)
    finally:
        store.close()
    out = study_dir / "report"
    latex = bool({"latex", "pdf", "pdf?"} & set(formats))
    if latex:
        from mtvae.report.latex import compile_requested, write_latex

        write_latex(out / "latex", data, context, figures)
    if "html" not in formats:
        compile_requested(out / "latex", formats)
        return out / "index.html"
    (out / "figures").mkdir(parents=True, exist_ok=True)
    for old in (out / "figures").glob("*.png"):
        old.unlink()
    for figure in figures:
        atomic_write(out / figure.file, lambda p, f=figure: p.write_bytes(f.png))
    write_text(out / "report.md", render("report.md.j2", context, html=False))
    write_text(out / "index.html", render("report.html.j2", context, html=True))
    for path in [out / "report.md", out / "index.html", *(out / "figures").glob("*.png")]:
        path.chmod(0o644)  # a report is for reading: temporary files are created private
    if latex:
        compile_requested(out / "latex", formats)
    return out / "index.html"


def render(template: str, context: dict[str, Any], html: bool) -> str:
    """Render a packaged template (autoescaped for HTML)."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    # Markdown passes inline HTML through, so its values get < and > as entities (a study
    # named "<script>..." shows as text in any Markdown viewer); idempotent, so a table a
    # macro built is not escaped twice.
    finalize = None if html else _markdown_text
    env = Environment(loader=PackageLoader("mtvae.report", "templates"), autoescape=html,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      finalize=finalize)
    env.filters["md"] = lambda s: str(s).replace("|", "\\|").replace("\n", " ")
    return env.get_template(template).render(**context)


def _markdown_text(value: Any) -> str:
    """``value`` as Markdown text that no viewer reads as HTML (``<``, ``>`` as entities)."""
    return str(value).replace("<", "&lt;").replace(">", "&gt;")


# --- context ----------------------------------------------------------------------------
def report_context(data: StudyData, figures: list[Figure]) -> dict[str, Any]:
    """The data both templates render."""
    spec = data.spec
    failed = [r for r in data.runs if r["status"] == "failed"]
    return {
        "title": f"Study report: {spec['name']}",
        "spec": spec,
        "generated": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "version": __version__,
        "answer": answer_context(data, len(failed)),
        "front": front_context(data, figures),
        "convergence": convergence_lines(data),
        "methodology": methodology(spec, data.runs, data.cells, data.default, data.sessions),
        "hypotheses": hypotheses_table(data),
        "trends": trends_table(data),
        "crossovers": crossovers_table(data),
        "levels": levels_table(data),
        "results": results_tables(data),
        "exploratory": exploratory_rows(data),
        "failed": table(["run", "variant", "dataset", "seed", "error"],
                        [[r["run_id"], r["variant"], r["dataset"], r["seed"],
                          (r["error"] or "").splitlines()[0][:300]] for r in failed]),
        "figures": figures,
        "sections": {s: [f for f in figures if f.section == s] for s in SECTIONS},
    }


def _p(value: float) -> str:
    return "—" if value != value else fmt(value)


def hypotheses_table(data: StudyData) -> dict[str, Any]:
    """Every hypothesis at every condition point with its statistics and verdict."""
    rows = []
    for _, r in data.table.iterrows():
        test = ("superiority" if r["test"] == "superiority"
                else f"non-inferiority (margin {fmt(r['margin'])})")
        rows.append([r["hypothesis"], r["dataset"], point_label(r["point"]), test, r["n"],
                     fmt(r["mean_variant"]), fmt(r["mean_baseline"]), effect(r),
                     r["family_size"], _p(r["d_z"]), _p(r["g_z"]), _p(r["p_t"]),
                     _p(r["p_t_adj"]), _p(r["p_w"]), verdict_word(r) + marks(r),
                     _p(r["detectable"])])
    return table(["hypothesis", "dataset", "condition", "test", "seeds", "variant mean",
                  "baseline mean", "Δ [simultaneous interval]", "cells in family", "d_z",
                  "g_z (corrected)", "p (t)", "p (t, Bonferroni)", "p (Wilcoxon, unadjusted)",
                  "verdict", "detectable |Δ| (80%)"], rows)


def trends_table(data: StudyData) -> dict[str, Any]:
    """The trend test of every hypothesis along every numeric axis."""
    rows = []
    for _, r in data.trends.iterrows():
        scale = "log10" if r["log"] else "linear"
        rows.append([r["hypothesis"], r["dataset"], r["axis"],
                     ", ".join(f"{level_label(v)} (at {fmt(x)})"
                               for v, x in zip(r["levels"], r["positions"], strict=True)), scale,
                     f"{fmt(r['slope'])} [{fmt(r['slope_low'])}, {fmt(r['slope_high'])}]",
                     r["n_seeds"], _p(r["p"])])
    return table(["hypothesis", "dataset", "axis", "levels (at position)", "scale",
                  "slope of Δ per unit [95% CI]", "seeds", "p (trend)"], rows)


def crossovers_table(data: StudyData) -> dict[str, Any]:
    """Every tested change between neighbouring levels, crossovers marked."""
    rows = [[r["hypothesis"], r["dataset"], r["axis"],
             f"{level_label(r['low'])} | {level_label(r['high'])}",
             f"{signed(r['diff_below'])} [{fmt(r['below_low'])}, {fmt(r['below_high'])}]",
             f"{signed(r['diff_above'])} [{fmt(r['above_low'])}, {fmt(r['above_high'])}]",
             f"{signed(r['change'])} [{fmt(r['change_low'])}, {fmt(r['change_high'])}]",
             _p(r["p_change_adj"]), "crossover" if r["crossover"] else "—"]
            for _, r in data.changes_table.iterrows()]
    return table(["hypothesis", "dataset", "axis", "split",
                  "Δ up to the split [crossover level]", "Δ from the split on [crossover level]",
                  "change [interval]", "p (change, Bonferroni)",
                  "crossover"], rows)


def levels_table(data: StudyData) -> dict[str, Any]:
    """Each variant against itself across the levels of each categorical axis."""
    rows = [[r["variant"], r["dataset"], r["metric"], r["axis"],
             f"{level_label(r['level'])} vs {level_label(r['reference'])}", r["n"],
             effect(r), _p(r["p_t"]), _p(r["p_t_adj"]), verdict_word(r)]
            for _, r in data.levels.iterrows()]
    return table(["variant", "dataset", "metric", "axis", "level vs reference", "seeds",
                  "Δ [simultaneous interval]", "p (t)", "p (t, Bonferroni over levels)",
                  "verdict"], rows)


def _shown_metrics(summary: pd.DataFrame) -> list[str]:
    """Metrics for the result tables: outcomes by family, then descriptive info metrics (info
    with a family); leakage is shown as a heat map instead."""
    order = {f: i for i, f in enumerate(GROUP_ORDER)}
    keys = summary[["metric", "family", "kind"]].drop_duplicates("metric")
    keys = keys[keys["family"].notna() & ~keys["metric"].str.startswith("leakage/")]
    keys = keys.assign(rank=keys["family"].map(lambda f: order.get(f, len(order))),
                       info=keys["kind"] != "outcome")
    return keys.sort_values(["info", "rank", "metric"], kind="stable")["metric"].tolist()


def results_tables(data: StudyData) -> list[dict[str, Any]]:
    """Per dataset and condition (in axis order): metric rows x variant columns,
    ``mean [95% CI]``."""
    if data.summary.empty:
        return []
    variants = list(data.spec["variants"])
    metrics = _shown_metrics(data.summary)
    rank = {p: i for i, p in enumerate(data.points)}
    out = []
    summary = data.summary.sort_values("point", key=lambda s: s.map(rank), kind="stable")
    for (dataset, point), group in summary.groupby(["dataset", "point"], sort=False):
        cells = {(r.metric, r.variant): r for r in group.itertuples()}
        present = [v for v in variants if v in set(group["variant"])]
        rows = []
        for metric in metrics:
            if not any((metric, v) in cells for v in present):
                continue
            rows.append([metric, *[_mean_ci(cells.get((metric, v))) for v in present]])
        out.append({"dataset": dataset, "condition": point_label(point),
                    "table": table(["metric", *present], rows)})
    return out


def _mean_ci(row) -> str:
    if row is None:
        return "—"
    if row.n < 2:
        return f"{fmt(row.mean)} (n=1)"
    return f"{fmt(row.mean)} [{fmt(row.ci_low)}, {fmt(row.ci_high)}]"


def exploratory_rows(data: StudyData) -> dict[str, Any]:
    """Every other paired difference: Δ with CI, d_z, uncorrected p; no verdict."""
    rows = []
    for _, r in data.exploratory.iterrows():
        rows.append([r["dataset"], point_label(r["point"]), f"{r['variant']} vs {r['baseline']}",
                     r["metric"], fmt(r["mean_variant"]), fmt(r["mean_baseline"]),
                     f"{signed_or_constant(r)}", _p(r["d_z"]), _p(r["p_t"]), _p(r["p_w"])])
    return table(["dataset", "condition", "comparison", "metric", "variant mean",
                  "baseline mean", "Δ [95% CI]", "d_z", "p (t, uncorrected)", "p (Wilcoxon)"],
                 rows)


def signed_or_constant(row) -> str:
    """Δ [CI] of an exploratory row, or its constant difference."""
    if row["constant"]:
        return f"{effect({**row, 'verdict': 'constant'})} in every seed"
    return effect({**row, "verdict": ""})


# --- figures ----------------------------------------------------------------------------
_slug = F.slug


def make_figures(data: StudyData) -> list[Figure]:
    """Every figure of the report, in order."""
    figures: list[Figure] = []
    for dataset in data.spec["datasets"]:
        figures += answer_figures(data, dataset)
        figures += difference_figures(data, dataset)
        figures += axis_figures(data, dataset)
        figures += pareto_figures(data, dataset)
        figures += grid_figures(data, dataset)
        figures += curve_figures(data, dataset)
    figures += front_figures(data)  # the task-weight fronts (#26), across datasets
    figures += convergence_figures(data)
    seen: dict[str, int] = {}
    for figure in figures:  # ids must be unique file names
        seen[figure.id] = seen.get(figure.id, 0) + 1
        if seen[figure.id] > 1:
            figure.id = f"{figure.id}-{seen[figure.id]}"
    return figures


def _slice(summary: pd.DataFrame, axis: str, defaults: dict[str, Any]) -> pd.DataFrame:
    """Rows whose point has every axis but ``axis`` at its default; column x = axis value."""
    points = summary["point"].map(json.loads)
    keep = points.map(lambda p: all(p.get(a) == v for a, v in defaults.items() if a != axis))
    part = summary[keep].copy()
    part["x"] = points[keep].map(lambda p: F._short(p.get(axis)))
    return part


def axis_figures(data: StudyData, dataset: str) -> list[Figure]:
    """Each compared metric against each condition axis, per family."""
    if data.summary.empty:
        return []
    summary = data.summary[(data.summary["dataset"] == dataset)
                           & (data.summary["kind"] == "outcome")]
    variants = list(data.spec["variants"])
    figures = []
    for axis, values in data.spec["conditions"].items():
        if len(values) < 2:
            continue
        part = _slice(summary, axis, data.default_values)
        for family in FAMILY_ORDER:
            metrics = sorted(part.loc[part["family"] == family, "metric"].unique())
            if not metrics:
                continue
            png = F.axis_figure(part, axis, values, metrics, variants)
            figures.append(Figure(
                _slug("axis", dataset, axis, family),
                f"{family.capitalize()} metrics against {axis} ({dataset})",
                f"Mean over seeds with 95% CI bands; other axes at their default "
                f"({point_label({a: v for a, v in data.default_values.items() if a != axis})}).",
                png, "axes"))
    return figures


def pareto_figures(data: StudyData, dataset: str) -> list[Figure]:
    """Reconstruction error against task score, per variant and condition."""
    rows = []
    recon = "recon/mse"
    for cell in data.cells:
        run = data.run_by_id[cell["run_id"]]
        if cell["dataset"] != dataset or run["status"] != "done":
            continue
        score = F.task_score(run["metrics"], run["config"]["model"].get("tasks"))
        if score is None or recon not in run["metrics"]:
            continue
        rows.append({"variant": cell["variant"],
                     "label": cell["variant"] + (" (probe)" if score[1] == "probe" else ""),
                     "condition": point_label(cell["point"]), "x": run["metrics"][recon],
                     "y": score[0]})
    if not rows:
        return []
    points = []
    for (variant, label, condition), group in pd.DataFrame(rows).groupby(
        ["variant", "label", "condition"], sort=False
    ):
        x, xl, _ = _mean_half(group["x"])
        y, yl, _ = _mean_half(group["y"])
        points.append({"variant": variant, "label": label, "condition": condition, "x": x,
                       "x_err": xl, "y": y, "y_err": yl})
    png = F.pareto_figure(pd.DataFrame(points), recon, F.variant_colors(list(data.spec["variants"])))
    return [Figure(_slug("pareto", dataset), f"Reconstruction vs task performance ({dataset})",
                   "Each marker is a variant at one condition (mean over seeds, 95% CI bars). Task "
                   "score: mean test accuracy (categorical) / R² (regression) over the model's "
                   "tasks, from its own heads, or from linear probes where it has no heads (marked "
                   "'probe'). Models without "
                   "a decoder have no reconstruction and are not shown. Dashed: Pareto front.",
                   png, "pareto")]


def _mean_half(values: pd.Series) -> tuple[float, float, float]:
    from mtvae.analysis.stats import t_interval

    mean, low, _ = t_interval(values.to_numpy())
    half = 0.0 if low != low else mean - low
    return mean, half, half


def _representative(data: StudyData, dataset: str) -> dict[str, str]:
    """variant -> run id at the default point, first seed (that finished)."""
    chosen = {}
    for cell in sorted(data.cells, key=lambda c: c["seed"]):
        run = data.run_by_id[cell["run_id"]]
        if cell["dataset"] == dataset and cell["point"] == data.default and run["status"] == "done":
            chosen.setdefault(cell["variant"], cell["run_id"])
    return chosen


GRIDS = {
    "figure:reconstructions": ("Reconstructions", "test images (left of each pair) and their "
                               "reconstruction from the posterior mean (right)"),
    "figure:samples": ("Samples", "samples from the prior"),
    "figure:traversals": ("Latent traversals", "the posterior mean of one test image with one "
                          "latent dimension per row set to each value of the columns (−3 to 3), "
                          "the others kept, decoded; rows are labelled by latent block"),
}


def grid_figures(data: StudyData, dataset: str) -> list[Figure]:
    """Reconstruction and sample grids per variant; traversals and leakage for MT-VAEs."""
    figures = []
    where = point_label(data.default)
    for variant, rid in _representative(data, dataset).items():
        names = data.store.artifact_names(rid)
        for name, (title, caption) in GRIDS.items():
            if name in names:
                section = "mtvae" if name == "figure:traversals" else "grids"
                figures.append(Figure(_slug(name.replace("figure:", ""), dataset, variant),
                                      f"{title}: {variant} ({dataset})",
                                      f"{caption.capitalize()}; run {rid} ({where}, first seed).",
                                      data.store.artifact(rid, name)[1], section))
        for name in names:
            if name.startswith("figure:") and name not in GRIDS:
                figures.append(Figure(_slug(name[7:], dataset, variant),
                                      f"{name[7:].replace('_', ' ').capitalize()}: {variant} "
                                      f"({dataset})", f"Evaluation figure of run {rid}.",
                                      data.store.artifact(rid, name)[1], "mtvae"))
        matrix = F.leakage_from_metrics(data.run_by_id[rid]["metrics"])
        if not matrix and "leakage" in names:  # a study run before the matrix was a metric
            matrix = F.load_json_artifact(data.store.artifact(rid, "leakage")[1])
        if matrix:
            figures.append(Figure(_slug("leakage", dataset, variant),
                                  f"Leakage: {variant} ({dataset})",
                                  "Linear-probe score (accuracy or R²) of each task (columns) "
                                  "from each latent block (rows) on test data; off-diagonal "
                                  f"mass is task information outside its own block. Run {rid}.",
                                  F.leakage_figure(matrix, f"{variant}: block × task"), "mtvae"))
    return figures


def curve_figures(data: StudyData, dataset: str) -> list[Figure]:
    """Training curves per variant at the default point (all seeds)."""
    curves: dict[str, list] = {}
    for cell in data.cells:
        if cell["dataset"] != dataset or cell["point"] != data.default:
            continue
        stored = data.store.artifact(cell["run_id"], "curve")
        if stored:
            curves.setdefault(cell["variant"], []).append(F.load_json_artifact(stored[1]))
    if not any(any(c) for c in curves.values()):
        return []
    return [Figure(_slug("curves", dataset), f"Training curves ({dataset})",
                   f"Training and validation loss per epoch at {point_label(data.default)}: mean "
                   "over seeds, band from the lowest to the highest seed. Losses are each model's "
                   "own objective, so their scales differ between models.",
                   F.curves_figure(curves), "curves")]

