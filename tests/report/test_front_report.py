"""A tiny study over the task weight (0 included) with two adaptive strategies (one FAMO):
its report writes the front figure, the verdict on the front and the strategies' placement,
in HTML, Markdown and LaTeX."""

from __future__ import annotations

import re

import pytest

from mtvae.report.build import build_report
from mtvae.study.spec import parse_spec
from mtvae.study.study import run_study

SPEC = {
    "name": "front",
    "datasets": {"digits": {"tasks": ["digit", "parity"]}},
    "base": {"data": {"n_train": 192, "n_val": 48, "n_test": 64, "image_size": 16},
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
    "conditions": {"task_weight": [0, 1, 10], "weighting": ["fixed", "famo", "dwa"]},
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
    assert figures == ["front-digits-mtvae.png"]
    for text in (html, md):
        assert "The trade-off over the task weight" in text
        for task in ("digit", "parity"):  # one verdict per task: a range of weights, or none
            verdict = re.search(rf"digits, mtvae, {task}: (the task weights \S+ dominate|no "
                                r"task weight dominates) the reconstruction baseline vae", text)
            assert verdict, task
        for strategy in ("famo", "dwa"):
            placed = re.search(rf"digits, digit: mtvae with {strategy} is (above|on|below) the "
                               r"front .*best fixed weight ×(1|10), tuned on the validation split",
                               text)
            assert placed, strategy
    assert "front-digits-mtvae.png" in md and "The mtvae front over the task weight" in html


def test_the_latex_results_chapter_has_the_front_section_and_figure(study):
    tex = (study / "report/latex/results.tex").read_text()
    assert r"\label{sec:front}" in tex and "figures/front-digits-mtvae.pdf" in tex
    assert (study / "report/latex/figures/front-digits-mtvae.pdf").is_file()
    assert "tab:front-placements" in tex


def test_delta_m_table_and_verdict_sentences_from_known_results():
    import sys
    from pathlib import Path
    from types import SimpleNamespace

    sys.path.insert(0, str(Path(__file__).parents[1] / "analysis"))
    from test_front import SPEC as FRONT_SPEC
    from test_front import study as front_study

    from mtvae.report.front import front_context

    runs, cells = front_study()
    for seed in range(5):  # single-task runs of task a: the multitask runs' config, one task
        config = {"seed": seed, "data": {"seed": seed, "n_train": 100},
                  "model": {"name": "mtvae", "tasks": ["a"], "weighting": {"strategy": "fixed"}}}
        runs.append({"run_id": f"s{seed}", "variant": "mtvae", "model": "mtvae", "dataset": "d",
                     "seed": seed, "status": "done", "config": config,
                     "metrics": {"task/a/accuracy": 0.8}})
        cells.append({"dataset": "d", "point": '{"task_weight":1,"weighting":"single"}',
                      "variant": "mtvae", "seed": seed, "run_id": f"s{seed}"})
    data = SimpleNamespace(spec={**FRONT_SPEC, "alpha": 0.05}, runs=runs, cells=cells)
    context = front_context(data, [])
    assert context["present"] and context["has_front"]
    assert context["verdicts"][0].startswith(
        "d, mtvae, a: the task weights ×1 dominate the reconstruction baseline vae (")
    assert "1 nats per image" in context["verdicts"][0]
    (row,) = [r for r in context["delta_m"]["rows"] if r[1] == "task_weight=1, weighting=fixed"]
    # the ×1 runs' accuracy is 0.90 + noise of mean 0 against 0.8: Δm = +12.5 %
    assert row[3] == "task/a/accuracy" and row[5].startswith("+12.5 [")
