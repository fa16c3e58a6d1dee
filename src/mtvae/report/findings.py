"""The Answer's sentences, generated from the pooled estimates, the per-point cells and the
tested changes.

Nothing here states a conclusion of its own: every sentence is filled in from the numbers, so
a study with other results says other things — "no evidence" included, said plainly. Every
sentence that uses a cell or estimate where a model was not shown above chance carries † (see
:data:`DAGGER`), and every one that uses a cell or estimate with a run that did not converge
carries ‡ (:data:`~mtvae.report.convergence.MARK`), a pooled estimate with how many of its
runs and points.
"""

from __future__ import annotations

import math

import pandas as pd

from mtvae.analysis.inference import CLAIMS
from mtvae.analysis.stats import min_wilcoxon_p
from mtvae.evaluate.catalogue import FAMILY_ORDER, GENERATIVE_FAMILIES
from mtvae.report.convergence import MARK
from mtvae.study import axes as A
from mtvae.study.expand import point_label

DAGGER = "†"
DAGGER_MEANS = "† a model in the comparison is not shown above chance on the task"
MARK_MEANS = (f"{MARK} a model in the comparison did not converge in at least one seed (in "
              "reconstruction and generation: also its generative objective, the loss less its "
              "task terms; its effect may be a property of the training budget, or of where "
              "the task terms stopped training)")
KIND_NAMES = {"reconstruction": "Reconstruction", "generation": "Generation",
              "representation": "Representation", "task": "Task performance"}


def fmt(value: float) -> str:
    """A number with about 3 significant digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return f"{value:.3g}"


def signed(value: float) -> str:
    """``+0.031`` / ``−0.004``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return ("+" if value > 0 else "−" if value < 0 else "±") + fmt(abs(value))


def effect(row) -> str:
    """``+0.031 [0.012, 0.05]``, or the constant difference, of a hypothesis row."""
    if row["verdict"] == "constant":
        return signed(row["diff"])
    if math.isnan(row["diff_low"]):
        return f"{signed(row['diff'])} (n={row['n']})"
    return f"{signed(row['diff'])} [{fmt(row['diff_low'])}, {fmt(row['diff_high'])}]"


def verdict_word(row) -> str:
    """The verdict as the Answer prints it."""
    if row["verdict"] == "constant":
        return "identical in every seed (no test)"
    if row["verdict"] == "equivalent":
        return f"equivalent within ±{fmt(row['sesoi'] or row['margin'])}"
    if row["verdict"] == "non-inferior":
        return f"non-inferior (Δ > −{fmt(row['margin'])})"
    return row["verdict"]


def dagger(row) -> str:
    """`` †`` when a side of the row is not shown above chance."""
    return f" {DAGGER}" if len(row["unlearned"]) else ""


def unconverged(row) -> str:
    """`` ‡`` when a run behind the row (a cell, a pooled estimate, a level comparison) did
    not converge."""
    return f" {MARK}" if row.get("not_converged", 0) else ""


def marks(row) -> str:
    """The row's caveats as marks: † (not shown above chance), ‡ (not converged)."""
    return dagger(row) + unconverged(row)


def convergence_note(row) -> str:
    """`` ‡ k of n runs behind it did not converge, at j of m condition points.`` for a pooled
    estimate with such runs, else ''."""
    if not row.get("not_converged", 0):
        return ""
    generative = row.get("family") in GENERATIVE_FAMILIES
    what = " (or their generative objective did not)" if generative else ""
    why = ", or of where the task terms stopped training" if generative else ""
    return (f" {MARK} {row['not_converged']} of {row['n_runs']} runs behind it did not "
            f"converge{what}, at {row['points_not_converged']} of {row['n_points']} condition "
            f"point(s): its effect may be a property of the training budget{why}.")


def ruled_out(row) -> str:
    """What a "no evidence" interval rules out."""
    if row["verdict"] != "no evidence" or math.isnan(row["diff_low"]):
        return ""
    return (f"; the data rule out Δ below {signed(row['diff_low'])} and above "
            f"{signed(row['diff_high'])}")


# --- one hypothesis --------------------------------------------------------------------------
def pooled_phrase(r) -> str:
    """``Δ +0.03 [0.01, 0.05] (mtvae 0.93, supervised 0.90), better (p = 0.004, Holm)``."""
    holm = "" if math.isnan(r["p_adj"]) else f", p = {fmt(r['p_adj'])} Holm"
    return (f"Δ {effect(r)} over {r['n_points']} condition point(s) and {r['n']} seeds "
            f"({r['variant']} {fmt(r['mean_variant'])}, {r['baseline_label']} "
            f"{fmt(r['mean_baseline'])}): {verdict_word(r)}{marks(r)}{holm}{ruled_out(r)}")


def change_phrase(changes: pd.DataFrame, trends: pd.DataFrame, alpha: float,
                  rows: pd.DataFrame | None = None) -> str:
    """Where the effect changes, per numeric axis (:func:`axis_change`); ``rows``, the
    hypothesis' cells, give each axis its marks (†, ‡) from the cells along it."""
    if changes.empty:
        return ""
    level = alpha / max(1, changes["axis"].nunique())  # the trend test's, Bonferroni over axes
    return "; ".join(
        axis_change(axis, group, _trend(trends, axis), level, rows)
        for axis, group in changes.groupby("axis", sort=False))


def _trend(trends: pd.DataFrame, axis: str):
    """The trend test's row of ``axis`` (None when the axis has none)."""
    if trends.empty:
        return None
    hit = trends[trends["axis"] == axis]
    return None if hit.empty else hit.iloc[0]


def axis_change(axis: str, group: pd.DataFrame, trend, level: float,
                rows: pd.DataFrame | None = None) -> str:
    """One axis, naming which test says what: the step test between neighbouring levels (each
    seed's mean Δ above a split minus below it, Bonferroni over the hypothesis' splits; a
    crossover only where both sides are significant with opposite signs, Bonferroni over those
    splits and the study's hypotheses, as a first-screen claim) and, with three or
    more levels, the trend test (one least-squares slope of Δ over every level, at
    ``level``). The two answer different questions, so each is said with its own name."""
    splits = f"Bonferroni over {int(group['tests'].iloc[0])} split(s)"
    cross = group[group["crossover"]]
    shown = group[(group["change_low"] > 0) | (group["change_high"] < 0)]
    if not cross.empty:
        c = cross.iloc[0]
        step = (f"crossover on {axis} between {A.level_label(c['low'])} and "
                f"{A.level_label(c['high'])} (Δ {signed(c['diff_below'])} "
                f"[{fmt(c['below_low'])}, {fmt(c['below_high'])}] up to "
                f"{A.level_label(c['low'])}, {signed(c['diff_above'])} "
                f"[{fmt(c['above_low'])}, {fmt(c['above_high'])}] from "
                f"{A.level_label(c['high'])}; each side Bonferroni over "
                f"{int(c['cross_tests'])} test(s): the hypothesis' splits times the study's "
                f"hypotheses)")
    elif not shown.empty:
        c = shown.loc[shown["p_change_adj"].idxmin()]
        way = "larger" if c["change"] > 0 else "smaller"
        step = (f"the step test finds Δ {way} from {axis} {A.level_label(c['high'])} on than "
                f"up to {A.level_label(c['low'])} (change {signed(c['change'])} "
                f"[{fmt(c['change_low'])}, {fmt(c['change_high'])}], p = "
                f"{fmt(c['p_change_adj'])}, {splits})")
    else:
        step = None
    tested = trend is not None and len(trend["levels"]) > 2 and trend["p"] == trend["p"]
    slope = ""
    if tested and trend["p"] < level:
        scale = "per decade" if trend["log"] else "per unit"
        slope = (f"the trend test (one slope of Δ over all {len(trend['levels'])} levels) finds "
                 f"Δ {'growing' if trend['slope'] > 0 else 'shrinking'} along {axis} "
                 f"({signed(trend['slope'])} {scale}, p = {fmt(trend['p'])} < {fmt(level)})")
    if step and slope:
        text = f"{step}; {slope}"
    elif step:
        text = step
    elif slope:
        text = (f"along {axis} no step between neighbouring levels is significant (step test, "
                f"{splits}), but {slope}")
    else:
        trend_p = f"; trend test p = {fmt(trend['p'])} ≥ {fmt(level)}" if tested else ""
        text = f"no tested change along {axis} (step test, {splits}{trend_p})"
    return text + _axis_marks(rows, trend)


def _axis_marks(rows: pd.DataFrame | None, trend) -> str:
    """† / ‡ when a cell along the axis (the points its tests use) carries them."""
    if rows is None or rows.empty or trend is None:
        return ""
    along = rows[rows["point"].isin(trend["points"])]
    unlearned = any(len(u) for u in along["unlearned"]) if "unlearned" in along else False
    bad = bool((along["not_converged"] > 0).any()) if "not_converged" in along else False
    return (f" {DAGGER}" if unlearned else "") + (f" {MARK}" if bad else "")


def point_claims(rows: pd.DataFrame) -> str:
    """The condition points where the per-point cell claims a difference."""
    parts = []
    for word in ("better", "worse"):
        hit = rows[rows["verdict"] == word]
        if not hit.empty:
            where = ", ".join(point_label(p) + marks(r) for p, (_, r) in
                              zip(hit["point"], hit.iterrows(), strict=True))
            parts.append(f"{word} at {where}")
    if not parts:
        return f"no single point shows a difference (of {len(rows)})"
    return "per point " + "; ".join(parts)


def hypothesis_sentence(estimate, rows: pd.DataFrame, changes: pd.DataFrame,
                        trends: pd.DataFrame, alpha: float) -> str:
    """One hypothesis: its pooled effect, where it changes (tested), its per-point claims,
    the seeds its effect would need, and its caveats (†, not converged)."""
    parts = [pooled_phrase(estimate)]
    where = change_phrase(changes, trends, alpha, rows)
    if where:
        parts.append(where)
    if len(rows) > 1:
        parts.append(point_claims(rows))
    text = f"{estimate['hypothesis']} ({estimate['dataset']}): " + "; ".join(parts) + "."
    if estimate["verdict"] == "no evidence" and estimate["seeds_needed"] == estimate[
            "seeds_needed"]:
        needed = estimate["seeds_needed"]
        text += (f" The pooled Δ would need {'more than 1000' if needed == math.inf else int(needed)}"
                 " seeds for 80% power.")
    if len(estimate["unlearned"]):
        text += (f" {DAGGER} Not shown above chance at some point: "
                 f"{', '.join(estimate['unlearned'])}.")
    return text + convergence_note(estimate)


# --- the Answer --------------------------------------------------------------------------------
def kind_paragraphs(pooled: pd.DataFrame, table: pd.DataFrame, changes: pd.DataFrame,
                    trends: pd.DataFrame, alpha: float) -> list[dict]:
    """Per outcome kind: a lead line (the pooled verdicts) and one sentence per hypothesis."""
    out = []
    if pooled.empty:
        return out
    for kind in FAMILY_ORDER:
        part = pooled[pooled["family"] == kind]
        if part.empty:
            continue
        sentences = [hypothesis_sentence(e, _of(table, e["hypothesis"], e["dataset"]),
                                         _of(changes, e["hypothesis"], e["dataset"]),
                                         _of(trends, e["hypothesis"], e["dataset"]), alpha)
                     for _, e in part.iterrows()]
        out.append({"kind": KIND_NAMES[kind], "lead": lead(part), "sentences": sentences})
    return out


def _of(frame: pd.DataFrame, name: str, dataset: str) -> pd.DataFrame:
    """The rows of one hypothesis."""
    if frame.empty:
        return frame
    return frame[(frame["hypothesis"] == name) & (frame["dataset"] == dataset)]


def lead(part: pd.DataFrame) -> str:
    """The kind's pooled verdicts in one line: which hypotheses the variant wins, loses, ties
    and which the data cannot tell; differences marked ‡ apart, not claimed."""
    # a difference behind which a run did not converge is listed apart, not claimed
    claimed = part["claim"] if "claim" in part else part["verdict"].isin(CLAIMS)
    unsettled = [v in CLAIMS and not c for v, c in zip(part["verdict"], claimed, strict=True)]
    pieces = _verdict_pieces(part[[not u for u in unsettled]])
    text = "Pooled over the condition points (Holm across the study's hypotheses): "
    text += "; ".join(pieces) + "." if pieces else "no claim."
    apart = _verdict_pieces(part[unsettled])
    if apart:
        text += (" Not claimed, as a model behind it did not converge (its effect describes "
                 "where training stopped, not the converged models): " + "; ".join(apart) + ".")
    return text + lead_caveats(part)


def _verdict_pieces(part: pd.DataFrame) -> list[str]:
    """``"<verdict> in <hypotheses>"`` per verdict word present, in the lead's order."""
    pieces = []
    for word in ("better", "worse", "equivalent", "non-inferior", "no evidence", "constant"):
        hit = part[part["verdict"] == word]
        if hit.empty:
            continue
        names = [f"{r['hypothesis']} ({r['dataset']}){marks(r)}" for _, r in hit.iterrows()]
        label = {"no evidence": "no evidence either way",
                 "constant": "identical in every seed (not tested)"}.get(word, word)
        pieces.append(f"{label} in {_list(names)}")
    return pieces


def lead_caveats(part: pd.DataFrame) -> str:
    """What the lead's marks mean, and how many runs and points behind each estimate marked
    ‡ did not converge."""
    out = ""
    if any(len(u) for u in part["unlearned"]):
        out += f" {DAGGER}: a model in the comparison is not shown above chance at some point."
    bad = part[part["not_converged"] > 0] if "not_converged" in part else part.iloc[0:0]
    if not bad.empty:
        out += (f" {MARK}: runs behind the estimate did not converge (" + "; ".join(
            f"{r['hypothesis']} ({r['dataset']}): {r['not_converged']} of {r['n_runs']} runs, "
            f"at {r['points_not_converged']} of {r['n_points']} point(s)"
            for _, r in bad.iterrows()) + ").")
    return out


def _list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def level_lines(levels: pd.DataFrame) -> list[str]:
    """Categorical axes: where a level changes a variant's own primary metric."""
    if levels.empty:
        return []
    lines = []
    for (axis, dataset), group in levels.groupby(["axis", "dataset"], sort=False):
        decided = group[group["verdict"].isin(["better", "worse"])]
        bad = int((group["not_converged"] > 0).sum()) if "not_converged" in group else 0
        note = (f" {MARK} {bad} of these {len(group)} comparison(s) use a run that did not "
                "converge." if bad else "")
        chance = int(group["unlearned"].map(len).gt(0).sum()) if "unlearned" in group else 0
        if chance:
            note += (f" {DAGGER} {chance} of these {len(group)} comparison(s) use a level at "
                     "which the variant is not shown above chance.")
        if decided.empty:
            lines.append(f"On {dataset}, no level of {axis} changes any variant's primary metric "
                         f"against {A.level_label(group['reference'].iloc[0])} (Bonferroni over the "
                         "levels)." + note)
            continue
        pieces = [f"{r['variant']} {r['metric']} at {A.level_label(r['level'])} vs "
                  f"{A.level_label(r['reference'])}: {r['verdict']}{marks(r)} ({effect(r)})"
                  for _, r in decided.iterrows()]
        lines.append(f"On {dataset}, along {axis} (each variant against itself): "
                     + "; ".join(pieces) + f"; no evidence for the other "
                     f"{len(group) - len(decided)} variant × metric × level comparison(s)."
                     + note)
    return lines


def learnability_lines(best: pd.DataFrame, table: pd.DataFrame, spec: dict) -> list[str]:
    """Every study task's best model against chance (the dataset's ``tasks`` when the spec
    names them, else every scored task), and the comparisons with unlearned models."""
    lines = []
    for dataset, group in best.groupby("dataset", sort=False):
        tasks = (spec["datasets"].get(dataset) or {}).get("tasks")
        if tasks:
            group = group[group["task"].isin(tasks)]
        pieces = []
        for _, r in group.iterrows():
            where = point_label(r["point"])
            status = ("shown above chance" if r["learned"] else "chance unknown"
                      if r["learned"] is None else f"{DAGGER} not shown above chance by any model")
            ci = (f" [{fmt(r['ci_low'])}, {fmt(r['ci_high'])}]"
                  if not math.isnan(r["ci_low"]) else "")
            pieces.append(f"{r['task']}: best {r['variant']} ({r['source']}, {r['metric']}) "
                          f"{fmt(r['mean'])}{ci} at {where} vs chance {fmt(r['chance'])} — "
                          f"{status}")
        lines.append(f"Learnability on {dataset} (each task's best model against chance): "
                     + "; ".join(pieces) + ".")
    if not table.empty and "unlearned" in table:
        flagged = table[table["unlearned"].map(bool)]
        if not flagged.empty:
            names = list(dict.fromkeys(flagged["hypothesis"]))
            lines.append(f"{len(flagged)} hypothesis × condition cell(s) (marked {DAGGER}) "
                         f"compare a model not shown above chance on the task (its score's "
                         f"interval does not clear chance + 10% of the way to perfect): "
                         f"{_list(names)}.")
    return lines


def caveats(table: pd.DataFrame, pooled: pd.DataFrame, exploratory: pd.DataFrame,
            n_seeds: int, alpha: float, failed: int) -> list[str]:
    """How much the seeds allow, and what was not counted."""
    out = []
    if not table.empty:
        sizes = table.groupby(["hypothesis", "dataset"], sort=False)["family_size"].first()
        per = (f"{sizes.min()}" if sizes.min() == sizes.max()
               else f"{sizes.min()}–{sizes.max()}")
        out.append(
            f"Pooled verdicts: paired t-test over {n_seeds} seed(s) of each seed's mean Δ across "
            f"the points, Holm's correction across the {len(pooled)} hypotheses at α = "
            f"{fmt(alpha)}; each interval is at the level Holm's step tested it at, so it "
            "excludes 0 exactly when the verdict is better or worse. Per-point cells: "
            f"Bonferroni-simultaneous intervals within each hypothesis ({per} distinct cell(s) "
            "each; cells identical in every seed count once) and adjusted p-values. Δ is "
            "oriented so that positive favours the variant; d_z is uncorrected, g_z corrects "
            "it for the few seeds (Hedges).")
        constant = int((table["verdict"] == "constant").sum())
        if constant:
            out.append(f"{constant} cell(s) differ by the same amount in every seed (a property "
                       "of the configurations): they get no p-value and no verdict.")
    floor = min_wilcoxon_p(n_seeds)
    if floor >= alpha:
        out.append(f"With {n_seeds} seed(s) the Wilcoxon signed-rank test cannot reach p < "
                   f"{fmt(alpha)} (its smallest two-sided p is {fmt(floor)}); it is shown beside "
                   "the t-test but cannot confirm a difference.")
    if not exploratory.empty:
        out.append(f"{len(exploratory)} other paired differences are exploratory: shown with "
                   "their CIs in the Results, never counted as wins or losses.")
    if failed:
        out.append(f"{failed} run(s) failed and are missing from these results (see Failed runs).")
    return out
