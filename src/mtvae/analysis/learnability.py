"""Did the models learn their tasks? Every task score against its chance level.

A model *learned* a task at a condition point when the 95% interval of its mean test score
lies above chance by at least :data:`MIN_GAIN` of the way from chance to a perfect score
(with one seed: the mean does) — picking the best of many models would otherwise find a
"learned" random task. Scores are the model's own head
(``task/<t>/accuracy`` or ``r2``) or, for models without heads, the linear probe
(``probe/<t>/...``). Chance: for accuracy the share of the most frequent class among the
labelled test points (``chance/<t>/accuracy``, stored by the evaluation); for R² it is 0 (the
test mean). A comparison between two models of which one did not learn the task compares
noise with noise, and the report flags it. (The warning ``mtvae train`` prints for one run's
head at chance is :mod:`mtvae.evaluate.chance_warnings`.)
"""

from __future__ import annotations

import math
import re

import pandas as pd

MIN_GAIN = 0.1  # share of the distance from chance to a perfect score (1)
SCORE = re.compile(r"^(?P<source>task|probe)/(?P<task>[^/]+)/(?P<score>accuracy|r2)$")


def score_key(metric: str) -> str | None:
    """The read-out score (accuracy or R²) of the same source and task as ``metric``
    (``task/digit/balanced_accuracy`` -> ``task/digit/accuracy``), if it names a task."""
    parts = metric.split("/")
    if len(parts) < 3 or parts[0] not in ("task", "probe"):
        return None
    return "/".join(parts[:2]) + "/" + ("r2" if parts[2] in ("r2", "mae") else "accuracy")


def scores(summary: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, point, variant and task score: mean, CI, chance and ``learned``."""
    columns = ["dataset", "point", "variant", "metric", "task", "source", "n", "mean", "ci_low",
               "ci_high", "chance", "learned"]
    if summary.empty:
        return pd.DataFrame(columns=columns)
    chance = summary[summary["metric"].str.match(r"^chance/[^/]+/accuracy$")]
    chance = {(r.dataset, r.point, r.metric.split("/")[1]): r.mean for r in chance.itertuples()}
    rows = []
    for r in summary.itertuples():
        match = SCORE.match(r.metric)
        if not match:
            continue
        level = 0.0 if match["score"] == "r2" else chance.get((r.dataset, r.point, match["task"]),
                                                                 math.nan)
        rows.append({"dataset": r.dataset, "point": r.point, "variant": r.variant,
                     "metric": r.metric, "task": match["task"],
                     "source": "head" if match["source"] == "task" else "probe", "n": r.n,
                     "mean": r.mean, "ci_low": r.ci_low, "ci_high": r.ci_high, "chance": level,
                     "learned": learned(r.mean, r.ci_low, r.n, level)})
    return pd.DataFrame(rows, columns=columns)


def learned(mean: float, low: float, n: int, chance: float) -> bool | None:
    """The CI's lower end (the mean, for one seed) above ``chance + MIN_GAIN (1 − chance)``;
    None if the chance level is unknown."""
    if chance is None or math.isnan(chance):
        return None
    bar = chance + MIN_GAIN * (1.0 - chance)
    return bool((low if n > 1 and not math.isnan(low) else mean) > bar)


def best_per_task(table: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and task, the row of the best mean score over variants and points."""
    if table.empty:
        return table
    best = table.loc[table.groupby(["dataset", "task"], sort=False)["mean"].idxmax()]
    return best.reset_index(drop=True)


def lookup(table: pd.DataFrame) -> dict[tuple[str, str, str, str], bool | None]:
    """``{(dataset, point, variant, score metric): learned}``."""
    return {(r.dataset, r.point, r.variant, r.metric): r.learned for r in table.itertuples()}


def unlearned_sides(row, learned_at: dict) -> list[str]:
    """The variants of a hypothesis row (variant, baseline) that did not learn its task."""
    out = []
    for variant, metric, point in ((row.variant, row.metric, row.point),
                                   (row.baseline, row.baseline_metric, row.baseline_point)):
        key = score_key(metric)
        if key and learned_at.get((row.dataset, point, variant, key)) is False:
            out.append(variant)
    return out
