"""The report's figures, drawn with matplotlib from stored results (PNG bytes).

Each function takes tables (pandas) or stored artifacts and returns PNG bytes; nothing here
reads a run directory or trains anything.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

TASK_SCORE = re.compile(r"^task/[^/]+/(accuracy|r2)$")
PROBE_SCORE = re.compile(r"^probe/[^/]+/(accuracy|r2)$")


@dataclass
class Figure:
    """One figure of the report."""

    id: str
    title: str
    caption: str
    png: bytes
    section: str  # answer | differences | axes | pareto | grids | mtvae | curves

    def __post_init__(self) -> None:
        compact = compact_png(self.png)
        if isinstance(self.png, Rendered):  # keep the vector twin for LaTeX
            compact = Rendered(compact)
            compact.pdf = self.png.pdf
        self.png = compact

    @property
    def file(self) -> str:
        """Path relative to the report directory."""
        return f"figures/{self.id}.png"

    @property
    def data_uri(self) -> str:
        """The PNG as a data URI for the self-contained HTML."""
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


def compact_png(png: bytes) -> bytes:
    """The same picture in fewer bytes, so the self-contained HTML stays small: grey images
    (the stored sample and traversal grids) as 8-bit grey, plots as 256-colour palettes (flat
    colours and their anti-aliasing fit); the original where that is not smaller."""
    from PIL import Image

    try:
        image = Image.open(io.BytesIO(png))
        image.load()
    except Exception:  # not a PNG Pillow reads: keep it as it is
        return png
    rgb = image.convert("RGB")
    pixels = np.asarray(rgb)
    grey = bool((pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]
                                                              ).all())
    small = rgb.convert("L") if grey else rgb.quantize(colors=256)
    buffer = io.BytesIO()
    small.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue() if buffer.tell() < len(png) else png


def slug(*parts: str) -> str:
    """A file-name-safe id from parts."""
    return "-".join(re.sub(r"[^A-Za-z0-9_.]+", "_", str(p)).strip("_") or "x" for p in parts)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["text.parse_math"] = False  # names are shown as typed: "$x$" is no math
    from matplotlib import pyplot as plt

    return plt


class Rendered(bytes):
    """PNG bytes of a drawn figure; ``.pdf`` holds the same figure as vector PDF (LaTeX)."""

    pdf: bytes = b""


def to_png(fig) -> bytes:
    """Render a matplotlib figure to PNG bytes (with its vector PDF twin) and close it."""
    plt = _plt()
    buffer, vector = io.BytesIO(), io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")  # HTML < 1.5 MB (quick)
    fig.savefig(vector, format="pdf", bbox_inches="tight", metadata={"CreationDate": None})
    plt.close(fig)
    out = Rendered(buffer.getvalue())
    out.pdf = vector.getvalue()
    return out


def variant_colors(variants: list[str]) -> dict[str, tuple]:
    """One colour per variant, by its place in the spec, so every figure agrees."""
    cmap = _plt().get_cmap("tab10")
    return {v: cmap(i % 10) for i, v in enumerate(variants)}


def axis_figure(
    summary: pd.DataFrame, axis: str, values: list, metrics: list[str], variants: list[str]
) -> bytes:
    """Small multiples: each metric against the condition ``axis``, one line per variant with
    its 95% CI band. ``summary`` rows must already be the slice along ``axis`` (other axes at
    their default) and carry a column ``x`` with the axis value's label. Numeric levels are
    placed at their value, on a log axis when they span more than 10x."""
    plt = _plt()
    cols = min(4, len(metrics))
    rows = math.ceil(len(metrics) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 2.6 * rows), squeeze=False)
    colors = variant_colors(variants)
    levels, xs, log = level_positions(values)
    labels = [_short(v) for v in levels]
    for ax, metric in zip(axes.flat, metrics, strict=False):
        part = summary[summary["metric"] == metric]
        for variant in variants:
            line = part[part["variant"] == variant].set_index("x").reindex(labels)
            if line["mean"].notna().sum() == 0:
                continue
            ax.plot(xs, line["mean"], marker="o", ms=3, color=colors[variant], label=variant)
            ax.fill_between(xs, line["ci_low"], line["ci_high"], color=colors[variant], alpha=0.2)
        ax.set_title(metric, fontsize=8)
        _level_ticks(ax, xs, labels, axis, log)
        ax.tick_params(axis="y", labelsize=7)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="upper center", ncol=min(5, len(names)), fontsize=8,
               bbox_to_anchor=(0.5, 1.0 + 0.06 / rows))
    fig.tight_layout()
    return to_png(fig)


def level_positions(values: list) -> tuple[list, list[float], bool]:
    """``(levels in order, x positions, log scale?)``: numeric levels at their value (log10
    beyond a 10x span), categorical ones at 0, 1, 2, ..."""
    from mtvae.study import axes as A

    levels = A.ordered(values)
    if not A.is_numeric(values):
        return levels, [float(i) for i in range(len(levels))], False
    place = A.positions(levels)
    return levels, [place[v] for v in levels], A.log_scale(levels)


def _level_ticks(ax, xs: list[float], labels: list[str], axis: str, log: bool) -> None:
    ax.set_xticks(xs, labels, fontsize=7)
    ax.set_xlabel(f"{axis} (log scale)" if log else axis, fontsize=7)


def difference_figure(panels: list[dict], axis: str) -> bytes:
    """Paired difference Δ (positive favours the variant) against the levels of ``axis``, one
    panel per hypothesis: mean with its 95% CI band, the zero line, a marker per verdict.
    Each panel: ``title``, ``values`` (levels), ``diff``/``low``/``high`` and ``verdict``
    lists in level order."""
    plt = _plt()
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.8 * cols, 2.7 * rows), squeeze=False)
    markers = {"better": ("^", "tab:green"), "worse": ("v", "tab:red"),
               "equivalent": ("s", "tab:blue")}
    for ax, panel in zip(axes.flat, panels, strict=False):
        _, xs, log = level_positions(panel["values"])
        ax.axhline(0.0, color="black", lw=0.8)
        ax.fill_between(xs, panel["low"], panel["high"], color="tab:gray", alpha=0.25)
        ax.plot(xs, panel["diff"], color="tab:gray", marker="o", ms=3)
        for x, y, v in zip(xs, panel["diff"], panel["verdict"], strict=True):
            if v in markers:
                ax.plot([x], [y], marker=markers[v][0], color=markers[v][1], ms=7, ls="none")
        ax.set_title(panel["title"], fontsize=7)
        _level_ticks(ax, xs, [_short(v) for v in panel["values"]], axis, log)
        ax.set_ylabel("Δ (variant − baseline, oriented)", fontsize=6)
        ax.tick_params(axis="y", labelsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    return to_png(fig)


def forest_figure(panels: list[dict]) -> bytes:
    """Forest plot of the primary hypotheses: per hypothesis a panel with one row per condition
    point (Δ with its 95% CI, positive favours the variant), the zero line and, for
    non-inferiority, the margin. Each panel: ``title``, ``labels``, ``diff``, ``low``,
    ``high``, ``verdict`` lists and ``margin``."""
    plt = _plt()
    cols = min(2, len(panels))
    rows = math.ceil(len(panels) / cols)
    height = max(len(p["labels"]) for p in panels) * 0.28 + 1.0
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, height * rows), squeeze=False)
    colors = {"better": "tab:green", "worse": "tab:red", "equivalent": "tab:blue"}
    for ax, panel in zip(axes.flat, panels, strict=False):
        ys = np.arange(len(panel["labels"]))[::-1]
        for y, d, lo, hi, v in zip(ys, panel["diff"], panel["low"], panel["high"],
                                   panel["verdict"], strict=True):
            color = colors.get(v, "tab:gray")
            if lo == lo and hi == hi:
                ax.plot([lo, hi], [y, y], color=color, lw=1.5)
            ax.plot([d], [y], marker="o", color=color, ms=4)
        ax.axvline(0.0, color="black", lw=0.8)
        if panel.get("margin"):
            ax.axvline(-panel["margin"], color="tab:blue", lw=0.8, ls="--")
        ax.set_yticks(ys, panel["labels"], fontsize=6)
        ax.set_title(panel["title"], fontsize=7)
        ax.tick_params(axis="x", labelsize=7)
        ax.set_xlabel("Δ [95% CI] (positive favours the variant)", fontsize=6)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    return to_png(fig)


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return "+".join(map(str, value)) if isinstance(value, list) else str(value)


def task_score(
    metrics: dict[str, float], tasks: list[str] | None = None
) -> tuple[float, str] | None:
    """Mean test accuracy / R^2 over ``tasks`` (all when None) of the model's own heads, else of
    its linear probes; ``(score, "heads" | "probe")`` or None if it has neither."""
    for pattern, source in ((TASK_SCORE, "heads"), (PROBE_SCORE, "probe")):
        values = [v for k, v in metrics.items() if pattern.match(k) and v is not None
                  and (tasks is None or k.split("/")[1] in tasks)]
        if values:
            return float(np.mean(values)), source
    return None


def pareto_figure(points: pd.DataFrame, recon_metric: str, colors: dict[str, tuple]) -> bytes:
    """Reconstruction error (x, lower is better) against task score (y, higher is better):
    one marker per variant and condition (mean over seeds, 95% CI bars); the Pareto front of
    the means is drawn as a step line."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    variants = list(dict.fromkeys(points["label"]))
    markers = "osD^vP*X<>"
    conditions = list(dict.fromkeys(points["condition"]))
    for _, row in points.iterrows():
        ax.errorbar(row["x"], row["y"], xerr=row["x_err"], yerr=row["y_err"], fmt="none",
                    ecolor=colors[row["variant"]], alpha=0.5, lw=1)
        ax.scatter(row["x"], row["y"], color=colors[row["variant"]],
                   marker=markers[conditions.index(row["condition"]) % len(markers)], s=40,
                   edgecolor="black", linewidth=0.4, zorder=3)
    front = pareto_front(points[["x", "y"]].to_numpy())
    if len(front) > 1:
        xy = points[["x", "y"]].to_numpy()[front]
        xy = xy[np.argsort(xy[:, 0])]
        ax.step(xy[:, 0], xy[:, 1], where="post", color="gray", ls="--", lw=1, label="Pareto front")
    for label in variants:
        variant = points.loc[points["label"] == label, "variant"].iloc[0]
        ax.scatter([], [], color=colors[variant], label=label)
    for i, condition in enumerate(conditions):
        ax.scatter([], [], color="white", edgecolor="black", marker=markers[i % len(markers)],
                   label=condition)
    from mtvae.evaluate.catalogue import direction_word

    ax.set_xlabel(f"{recon_metric} ({direction_word(recon_metric)} is better)")
    ax.set_ylabel("task score: mean accuracy / R² (higher is better)")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return to_png(fig)


def pareto_front(xy: np.ndarray) -> np.ndarray:
    """Indices of the points not dominated by another (lower x and higher y are better)."""
    keep = []
    for i, (x, y) in enumerate(xy):
        dominated = np.any((xy[:, 0] <= x) & (xy[:, 1] >= y) & ((xy[:, 0] < x) | (xy[:, 1] > y)))
        if not dominated:
            keep.append(i)
    return np.asarray(keep, dtype=int)


def curves_figure(curves: dict[str, list[list[dict]]]) -> bytes:
    """Training and validation loss per epoch, one panel per variant (mean over seeds with the
    min-max band)."""
    plt = _plt()
    variants = [v for v, runs in curves.items() if any(runs)]
    cols = min(4, max(1, len(variants)))
    rows = math.ceil(len(variants) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 2.5 * rows), squeeze=False)
    for ax, variant in zip(axes.flat, variants, strict=False):
        for key, color in (("train/loss", "tab:blue"), ("val/loss", "tab:orange")):
            table = _curve_table(curves[variant], key)
            if table.empty:
                continue
            ax.plot(table.index, table.mean(axis=1), color=color, label=key.split("/")[0])
            ax.fill_between(table.index, table.min(axis=1), table.max(axis=1), color=color,
                            alpha=0.2)
        ax.set_title(variant, fontsize=9)
        ax.set_xlabel("epoch", fontsize=7)
        ax.set_ylabel("loss", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(variants):]:
        ax.axis("off")
    fig.tight_layout()
    return to_png(fig)


def _curve_table(runs: list[list[dict]], key: str) -> pd.DataFrame:
    series = {
        i: pd.Series({r["epoch"]: r[key] for r in run if key in r and r.get(key) is not None})
        for i, run in enumerate(runs)
    }
    series = {i: s for i, s in series.items() if not s.empty}
    return pd.DataFrame(series).sort_index() if series else pd.DataFrame()


def leakage_figure(matrix: dict[str, dict[str, float]], title: str) -> bytes:
    """Heat map: rows are latent blocks, columns tasks, cells the probe score of the task from
    the block (accuracy or R²). A clean MT-VAE is bright on its own task, dark elsewhere."""
    plt = _plt()
    blocks = list(matrix)
    tasks = list(dict.fromkeys(t for row in matrix.values() for t in row))
    values = np.array([[matrix[b].get(t, np.nan) for t in tasks] for b in blocks], dtype=float)
    fig, ax = plt.subplots(figsize=(1.1 * len(tasks) + 2.0, 0.55 * len(blocks) + 1.4))
    image = ax.imshow(values, cmap="viridis", vmin=min(0.0, np.nanmin(values)), vmax=1.0)
    ax.set_xticks(range(len(tasks)), tasks, fontsize=8)
    ax.set_yticks(range(len(blocks)), [f"block {b}" for b in blocks], fontsize=8)
    for (i, j), v in np.ndenumerate(values):
        if not np.isnan(v):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if v < 0.6 else "black")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return to_png(fig)


def leakage_from_metrics(metrics: dict[str, float]) -> dict[str, dict[str, float]]:
    """``leakage/<block>/<task>`` metric keys as a block x task matrix."""
    matrix: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        parts = key.split("/")
        if len(parts) == 3 and parts[0] == "leakage" and isinstance(value, int | float):
            matrix.setdefault(parts[1], {})[parts[2]] = float(value)
    return matrix


def load_json_artifact(data: bytes) -> object:
    """Parse a stored JSON artifact."""
    return json.loads(data.decode("utf-8"))
