"""The Answer's caveats: every sentence, lead and table cell using a cell or a pooled estimate
with a model not shown above chance carries †, and with a run that did not converge carries
‡ (a pooled estimate with how many runs and points), in HTML, Markdown and LaTeX alike; the
step and trend tests of a change are named apart; the front analysis is computed once."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
from markupsafe import escape as html_escape
from stored_study import SPEC, write_study

from mtvae.analysis.results import load_study
from mtvae.report import latex
from mtvae.report.answer import answer_context
from mtvae.report.build import build_report
from mtvae.report.findings import change_phrase

TASK = "vs sup: task/shape/accuracy"  # the hypothesis whose cells compare the supervised model


def adjust(run, metrics):
    """The supervised model's seed 1 at label fraction 0.1 does not converge; at 1.0 the
    supervised model sits at chance (0.34) on shape, so it is not shown above it there."""
    fraction = run.config["data"]["label_fraction"]
    supervised = run.model == "supervised"
    metrics["train/converged"] = not (supervised and run.seed == 1 and fraction == 0.1)
    metrics["train/epochs_trained"], metrics["train/best_epoch"] = 3, 2
    if supervised and fraction == 1.0:
        metrics["task/shape/accuracy"] -= 0.45
    return metrics


@pytest.fixture(scope="module")
def caveat_study(tmp_path_factory):
    out = write_study(tmp_path_factory.mktemp("caveats") / "s", copy.deepcopy(SPEC),
                      adjust=adjust)
    build_report(out, formats=("html", "latex"))
    return out


def _answer(out):
    return answer_context(load_study(out), 0)


def test_an_estimate_with_a_run_that_did_not_converge_says_how_many_runs_and_points(
        caveat_study):
    kinds = {k["kind"]: k for k in _answer(caveat_study)["kinds"]}
    task = kinds["Task performance"]
    (sentence,) = [s for s in task["sentences"] if TASK in s]
    # 12 runs: the MT-VAE and the supervised model at 2 label fractions x 3 seeds; 1 did not
    # converge, at one of the two points
    assert sentence.endswith("‡ 1 of 12 runs behind it did not converge, at 1 of 2 "
                             "condition point(s): its effect may be a property of the training "
                             "budget.")
    pooled = sentence.split(";")[0]  # the pooled phrase, its verdict and both marks
    assert pooled.endswith("† ‡, p = " + pooled.split("p = ")[1]) and "better † ‡" in pooled
    # the change along label_fraction uses both cells: both marks
    change = next(p for p in sentence.split("; ") if "label_fraction" in p and "step" in p)
    assert change.endswith("† ‡")
    assert "per point better at label_fraction=1 †" in sentence  # that cell: † only
    assert "† Not shown above chance at some point: sup." in sentence
    # the first screen: the kind's line marks the estimate and counts its runs and points
    assert f"{TASK} (shapes) † ‡" in task["lead"]
    assert task["lead"].endswith(f"‡: runs behind the estimate did not converge (mt<b>bold</b> "
                                 f"{TASK} (shapes): 1 of 12 runs, at 1 of 2 point(s)).")
    assert "†: a model in the comparison is not shown above chance" in task["lead"]
    # estimates whose runs all converged and learned carry neither mark
    for kind in ("Reconstruction", "Representation"):
        for text in [kinds[kind]["lead"], *kinds[kind]["sentences"]]:
            assert "‡" not in text and "†" not in text, text


def test_tables_mark_the_cells_and_the_pooled_verdict(caveat_study):
    answer = _answer(caveat_study)
    (row,) = [r for r in answer["table"]["rows"] if TASK in r[0]]
    at_01, at_1 = row[2:]
    assert at_01.endswith("‡") and "†" not in at_01  # the run that did not converge
    assert at_1.endswith("†") and "‡" not in at_1  # the model at chance
    (pooled,) = [r for r in answer["pooled"]["rows"] if TASK in r[0]]
    assert pooled[8].endswith("† ‡")
    others = [r for r in answer["table"]["rows"] + answer["pooled"]["rows"] if TASK not in r[0]]
    assert not any("‡" in c or "†" in c for r in others for c in r[2:])
    tex = (caveat_study / "report/latex/results.tex").read_text()
    assert r"\,\ddag{}" in tex and r"\ddag{} a model in the comparison did not converge" in tex


def test_every_answer_sentence_is_printed_with_its_marks_in_all_three_formats(caveat_study):
    answer = _answer(caveat_study)
    texts = [t for k in answer["kinds"] for t in [k["lead"], *k["sentences"]]]
    assert sum("‡" in t for t in texts) == 2 and sum("†" in t for t in texts) == 2
    report = caveat_study / "report"
    md = (report / "report.md").read_text()
    html = (report / "index.html").read_text()
    tex = (report / "latex/results.tex").read_text()
    for text in texts:
        assert text.replace("<", "&lt;").replace(">", "&gt;") in md, text
        assert str(html_escape(text)) in html, text
        assert latex.escape(text) in tex, text
    assert r"\ddag{} 1 of 12 runs behind it did not converge" in tex


def _changes(low: float, high: float, p_adj: float) -> pd.DataFrame:
    """Two splits of label_count (10 | 100 | 1000) whose larger change has interval
    [low, high]."""
    rows = []
    for i, (a, b) in enumerate([(10, 100), (100, 1000)]):
        rows.append({"hypothesis": "h", "dataset": "d", "axis": "label_count", "low": a,
                     "high": b, "tests": 2, "crossover": False, "diff_below": 0.01,
                     "below_low": -0.01, "below_high": 0.03, "diff_above": 0.03,
                     "above_low": 0.0, "above_high": 0.06, "change": 0.02 * (i + 1),
                     "change_low": low if i else -0.01, "change_high": high if i else 0.05,
                     "p_change_adj": p_adj if i else 0.5})
    return pd.DataFrame(rows)


TREND = pd.DataFrame([{"hypothesis": "h", "dataset": "d", "axis": "label_count",
                       "levels": [10, 100, 1000], "log": True, "slope": 0.02, "p": 0.001,
                       "points": ["a", "b", "c"]}])


def test_a_trend_without_a_significant_step_names_both_tests_and_what_each_says():
    text = change_phrase(_changes(-0.002, 0.08, 0.09), TREND, 0.05)
    assert "no tested change" not in text  # read beside "Δ grows", it contradicted the trend
    assert text == ("along label_count no step between neighbouring levels is significant "
                    "(step test, Bonferroni over 2 split(s)), but the trend test (one slope of "
                    "Δ over all 3 levels) finds Δ growing along label_count (+0.02 per decade, "
                    "p = 0.001 < 0.05)")


def test_a_step_and_a_trend_are_each_named_and_neither_is_no_change():
    text = change_phrase(_changes(0.01, 0.07, 0.004), TREND, 0.05)
    assert text.startswith("the step test finds Δ larger from label_count 1000 on than up to "
                           "100 (change +0.04 [0.01, 0.07], p = 0.004, Bonferroni over 2 split(s))")
    assert text.endswith("; the trend test (one slope of Δ over all 3 levels) finds Δ growing "
                         "along label_count (+0.02 per decade, p = 0.001 < 0.05)")
    quiet = change_phrase(_changes(-0.002, 0.08, 0.09), TREND.assign(p=0.2), 0.05)
    assert quiet == ("no tested change along label_count (step test, Bonferroni over 2 "
                     "split(s); trend test p = 0.2 ≥ 0.05)")


def test_the_front_analysis_is_computed_once_per_report(synthetic_study, monkeypatch):
    from mtvae.analysis import front

    calls = {"fronts": 0, "delta_m": 0}
    for name in calls:
        original = getattr(front, name)

        def counted(*args, _name=name, _original=original, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(front, name, counted)
    build_report(synthetic_study, formats=("html", "latex"))
    assert calls == {"fronts": 1, "delta_m": 1}


def test_a_categorical_level_comparison_with_a_run_that_did_not_converge_is_marked():
    """... and one at a level where the variant is at chance (0.15 against 0.11) gets †."""
    from synthetic_results import spec, study

    from mtvae.analysis.results import StudyResults

    def metrics(variant, point, seed, rng):
        drop = 0.65 if (variant == "mt" and point["tasks"] == "with-random") else 0.0
        return {"task/digit/accuracy": 0.8 - drop + float(rng.normal(0, 0.003)),
                "chance/digit/accuracy": 0.11}

    conditions = {"label_fraction": [1.0, 0.1], "tasks": ["related", "with-random"]}
    base = study(spec(conditions, [0, 1, 2, 3], design="ofat"), metrics)
    for run in base.runs:  # mt with the random task, seed 2: not converged
        run["converged"] = not (run["variant"] == "mt" and '"with-random"' in run["run_id"]
                                and run["seed"] == 2)
    data = StudyResults(base.spec, base.runs, base.cells)
    row = data.levels[(data.levels["variant"] == "mt") & (data.levels["axis"] == "tasks")].iloc[0]
    assert row["not_converged"] == 1 and row["unlearned"] == ["with-random"]
    (line,) = [s for s in answer_context(data, 0)["levels"] if "along tasks" in s]
    assert "mt task/digit/accuracy at with-random vs related: worse † ‡ (−0.65" in line
    assert line.endswith("‡ 1 of these 1 comparison(s) use a run that did not converge. † 1 of "
                         "these 1 comparison(s) use a level at which the variant is not shown "
                         "above chance.")
