"""Multitask vs single-task along a tasks axis with a single-task level: the MT-VAE at each
multi-task level against itself at the single level, paired by seed, in the Answer."""

from __future__ import annotations

import pytest
from synthetic_results import spec, study

from mtvae.analysis.hypotheses import single_task_levels
from mtvae.report.answer import answer_context

SETS = {"related": ["digit", "slant"], "with-random": ["digit", "slant", "random"],
        "single": ["digit"]}
GAIN = {100: 0.05, 1000: 0.0}  # the MT-VAE's digit head, multitask minus single-task


def _spec(conditions: dict, design: str = "product") -> dict:
    raw = spec(conditions, seeds=[0, 1, 2, 3, 4], design=design)
    raw["datasets"] = {"mnist": {"tasks": ["digit", "slant"], "task_sets": SETS}}
    return raw


def config(variant, point):
    model = {"vae": "vae", "mt": "mtvae", "sup": "supervised"}[variant]
    tasks = SETS[point["tasks"]]
    return {"data": {"extra_tasks": ["random"]},
            "model": {"name": model, **({"tasks": tasks} if model != "vae" else {})}}


def metrics(variant, point, seed, rng):
    tasks = SETS[point["tasks"]]
    count = point.get("label_count", 100)
    noise = lambda: float(rng.normal(0, 0.004))  # noqa: E731
    out = {"chance/digit/accuracy": 0.11}
    if variant != "sup":
        out |= {"recon/bce": 0.2 + noise(), "probe/digit/accuracy": 0.7 + noise()}
    if variant != "vae":
        multi = len(tasks) > 1 and variant == "mt"
        out |= {"task/digit/accuracy": 0.8 + (GAIN[count] if multi else 0.0) + noise()}
        if "slant" in tasks:
            out["task/slant/r2"] = 0.5 + noise()
    return out


NAME = "mt multitask vs single-task (tasks=single): task/digit/accuracy"


def test_single_task_levels_come_from_the_task_sets_and_n_tasks():
    raw = _spec({"tasks": ["related", "with-random", "single"], "n_tasks": [1, 2]})
    assert single_task_levels(raw, "mnist", {"random"}) == [("tasks", "single", "digit"),
                                                           ("n_tasks", 1, "digit")]
    raw["datasets"]["mnist"]["task_sets"] = {"related": ["digit", "slant"], "r": ["random"]}
    raw["conditions"] = {"tasks": ["related", "r"]}  # a control alone is no single-task level
    assert single_task_levels(raw, "mnist", {"random"}) == []


def test_the_mtvae_at_each_multi_task_level_is_paired_with_itself_at_the_single_level():
    data = study(_spec({"tasks": ["related", "with-random", "single"],
                        "label_count": [100, 1000]}), metrics, config)
    rows = data.table[data.table["hypothesis"] == NAME].set_index("point")
    # every multi-task level at each label count; never the single level against itself
    assert sorted(rows.index) == sorted(
        f'{{"tasks":"{t}","label_count":{c}}}' for t in ("related", "with-random")
        for c in (100, 1000))
    at = '{"tasks":"related","label_count":100}'
    assert rows.loc[at, "baseline_point"] == '{"tasks":"single","label_count":100}'
    assert rows.loc[at, "diff"] == pytest.approx(0.05, abs=0.01)
    assert rows.loc[at, "verdict"] == "better"
    assert rows.loc['{"tasks":"related","label_count":1000}', "diff"] == pytest.approx(0, abs=0.01)
    # only the variant under study, only the single level's task
    names = set(data.table["hypothesis"])
    assert not any("sup multitask" in n or "vae multitask" in n or "slant" in n and
                   "single-task" in n for n in names)
    (pooled,) = data.pooled[data.pooled["hypothesis"] == NAME].to_dict("records")
    assert pooled["n_points"] == 4 and pooled["diff"] == pytest.approx(0.025, abs=0.005)
    assert pooled["verdict"] == "better"


def test_the_answer_names_the_single_level_as_the_baseline():
    data = study(_spec({"tasks": ["related", "single"]}), metrics, config)
    kinds = answer_context(data, 0)["kinds"]
    (sentence,) = [s for k in kinds for s in k["sentences"] if s.startswith(NAME)]
    assert "over 1 condition point" in sentence and "mt at tasks=single 0.8" in sentence
    assert ": better" in sentence
