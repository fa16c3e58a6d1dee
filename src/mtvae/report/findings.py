"""The Answer's sentences, generated from the hypothesis table, trends and crossovers.

Nothing here states a conclusion of its own: every sentence is filled in from the numbers, so
a study with other results says other things — "no evidence" included, said plainly.
"""

from __future__ import annotations

import math

import pandas as pd

from mtvae.evaluate.catalogue import FAMILY_ORDER
from mtvae.study import axes as A
from mtvae.study.expand import point_label
from mtvae.study.stats import min_wilcoxon_p
from mtvae.study.trends import axis_slice

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
        return f"equivalent within ±{fmt(row['margin'])}"
    return row["verdict"]


# --- one hypothesis --------------------------------------------------------------------------
def segments(spec: dict, rows: pd.DataFrame) -> list[tuple[str | None, list]]:
    """``[(axis, [(level, row), ...])]``: each axis' slice through the hypothesis' points
    (levels in order), then ``(None, [(label, row)])`` for points on no slice."""
    by_point = {r["point"]: r for _, r in rows.iterrows()}
    axes = [a for a, v in spec.get("conditions", {}).items() if len(v) > 1]
    out, covered = [], set()
    for axis in axes:
        levels = [(lv, by_point[p]) for p, lv in axis_slice(spec, axis).items() if p in by_point]
        covered |= {p for p in axis_slice(spec, axis) if p in by_point}
        if levels:
            out.append((axis, levels))
    rest = [(point_label(p), r) for p, r in by_point.items() if p not in covered]
    if rest:
        out.append((None, rest))
    return out


def _runs(levels: list) -> list[list]:
    """Consecutive levels with the same verdict."""
    runs: list[list] = []
    for level, row in levels:
        if runs and runs[-1][-1][1]["verdict"] == row["verdict"]:
            runs[-1].append((level, row))
        else:
            runs.append([(level, row)])
    return runs


def _run_phrase(axis: str | None, run: list, numeric: bool) -> str:
    word = verdict_word(run[0][1])
    labels = [A.level_label(lv) for lv, _ in run]
    if axis is None:
        return "; ".join(f"{word} at {lab} ({effect(r)})" for lab, (_, r) in zip(labels, run,
                                                                                  strict=True))
    where = (f"{labels[0]}–{labels[-1]}" if numeric and len(run) > 1 else ", ".join(labels))
    if len(run) == 1:
        return f"{word} at {axis} {where} ({effect(run[0][1])})"
    return (f"{word} at {axis} {where} (from {effect(run[0][1])} at {labels[0]} to "
            f"{effect(run[-1][1])} at {labels[-1]})")


def crossover_phrase(c) -> str:
    """``crossover on label_count between 100 (no evidence, −0.004) and 300 (better, +0.03)``."""
    return (f"crossover on {c['axis']} between {A.level_label(c['low'])} "
            f"({c['verdict_low']}, Δ {signed(c['diff_low'])}) and {A.level_label(c['high'])} "
            f"({c['verdict_high']}, Δ {signed(c['diff_high'])})")


def hypothesis_sentence(spec: dict, rows: pd.DataFrame, crossovers: pd.DataFrame,
                        trends: pd.DataFrame, alpha: float) -> str:
    """Where one hypothesis holds, fails and cannot be told, along each axis."""
    first = rows.iloc[0]
    parts = []
    for axis, levels in segments(spec, rows):
        if len(levels) == 1 and axis is not None and len(segments(spec, rows)) > 1:
            continue  # the default point alone: told on the axes that vary
        numeric = axis is not None and A.is_numeric(spec["conditions"][axis])
        phrase = ", ".join(_run_phrase(axis, run, numeric) for run in _runs(levels))
        if axis is None and not spec.get("conditions"):
            phrase = f"{verdict_word(first)} ({effect(first)})"
        cross = (crossovers[(crossovers["axis"] == axis) & crossovers["verdict_change"]]
                 if not crossovers.empty else crossovers)
        phrase += "".join(f"; {crossover_phrase(c)}" for _, c in cross.iterrows())
        trend = trends[trends["axis"] == axis] if not trends.empty else trends
        for _, t in trend.iterrows():
            if t["p"] < alpha and len(t["levels"]) > 2:
                scale = "per decade" if t["log"] else "per unit"
                phrase += (f"; Δ {'grows' if t['slope'] > 0 else 'shrinks'} along {axis} "
                           f"({signed(t['slope'])} {scale}, trend test p = {fmt(t['p'])})")
        parts.append(phrase)
    return f"{first['hypothesis']} ({first['dataset']}): " + "; ".join(parts) + "." + _power(rows)


def _power(rows: pd.DataFrame) -> str:
    """For a hypothesis without any verdict: what the seeds could detect where the observed
    effect is largest, and how many seeds that effect would need."""
    if rows["verdict"].isin(["better", "worse", "equivalent"]).any():
        return ""
    tested = rows[(rows["verdict"] == "no evidence") & rows["detectable"].notna()]
    if tested.empty:
        return ""
    top = tested.loc[tested["diff"].abs().idxmax()]
    needed = top["seeds_needed"]
    need = ("more than 1000" if needed == math.inf else "n/a" if math.isnan(needed)
            else f"{needed:.0f}")
    where = f" at {point_label(top['point'])}" if len(rows) > 1 else ""
    return (f" Where |Δ| is largest{where} ({fmt(abs(top['diff']))}), these seeds would detect "
            f"only |Δ| ≥ {fmt(top['detectable'])} with 80% power; the observed Δ would need "
            f"{need} seeds.")


# --- the Answer --------------------------------------------------------------------------------
def kind_paragraphs(spec: dict, table: pd.DataFrame, crossovers: pd.DataFrame,
                    trends: pd.DataFrame, alpha: float) -> list[dict]:
    """Per outcome kind: a lead sentence and one sentence per hypothesis."""
    out = []
    if table.empty:
        return out
    for kind in FAMILY_ORDER:
        part = table[table["family"] == kind]
        if part.empty:
            continue
        names = list(dict.fromkeys(zip(part["hypothesis"], part["dataset"], strict=True)))
        sentences = []
        for name, dataset in names:
            rows = part[(part["hypothesis"] == name) & (part["dataset"] == dataset)]
            sentences.append(hypothesis_sentence(spec, rows, _of(crossovers, name, dataset),
                                                 _of(trends, name, dataset), alpha))
        out.append({"kind": KIND_NAMES[kind], "lead": lead(kind, part, names),
                    "sentences": sentences})
    return out


def _of(frame: pd.DataFrame, name: str, dataset: str) -> pd.DataFrame:
    """The rows of one hypothesis."""
    if frame.empty:
        return frame
    return frame[(frame["hypothesis"] == name) & (frame["dataset"] == dataset)]


def lead(kind: str, part: pd.DataFrame, names: list) -> str:
    """Where, across this kind's hypotheses, the variants win, lose or cannot be told."""
    def which(verdict: str) -> list[str]:
        hit = part[part["verdict"] == verdict]
        return list(dict.fromkeys(f"{h} ({d})" for h, d in zip(hit["hypothesis"], hit["dataset"],
                                                               strict=True)))

    better, worse, equivalent = which("better"), which("worse"), which("equivalent")
    decided = set(better) | set(worse) | set(equivalent)
    fixed = [f"{h} ({d})" for h, d in names
             if (part[(part["hypothesis"] == h) & (part["dataset"] == d)]["verdict"]
                 == "constant").all()]
    silent = [f"{h} ({d})" for h, d in names
              if f"{h} ({d})" not in decided and f"{h} ({d})" not in fixed]
    if not decided and not fixed:
        few = "the hypothesis" if len(names) == 1 else f"any of the {len(names)} hypotheses"
        return (f"No evidence of a difference in {few}, at any condition point, after Holm's "
                "correction within each hypothesis.")
    verdicts = []
    if better:
        verdicts.append(f"better at some condition in {_list(better)}")
    if worse:
        verdicts.append(f"worse at some condition in {_list(worse)}")
    if equivalent:
        verdicts.append(f"equivalent within the margin at some condition in {_list(equivalent)}")
    pieces = ["the variant is " + "; ".join(verdicts)] if verdicts else []
    if silent:
        pieces.append(f"the data cannot tell anywhere in {_list(silent)}")
    if fixed:
        pieces.append(f"the difference is identical in every seed (fixed by the "
                      f"configurations, not tested) in {_list(fixed)}")
    text = "; ".join(pieces)
    return text[0].upper() + text[1:] + "."


def _list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def level_lines(levels: pd.DataFrame) -> list[str]:
    """Categorical axes: where a level changes a variant's own primary metric."""
    if levels.empty:
        return []
    lines = []
    for (axis, dataset), group in levels.groupby(["axis", "dataset"], sort=False):
        decided = group[group["verdict"].isin(["better", "worse"])]
        if decided.empty:
            lines.append(f"On {dataset}, no level of {axis} changes any variant's primary metric "
                         f"against {A.level_label(group['reference'].iloc[0])} (Holm over the "
                         "levels).")
            continue
        pieces = [f"{r['variant']} {r['metric']} at {A.level_label(r['level'])} vs "
                  f"{A.level_label(r['reference'])}: {r['verdict']} ({effect(r)})"
                  for _, r in decided.iterrows()]
        lines.append(f"On {dataset}, along {axis} (each variant against itself): "
                     + "; ".join(pieces) + f"; no evidence for the other "
                     f"{len(group) - len(decided)} variant × metric × level comparison(s).")
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
            status = ("learned" if r["learned"] else "chance unknown" if r["learned"] is None
                      else "not learned by any model")
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
            lines.append(f"{len(flagged)} hypothesis × condition cell(s) (marked † in the table) "
                         f"compare a model that did not learn the task: {_list(names)}; read them "
                         "as comparisons with a model that did not learn.")
    return lines


def caveats(table: pd.DataFrame, exploratory: pd.DataFrame, n_seeds: int, alpha: float,
            failed: int) -> list[str]:
    """How much the seeds allow, and what was not counted."""
    out = []
    if not table.empty:
        sizes = table.groupby(["hypothesis", "dataset"], sort=False).size()
        per = (f"{sizes.min()}" if sizes.min() == sizes.max()
               else f"{sizes.min()}–{sizes.max()}")
        out.append(
            f"Verdicts are paired t-tests over {n_seeds} seed(s) at α = {fmt(alpha)}, with Holm's "
            f"correction within each hypothesis across its condition points "
            f"({per} per hypothesis, {len(sizes)} hypotheses); Δ is "
            "oriented so that positive favours the variant.")
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
