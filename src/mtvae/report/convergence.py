"""Did the models converge, and does the answer depend on the budget?

Every run records whether its training converged by the rule of
:mod:`mtvae.train.convergence` (``converged``, ``epochs_trained``, ``best_epoch`` in
``results.db``). The report uses it four ways, all built here:

* the **convergence line**: how many runs of each variant converged;
* a **mark** (:data:`MARK`) on every hypothesis cell, pooled estimate and Answer sentence
  using a model of which at least one seed did not converge (the counts are
  :class:`~mtvae.analysis.results.StudyResults`' ``not_converged`` columns, read by
  :func:`~mtvae.analysis.convergence.run_converged`; :mod:`mtvae.report.findings` places the
  marks; :func:`cell_converged` answers per cell);
* the **validation curves**: the median over seeds of each variant's validation objective
  per epoch at the centre point, one panel per dataset;
* the **robustness statement** of a study with ``robustness: {budget: F}``: per hypothesis,
  its effect at the centre point (mean over its datasets and tasks) under the study's budget
  and under F times its maximum, whether it keeps its sign and how much its size moves.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING

import pandas as pd

from mtvae.analysis.convergence import generative_converged, generative_gap, run_converged
from mtvae.analysis.inference import hypothesis_table
from mtvae.analysis.stats import results_frame
from mtvae.evaluate.catalogue import GENERATIVE_FAMILIES
from mtvae.models.registry import get_model_entry
from mtvae.report import figures as F
from mtvae.report.figures import Figure
from mtvae.study.expand import point_label

if TYPE_CHECKING:
    from mtvae.report.build import StudyData

MARK = "‡"
RULE = ("a run converged when its last k epochs (the early-stopping patience) did not lower "
        "its best validation objective by more than train.min_improvement")


__all__ = ["MARK", "RULE", "cell_converged", "convergence_figures", "convergence_lines",
           "robustness_lines", "run_converged"]


def cell_converged(data: StudyData, dataset: str, point: str, variant: str,
                   family: str | None = None) -> bool | None:
    """Whether every finished seed of a variant converged at a condition point, for an
    outcome ``family`` (None when no seed finished or any seed's record is missing)."""
    values = [run_converged(data.run_by_id[c["run_id"]], family) for c in data.cells
              if (c["dataset"], c["point"], c["variant"]) == (dataset, point, variant)
              and data.run_by_id.get(c["run_id"], {}).get("status") == "done"]
    if not values or any(v is None for v in values):
        return None
    return all(values)


def convergence_lines(data: StudyData) -> list[str]:
    """The convergence line (runs converged per variant), and the robustness statements."""
    counts: dict[str, list[bool | None]] = {}
    for run in data.runs:
        if run["status"] == "done":
            counts.setdefault(run["variant"], []).append(run_converged(run))
    if not counts:
        return []
    if all(v is None for values in counts.values() for v in values):
        return ["Convergence: not recorded (the study ran on an mtvae from before runs "
                "recorded it)."]
    parts = [f"{variant} {sum(v is True for v in values)} of {len(values)}"
             for variant, values in counts.items()]
    line = (f"Convergence ({RULE}): runs converged per variant: {', '.join(parts)}.")
    if any(v is False for values in counts.values() for v in values):
        line += (f" Cells marked {MARK} compare a model of which at least one seed did not "
                 "converge: their effect may be a property of the budget.")
    return [line, *generative_lines(data), *robustness_lines(data)]


def generative_lines(data: StudyData) -> list[str]:
    """Per variant whose loss has task terms: how many runs' generative objective converged,
    and how far above its own best it was at the epoch the whole loss kept."""
    by_variant: dict[str, list[dict]] = {}
    for run in data.runs:
        if run["status"] == "done" and _judged_apart(run):
            by_variant.setdefault(run["variant"], []).append(run)
    if not by_variant:
        return []
    parts = []
    for variant, runs in by_variant.items():
        converged = sum(generative_converged(r) is True for r in runs)
        gap = float(pd.Series([generative_gap(r) for r in runs], dtype=float).median())
        parts.append(f"{variant} {converged} of {len(runs)} (median {gap:.3g} above its best)")
    return [f"Generative objective (the loss less its task terms, by the same rule; "
            f"{' and '.join(GENERATIVE_FAMILIES)} compare it): converged per variant with task "
            f"terms: {', '.join(parts)}, at the epoch the whole loss kept. Where it had not "
            f"converged, the task terms ended training while it still improved, and "
            f"{' and '.join(GENERATIVE_FAMILIES)} cells are marked {MARK}: their effect "
            "describes where the tasks stopped the model, not what it reaches."]


def _judged_apart(run: dict) -> bool:
    """Whether the run's generative objective differs from its whole loss: it is recorded
    and the model reads labels (its loss has task terms besides it)."""
    return generative_gap(run) is not None and get_model_entry(run["model"]).reads_labels


# --- robustness ---------------------------------------------------------------------------
def robustness_lines(data: StudyData) -> list[str]:
    """Per hypothesis: its centre-point effect under the study's budget and under the
    robustness re-runs' budget, whether it keeps its sign and how much its size moves."""
    cells = data.store.robustness_cells()
    if not cells:
        return []
    factor, point = cells[0]["factor"], cells[0]["point"]
    runs = data.store.runs()
    plain = [c for c in data.cells if c["point"] == point]
    longer = [{k: c[k] for k in ("dataset", "point", "variant", "seed", "run_id")}
              for c in cells]
    alpha = data.spec["alpha"]
    before = _effects(hypothesis_table(results_frame(plain, runs), data.hypotheses, alpha))
    after = _effects(hypothesis_table(results_frame(longer, runs), data.hypotheses, alpha))
    lines = []
    for name, base in before.items():
        if name not in after:
            continue
        lines.append(_robustness_sentence(name, base, after[name], factor, point, 1 - alpha))
    return lines


def _effects(table: pd.DataFrame) -> dict[str, tuple[float, float, float]]:
    """Per hypothesis, the mean of its effects Δ over its datasets and tasks, with the
    interval of a single effect (NaN bounds where it averages several)."""
    if table.empty:
        return {}
    out = {}
    for name, group in table.groupby("hypothesis", sort=False):
        if group["diff"].notna().any():
            one = len(group) == 1
            out[name] = (float(group["diff"].mean()),
                         float(group["diff_low"].iloc[0]) if one else math.nan,
                         float(group["diff_high"].iloc[0]) if one else math.nan)
    return out


def _robustness_sentence(name: str, base: tuple[float, float, float],
                         longer: tuple[float, float, float], factor: float, point: str,
                         confidence: float) -> str:
    """Whether the effect keeps its sign and how far it moves; with one effect's intervals
    (at ``confidence``, this point alone: wider ones in the Answer's table are simultaneous
    over the hypothesis' points), whether the longer budget's estimate lies inside the first
    one (a move within the seeds' noise: a large relative move of an effect near 0 can be)."""
    (diff, low, high), (after, after_low, after_high) = base, longer
    keeps = (diff > 0) == (after > 0) and diff != 0
    moved = abs(after - diff) / abs(diff) if diff else math.inf
    sign = "keeps its sign" if keeps else "changes sign"
    if low == low and after_low == after_low:  # intervals known (not NaN)
        inside = "inside" if low <= after <= high else "outside"
        ci = f"{confidence:.0%} CI"
        return (f"Budget ×{factor:g} ({point_label(point)}): {name}'s effect {diff:+.4g} "
                f"({ci} [{low:.3g}, {high:.3g}]) becomes {after:+.4g} ({ci} [{after_low:.3g}, "
                f"{after_high:.3g}]); it {sign} and its size moves by {moved:.0%}, {inside} the "
                "first interval.")
    return (f"Budget ×{factor:g} ({point_label(point)}): {name}'s effect {diff:+.4g} "
            f"becomes {after:+.4g}; it {sign} and its size moves by {moved:.0%}.")


# --- curves -------------------------------------------------------------------------------
def convergence_figures(data: StudyData) -> list[Figure]:
    """Validation curves at the centre point: median over seeds per variant, a panel per
    dataset."""
    panels: dict[str, dict[str, list[list[dict]]]] = {}
    for cell in data.cells:
        if cell["point"] != data.default:
            continue
        stored = data.store.artifact(cell["run_id"], "curve")
        if stored:
            panels.setdefault(cell["dataset"], {}).setdefault(cell["variant"], []).append(
                json.loads(stored[1]))
    if not any(any(any(c) for c in runs.values()) for runs in panels.values()):
        return []
    return [Figure("convergence-curves", "Validation curves",
                   f"Validation objective per epoch at {point_label(data.default)}: median over "
                   "seeds per variant (a seed that stopped early leaves the median); a dot marks "
                   "the last epoch. Objectives are each model's own, so scales differ between "
                   "models.", _curves_png(panels, list(data.spec["variants"])), "curves")]


def _curves_png(panels: dict[str, dict[str, list[list[dict]]]], variants: list[str]) -> bytes:
    plt = F._plt()
    colors = F.variant_colors(variants)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2), squeeze=False)
    for ax, (dataset, curves) in zip(axes.flat, panels.items(), strict=True):
        for variant, runs in curves.items():
            series = [pd.Series({r["epoch"]: r["val/loss"] for r in run if "val/loss" in r})
                      for run in runs]
            series = [s for s in series if not s.empty]
            if not series:
                continue
            median = pd.concat(series, axis=1).median(axis=1).sort_index()
            ax.plot(median.index, median.values, color=colors.get(variant), label=variant)
            ax.plot(median.index[-1:], median.values[-1:], "o", color=colors.get(variant))
        ax.set_title(dataset, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_ylabel("validation objective", fontsize=8)
        ax.set_yscale("symlog")
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return F.to_png(fig)
