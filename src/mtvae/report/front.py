"""The report's section on the MT-VAE's trade-off over its task weight (and Δm).

A study with the ``task_weight`` axis gets, per front (:mod:`mtvae.analysis.front`): a figure
with one panel per task (each fixed weight's reconstruction against the task's primary metric,
both with seed intervals, joined in weight order; each adaptive strategy placed on it; the
VAE's point and the supervised network's task level beside it), the verdict sentence (the
range of weights that dominate the VAE, or none), the tests behind it and the placement of each
adaptive strategy against the tuned front. A study with single-task runs gets its Δm table.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from mtvae.analysis import front as A
from mtvae.evaluate.catalogue import direction_word, lookup
from mtvae.report import figures as F
from mtvae.report.convergence import MARK
from mtvae.report.figures import Figure
from mtvae.report.findings import DAGGER, fmt
from mtvae.report.methodology import table
from mtvae.study.axes import level_label
from mtvae.study.expand import point_label

MARKERS = "sD^vPX<>"


def _analyse(data) -> A.FrontAnalysis:
    """The study's front analysis, computed once per results object (its figures, section
    and Answer lines all read the same one)."""
    return data.front


def _interval(mean: float, low: float, high: float) -> str:
    if mean != mean:
        return "—"
    return fmt(mean) if low != low else f"{fmt(mean)} [{fmt(low)}, {fmt(high)}]"


def _signed(value: float, low: float, high: float) -> str:
    if value != value:
        return "—"
    text = f"{value:+.3g}"
    return text if low != low else f"{text} [{low:+.3g}, {high:+.3g}]"


def _where(dataset: str, rest: str) -> str:
    label = point_label(rest)
    return dataset if label == "default" else f"{dataset} ({label})"


# --- figures -------------------------------------------------------------------------------
def front_figure(points: pd.DataFrame) -> bytes:
    """One panel per task: weights joined in order, adaptive strategies, VAE, supervised."""
    plt = F._plt()
    tasks = list(dict.fromkeys(points["task"]))
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.6 * len(tasks), 4.0), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        _panel(ax, points[points["task"] == task], task)
    fig.tight_layout()
    return F.to_png(fig)


def _errorbar(ax, row, **style) -> None:
    xerr = None if row["recon_low"] != row["recon_low"] else [
        [row["recon_mean"] - row["recon_low"]], [row["recon_high"] - row["recon_mean"]]]
    yerr = None if row["task_low"] != row["task_low"] else [
        [row["task_mean"] - row["task_low"]], [row["task_high"] - row["task_mean"]]]
    ax.errorbar(row["recon_mean"], row["task_mean"], xerr=xerr, yerr=yerr, capsize=2, **style)


def _panel(ax, part: pd.DataFrame, task: str) -> None:
    weights = part[part["kind"] == A.Role.WEIGHT].sort_values("weight")
    ax.plot(weights["recon_mean"], weights["task_mean"], color="tab:blue", lw=1, zorder=1)
    for _, row in weights.iterrows():
        _errorbar(ax, row, fmt="o", color="tab:blue", ms=5, zorder=2)
        ax.annotate(row["label"], (row["recon_mean"], row["task_mean"]), fontsize=7,
                    textcoords="offset points", xytext=(4, 4))
    ax.plot([], [], "o-", color="tab:blue", label="fixed task weight (×auto)")
    adaptive = part[part["kind"] == A.Role.ADAPTIVE]
    for i, (_, row) in enumerate(adaptive.iterrows()):
        _errorbar(ax, row, fmt=MARKERS[i % len(MARKERS)], color=F._plt().get_cmap("tab10")(
            (i + 1) % 10), ms=6, label=f"{row['label']} (×{level_label(row['weight'])})")
    for _, row in part[part["kind"] == A.Role.RECON_REFERENCE].iterrows():
        _errorbar(ax, row, fmt="*", color="black", ms=10, label=row["label"])
    for _, row in part[part["kind"] == A.Role.TASK_REFERENCE].iterrows():
        if row["task_mean"] == row["task_mean"]:
            ax.axhline(row["task_mean"], color="gray", ls="--", lw=1, label=row["label"])
            if row["task_low"] == row["task_low"]:
                ax.axhspan(row["task_low"], row["task_high"], color="gray", alpha=0.15)
    recon = next((m for m in part["recon_metric"] if isinstance(m, str)), "reconstruction")
    metric = next((m for m in weights["task_metric"] if isinstance(m, str)
                   and m.startswith("task/")), f"task/{task}")
    ax.set_xlabel(f"{recon} ({direction_word(recon)} is better)")
    ax.set_ylabel(f"{metric} ({direction_word(metric)} is better; ×0: probe)")
    ax.set_title(task, fontsize=9)
    ax.legend(fontsize=6, loc="best")


def front_figures(data) -> list[Figure]:
    """One figure per front (dataset, point of the other axes, variant)."""
    analysis = _analyse(data)
    figures = []
    for front, points in zip(analysis.fronts, analysis.points, strict=True):
        if points.empty:
            continue
        g = front.group
        figures.append(Figure(
            F.slug("front", g.dataset, g.variant, *json.loads(g.rest).values()),
            f"The {g.variant} front over the task weight ({_where(g.dataset, g.rest)})",
            "Each blue point is one fixed task weight (a multiple of the automatic task_scale), "
            "joined in weight order: its mean reconstruction against the task's primary "
            "metric, with 95% t-intervals over seeds both ways. At weight 0 no head is trained "
            "and the task metric is the linear probe on the same latent (the two-stage VAE). "
            f"Other markers: adaptive weighting strategies; star: the reconstruction baseline "
            f"{front.vae_name} with its linear probe; dashed line and band: the task level of "
            f"{front.supervised_name or 'the supervised network'}.",
            front_figure(points), "front"))
    return figures


# --- tables and sentences ------------------------------------------------------------------
def verdict_sentences(verdicts: pd.DataFrame, alpha: float) -> list[str]:
    """One sentence per front and task: which weights dominate the VAE."""
    out = []
    for _, r in verdicts.iterrows():
        where = f"{_where(r['dataset'], r['rest'])}, {r['variant']}, {r['task']}"
        if r["range"] == "not tested":
            out.append(f"{where}: not tested (fewer than two paired seeds, or the "
                       "reconstruction baseline has no probe or reconstruction metric).")
            continue
        unit = lookup(r["recon_metric"]).unit if lookup(r["recon_metric"]) else ""
        what = (f"a task metric better than {r['baseline']}'s probe with {r['recon_metric']} "
                f"no worse than {r['baseline']}'s by more than {fmt(r['margin'])} {unit}".rstrip()
                + f"; paired tests over seeds, Holm over the {len(r['tested'])} weights, "
                f"α = {fmt(alpha)}")
        if r["dominating"]:
            out.append(f"{where}: the task weights {r['range']} dominate the reconstruction "
                       f"baseline {r['baseline']} ({what})." + convergence_note(r))
        else:
            out.append(f"{where}: no task weight dominates the reconstruction baseline "
                       f"{r['baseline']} (none has {what})." + convergence_note(r))
    return out


def _verdict_table(verdicts: pd.DataFrame) -> dict[str, Any]:
    rows = []
    for _, r in verdicts.iterrows():
        for d in r["details"]:
            rows.append([r["dataset"], point_label(r["rest"]), r["variant"], r["task"],
                         f"×{level_label(d['weight'])}",
                         _signed(d["task_diff"], d["task_low"], d["task_high"]),
                         fmt(d["p_task"]),
                         _signed(d["recon_diff"], d["recon_low"], d["recon_high"]),
                         fmt(d["p_recon"]), "yes" if d["dominates"] else "no"])
    return table(["dataset", "condition", "variant", "task", "weight",
                  "task Δ vs baseline probe [95% CI]", "p (better, Holm)",
                  "reconstruction Δ vs baseline [95% CI]", "p (no worse, Holm)", "dominates"], rows)


def _placement_table(placements: pd.DataFrame) -> dict[str, Any]:
    rows = [[r["dataset"], point_label(r["rest"]), r["variant"], r["strategy"],
             f"×{level_label(r['weight'])}", r["task"],
             f"×{level_label(r['tuned_weight'])} ({r['tuned_on']})", r["n"],
             _signed(r["task_diff"], r["task_low"], r["task_high"]),
             _signed(r["recon_diff"], r["recon_low"], r["recon_high"]), r["place"]]
            for _, r in placements.iterrows()]
    return table(["dataset", "condition", "variant", "strategy", "weight", "task",
                  "best fixed weight (tuned on)", "seeds", "task Δ [95% CI]",
                  "reconstruction Δ [95% CI]", "place"], rows)


def placement_sentences(placements: pd.DataFrame) -> list[str]:
    """One sentence per adaptive strategy and task."""
    words = {"above": "above the front (it dominates the best fixed weight)",
             "below": "below the front (the best fixed weight dominates it)",
             "on": "on the front (neither dominates the other)"}
    return [f"{_where(r['dataset'], r['rest'])}, {r['task']}: {r['variant']} with "
            f"{r['strategy']} is {words[r['place']]}; best fixed weight "
            f"×{level_label(r['tuned_weight'])}, tuned on the {r['tuned_on']} split."
            for _, r in placements.iterrows()]


def _delta_m_table(delta_m: pd.DataFrame) -> dict[str, Any]:
    rows = [[r["dataset"], point_label(r["point"]), r["variant"],
             ", ".join(r["metrics"]), r["n"],
             _signed(r["delta_m"], r["low"], r["high"]) + " %"]
            for _, r in delta_m.iterrows()]
    return table(["dataset", "condition", "variant", "task metrics", "seeds",
                  "Δm vs single-task [95% CI]"], rows)


def front_context(data, figures: list[Figure]) -> dict[str, Any]:
    """What the templates' front section renders (``present`` False: no section)."""
    analysis = _analyse(data)
    verdicts, placements = analysis.verdicts, analysis.placements
    delta_m = analysis.delta_m
    return {
        "present": bool(analysis.fronts) or not delta_m.empty,
        "has_front": bool(analysis.fronts),
        "verdicts": verdict_sentences(verdicts, analysis.alpha) if not verdicts.empty else [],
        "tests": _verdict_table(verdicts) if not verdicts.empty else table([], []),
        "placements": (placement_sentences(placements) if not placements.empty else []),
        "placement_table": (_placement_table(placements) if not placements.empty
                            else table([], [])),
        "delta_m": _delta_m_table(delta_m) if not delta_m.empty else table([], []),
        "figures": [f for f in figures if f.section == "front"],
        "text": FRONT_TEXT,
        "delta_m_text": DELTA_M_TEXT,
    }


# --- the Answer's lines ---------------------------------------------------------------------
def answer_paragraphs(data) -> list[dict]:
    """The Answer's paragraphs (``kind``, ``lead``, ``sentences``, as the outcome kinds'):
    the trade-off over the task weight when the axis is present, Δm when single-task runs
    exist; none otherwise."""
    analysis = _analyse(data)
    out = []
    verdicts = analysis.verdicts
    if not verdicts.empty:
        out.append({"kind": "Trade-off over the task weight", "lead": tradeoff_lead(verdicts),
                    "sentences": [tradeoff_line(r) for _, r in verdicts.iterrows()]})
    delta_m = analysis.delta_m
    if not delta_m.empty:
        out.append({"kind": "Multitask against single-task (Δm)",
                    "lead": DELTA_M_LEAD + _lead_caveat(delta_m, "multitask group(s)"),
                    "sentences": [delta_m_line(r) for _, r in delta_m.iterrows()]})
    return out


def tradeoff_lead(verdicts: pd.DataFrame) -> str:
    """How many fronts and tasks have a weight that dominates the reconstruction baseline."""
    tested = verdicts[verdicts["range"] != "not tested"]
    some = int(sum(bool(d) for d in tested["dominating"]))
    return (f"Some fixed task weight dominates the reconstruction baseline (task metric better "
            f"than its linear probe, reconstruction no worse within the smallest effect of "
            f"interest; paired tests over seeds, Holm across the weights) for {some} of "
            f"{len(tested)} tested tasks and fronts. Δ > 0 favours the weight; p Holm-adjusted; "
            f"the detail is in the section on the trade-off below."
            + _lead_caveat(tested, "tested task(s) and front(s)"))


def _lead_caveat(rows: pd.DataFrame, what: str) -> str:
    """`` ‡ in k of n <what> a run behind it did not converge.`` (or '')."""
    bad = int((rows["not_converged"] > 0).sum()) if "not_converged" in rows else 0
    return (f" {MARK} In {bad} of {len(rows)} {what} a run behind the line did not converge."
            if bad else "")


def convergence_note(r) -> str:
    """`` ‡ k of n runs behind it did not converge: ...`` for a line whose runs include one
    that did not converge, else ''."""
    if not r.get("not_converged", 0):
        return ""
    return (f" {MARK} {r['not_converged']} of {r['n_runs']} runs behind it did not converge: "
            "its effect may be a property of the training budget.")


def tradeoff_line(r) -> str:
    """One front and task: the dominating weights (or none) with the numbers of the one that
    gains most on the task (or, when none dominates, the one nearest to dominating)."""
    where = f"{_where(r['dataset'], r['rest'])}, {r['variant']}, {r['task']}"
    if r["range"] == "not tested":
        return (f"{where}: not tested (fewer than two paired seeds, or no baseline probe)."
                + convergence_note(r))
    details = r["details"]
    if r["dominating"]:
        d = max((d for d in details if d["dominates"]), key=lambda d: d["task_diff"])
        head = f"the task weights {r['range']} dominate {r['baseline']}; at ×"
    else:
        d = min(details, key=lambda d: max(d["p_task"], d["p_recon"]))
        head = f"no task weight dominates {r['baseline']}; nearest ×"
    return (f"{where}: {head}{level_label(d['weight'])} the task metric Δ {fmt_signed(d['task_diff'])} "
            f"against its probe (better: p = {fmt(d['p_task'])}) and {r['recon_metric']} Δ "
            f"{fmt_signed(d['recon_diff'])} (no worse than −{fmt(r['margin'])}: "
            f"p = {fmt(d['p_recon'])})." + chance_note(d.get("unlearned", []))
            + convergence_note(r))


def chance_note(unlearned: list[str]) -> str:
    """`` † Not shown above chance on the task: ...`` for the scores of a line that are not,
    else ''."""
    return (f" {DAGGER} Not shown above chance on the task: {', '.join(unlearned)}."
            if unlearned else "")


def fmt_signed(value: float) -> str:
    """``+0.12`` / ``−0.3`` (a true minus sign), ``n/a`` for NaN."""
    return "n/a" if value != value else f"{value:+.3g}".replace("-", "−")


def delta_m_verdict(low: float, high: float) -> str:
    """better / worse exactly when the interval excludes 0; else no evidence."""
    if low != low:
        return "not tested"
    return "better" if low > 0 else "worse" if high < 0 else "no evidence"


def delta_m_line(r) -> str:
    """One multitask run group: Δm with its interval over seeds and what it says."""
    where = f"{_where(r['dataset'], r['point'])}, {r['variant']}"
    metrics = ", ".join(r["metrics"])
    if r["low"] != r["low"]:
        return (f"{where}: Δm {fmt_signed(r['delta_m'])} % from {r['n']} seed (no interval); "
                f"not tested ({metrics})." + chance_note(r.get("unlearned", []))
            + convergence_note(r))
    if r["low"] == r["high"]:  # the same in every seed: a fixed difference, no test applies
        return (f"{where}: Δm {fmt_signed(r['delta_m'])} % in each of {r['n']} seeds, "
                f"identical in every seed (no test; {metrics})." + chance_note(r.get("unlearned", []))
            + convergence_note(r))
    return (f"{where}: Δm {_signed(r['delta_m'], r['low'], r['high'])} % over {r['n']} seeds: "
            f"{delta_m_verdict(r['low'], r['high'])} ({metrics} against the single-task "
            "models)." + chance_note(r.get("unlearned", []))
            + convergence_note(r))


DELTA_M_LEAD = (
    "LibMTL's Δm: the mean relative change (in %) of each task's primary metric against the "
    "single-task model of that task (the same configuration with that task alone), positive "
    "favouring the multitask model, per seed and "
    "then averaged with its 95% t-interval over seeds (not corrected across groups): better "
    "or worse exactly when the interval excludes 0.")


FRONT_TEXT = (
    "The task weight (a multiple of the automatic task_scale) moves the MT-VAE from a VAE with "
    "untrained heads (0) towards a supervised network. A weight dominates the VAE when its task "
    "metric is better than the VAE's linear probe and its reconstruction is no worse than the "
    "VAE's by more than the smallest effect of interest. Adaptive weighting strategies are "
    "compared with the best fixed weight, chosen on the validation split and compared on the "
    "test split (Kurin et al. 2022, Xin et al. 2022)."
)
DELTA_M_TEXT = (
    "Δm (as in LibMTL): the mean over tasks of the relative change of each task's primary "
    "metric against the single-task model of that task (the same configuration with one task), "
    "signed so that positive favours the multitask model, in %, per seed and then averaged "
    "with its 95% t-interval."
)
