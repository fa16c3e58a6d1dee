"""Build a study's report from its ``results.db`` alone: ``report/index.html`` + ``report.md``.

The HTML is self-contained (figures embedded as base64 PNG data URIs, inline CSS, no network)
and rendered by Jinja2 with autoescaping, so study and variant names are shown, never run.
The Markdown has the same content and links the same figures saved as PNG files beside it.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mtvae import __version__
from mtvae.io import atomic_write, write_text
from mtvae.report import figures as F
from mtvae.report.findings import fmt, generate_findings
from mtvae.report.methodology import definition, methodology, table
from mtvae.study.expand import point_key, point_label
from mtvae.study.stats import (
    FAMILY_ORDER,
    paired_comparisons,
    results_frame,
    summarize,
    win_table,
)
from mtvae.study.store import Store


@dataclass
class Figure:
    """One figure of the report."""

    id: str
    title: str
    caption: str
    png: bytes
    section: str  # axes | pareto | grids | mtvae | curves

    @property
    def file(self) -> str:
        """Path relative to the report directory."""
        return f"figures/{self.id}.png"

    @property
    def data_uri(self) -> str:
        """The PNG as a data URI for the self-contained HTML."""
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


@dataclass
class StudyData:
    """Everything read from the database, and the statistics computed from it."""

    spec: dict[str, Any]
    runs: list[dict[str, Any]]
    cells: list[dict[str, Any]]
    sessions: list[dict[str, Any]]
    store: Store

    def __post_init__(self) -> None:
        # Rows no cell points at are left from an earlier expansion (e.g. new config defaults
        # changed the run ids); the report is about the current grid only.
        referenced = {c["run_id"] for c in self.cells}
        self.runs = [r for r in self.runs if r["run_id"] in referenced]
        self.frame = results_frame(self.cells, self.runs)
        self.summary = summarize(self.frame) if not self.frame.empty else pd.DataFrame()
        baselines = {n: v["baselines"] for n, v in self.spec["variants"].items()}
        self.comparisons = (paired_comparisons(self.frame, baselines, self.spec["alpha"])
                            if not self.frame.empty else pd.DataFrame())
        self.wins = win_table(self.comparisons)
        self.models = {n: v["model"] for n, v in self.spec["variants"].items()}
        self.default_values = {a: self.spec["default"].get(a, v[0])
                               for a, v in self.spec["conditions"].items()}
        self.default = point_key(self.default_values)
        self.run_by_id = {r["run_id"]: r for r in self.runs}


def build_report(study_dir: str | Path) -> Path:
    """(Re)write ``STUDY_DIR/report/`` from ``results.db``; return the path of index.html."""
    study_dir = Path(study_dir)
    store = Store(study_dir / "results.db", create=False)
    try:
        spec = store.meta("spec")
        if spec is None:
            from mtvae.errors import UserError

            raise UserError(f"'{study_dir}/results.db' holds no study spec; is it a study dir?")
        data = StudyData(spec, store.runs(), store.cells(), store.meta("sessions", []), store)
        figures = make_figures(data)
        context = report_context(data, figures)
    finally:
        store.close()
    out = study_dir / "report"
    (out / "figures").mkdir(parents=True, exist_ok=True)
    for old in (out / "figures").glob("*.png"):
        old.unlink()
    for figure in figures:
        atomic_write(out / figure.file, lambda p, f=figure: p.write_bytes(f.png))
    write_text(out / "report.md", render("report.md.j2", context, html=False))
    write_text(out / "index.html", render("report.html.j2", context, html=True))
    for path in [out / "report.md", out / "index.html", *(out / "figures").glob("*.png")]:
        path.chmod(0o644)  # a report is for reading: temporary files are created private
    return out / "index.html"


def render(template: str, context: dict[str, Any], html: bool) -> str:
    """Render a packaged template (autoescaped for HTML)."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(loader=PackageLoader("mtvae.report", "templates"), autoescape=html,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["md"] = lambda s: str(s).replace("|", "\\|").replace("\n", " ")
    return env.get_template(template).render(**context)


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
        "methodology": methodology(spec, data.runs, data.cells, data.default, data.sessions),
        "results": results_tables(data),
        "wins": wins_table(data),
        "comparisons": comparisons_table(data),
        "failed": table(["run", "variant", "dataset", "seed", "error"],
                        [[r["run_id"], r["variant"], r["dataset"], r["seed"],
                          (r["error"] or "").splitlines()[0][:300]] for r in failed]),
        "findings": generate_findings(data.wins, data.comparisons, data.models,
                                      len(spec["seeds"]), spec["alpha"], len(failed)),
        "figures": figures,
        "sections": {s: [f for f in figures if f.section == s]
                     for s in ("axes", "pareto", "grids", "mtvae", "curves")},
    }


def _shown_metrics(summary: pd.DataFrame) -> list[str]:
    """Metrics for the result tables: compared ones by family, then defined descriptive ones."""
    order = {f: i for i, f in enumerate(FAMILY_ORDER)}
    keys = summary[["metric", "family"]].drop_duplicates()
    keys = keys[(keys["family"].notna()) | keys["metric"].map(lambda k: bool(definition(k)))]
    keys = keys[~keys["metric"].str.startswith("leakage/")]
    keys = keys.assign(rank=keys["family"].map(lambda f: order.get(f, len(order))))
    return keys.sort_values(["rank", "metric"], kind="stable")["metric"].tolist()


def results_tables(data: StudyData) -> list[dict[str, Any]]:
    """Per dataset and condition: metric rows x variant columns, ``mean [95% CI]``."""
    if data.summary.empty:
        return []
    variants = list(data.spec["variants"])
    metrics = _shown_metrics(data.summary)
    out = []
    for (dataset, point), group in data.summary.groupby(["dataset", "point"], sort=False):
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


def wins_table(data: StudyData) -> dict[str, Any]:
    """The win / tie / loss summary."""
    rows = [[r.dataset, point_label(r.point), r.variant, r.baseline, r.family, r.win, r.tie,
             r.loss, f"{r.win_holm} / {r.loss_holm}"] for r in data.wins.itertuples()]
    return table(["dataset", "condition", "variant", "baseline", "family", "wins", "ties",
                  "losses", "Holm-significant wins / losses"], rows)


def comparisons_table(data: StudyData) -> dict[str, Any]:
    """Every paired comparison with its statistics."""
    rows = []
    for r in data.comparisons.itertuples():
        rows.append([r.dataset, point_label(r.point), f"{r.variant} vs {r.baseline}", r.metric,
                     fmt(r.mean_variant), fmt(r.mean_baseline),
                     f"{fmt(r.improvement)} [{fmt(r.improvement_low)}, {fmt(r.improvement_high)}]",
                     fmt(r.d_z), fmt(r.p_t), fmt(r.p_t_holm), fmt(r.p_w), r.outcome])
    return table(["dataset", "condition", "comparison", "metric", "variant mean", "baseline mean",
                  "improvement [95% CI]", "d_z", "p (t)", "p (t, Holm)", "p (Wilcoxon)",
                  "outcome"], rows)


# --- figures ----------------------------------------------------------------------------
def _slug(*parts: str) -> str:
    return "-".join(re.sub(r"[^A-Za-z0-9_.]+", "_", str(p)).strip("_") or "x" for p in parts)


def make_figures(data: StudyData) -> list[Figure]:
    """Every figure of the report, in order."""
    figures: list[Figure] = []
    for dataset in data.spec["datasets"]:
        figures += axis_figures(data, dataset)
        figures += pareto_figures(data, dataset)
        figures += grid_figures(data, dataset)
        figures += curve_figures(data, dataset)
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
    summary = data.summary[(data.summary["dataset"] == dataset) & data.summary["family"].notna()]
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
    from mtvae.study.stats import t_interval

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
                          "latent dimension swept per row; rows are labelled by latent block"),
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
        if not matrix and "leakage" in names:
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

