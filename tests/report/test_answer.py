"""The Answer: hypotheses, verdicts, crossovers and learnability from synthetic stored results."""

from __future__ import annotations

import math

import numpy as np
import pytest
from synthetic_results import spec, study

from mtvae.analysis.inference import VERDICTS
from mtvae.report import answer as answer_module
from mtvae.report import figures as F
from mtvae.report.answer import answer_context, answer_table, difference_figures
from mtvae.report.build import results_tables

LABELS = [1000, 100, "all", 30, 300]  # spec order on purpose: the report sorts numerically
EFFECT = {30: -0.06, 100: -0.05, 300: -0.04, 1000: 0.04, "all": 0.05}  # MT head minus supervised


def crossover_metrics(variant, point, seed, rng):
    """The MT-VAE's digit head loses to supervised below 1000 labels and wins from 1000 on."""
    level = point["label_count"]
    noise = lambda: float(rng.normal(0, 0.004))  # noqa: E731
    out = {"chance/digit/accuracy": 0.11, "chance/random/accuracy": 0.5}
    if variant != "sup":
        out |= {"recon/bce": 0.2 + (0.01 if variant == "mt" else 0.0),  # same in every seed
                "probe/digit/accuracy": 0.7 + noise(), "probe/n_dims": 10 if variant == "mt"
                else 32, "probe/random/accuracy": 0.5 + noise()}
    if variant != "vae":
        out |= {"task/digit/accuracy": 0.8 + (EFFECT[level] if variant == "mt" else 0) + noise(),
                "ood/task/digit/accuracy": 0.6 + noise(), "task/random/accuracy": 0.5 + noise(),
                "task/slant/r2": 0.5 + noise()}
    return out


@pytest.fixture(scope="module")
def crossover():
    return study(spec({"label_count": LABELS}, seeds=[0, 1, 2, 3, 4]), crossover_metrics)


def _sentences(context) -> str:
    return " ".join(s for k in context["answer"]["kinds"] for s in [k["lead"], *k["sentences"]])


def test_a_planted_crossover_is_named_with_both_levels_and_signs(crossover):
    text = _sentences({"answer": answer_context(crossover, 0)})
    sentence = next(s for k in answer_context(crossover, 0)["kinds"] for s in k["sentences"]
                    if s.startswith("mt vs sup: task/digit/accuracy"))
    assert ("worse at label_count=30, label_count=100, label_count=300" in sentence
            and "better at label_count=1000, label_count=all" in sentence), sentence
    assert ("crossover on label_count between 300 and 1000 (Δ −0.0" in sentence
            and "up to 300, +0.0" in sentence
            and "from 1000; each side Bonferroni over" in sentence), sentence
    assert "per decade" in sentence  # 30 to 1000 spans more than 10x: a log axis
    assert "Task performance" in [k["kind"] for k in answer_context(crossover, 0)["kinds"]]
    assert "mt vs sup: task/digit/accuracy (mnist)" in text
    cross = crossover.crossovers
    rows = cross[cross["hypothesis"] == "mt vs sup: task/digit/accuracy"]
    assert len(rows) == 1  # one crossover, at the planted place
    assert (rows.iloc[0]["low"], rows.iloc[0]["high"]) == (300, 1000)
    # the other hypotheses have no planted reversal and get none
    assert set(cross["hypothesis"]) == {"mt vs sup: task/digit/accuracy"}
    trend = crossover.trends.set_index("hypothesis").loc["mt vs sup: task/digit/accuracy"]
    assert trend["log"] and trend["slope"] > 0 and trend["p"] < 0.05


def test_the_answer_table_has_numeric_order_and_the_verdicts(crossover):
    table = answer_table(crossover)
    order = (30, 100, 300, 1000, "all")
    assert table["headers"][2:] == [f"label_count={v}" for v in order]
    row = next(r for r in table["rows"] if r[0] == "mt vs sup: task/digit/accuracy")
    assert [c.split()[-1] for c in row[2:]] == ["worse", "worse", "worse", "better", "better"]
    assert row[2].startswith("−0.0") and row[5].startswith("+0.0")
    blocks = results_tables(crossover)
    assert [b["condition"] for b in blocks] == [f"label_count={v}" for v in order]


def test_difference_plots_get_levels_in_numeric_order(crossover, monkeypatch):
    seen = []
    monkeypatch.setattr(answer_module.F, "difference_figure",
                        lambda panels, axis: seen.append((axis, panels)) or b"png")
    assert difference_figures(crossover, "mnist")
    assert all(p["values"] == [30, 100, 300, 1000, "all"] for _, panels in seen for p in panels)
    levels, xs, log = F.level_positions([0.1, 0.01, 0.3, 1.0])
    assert levels == [0.01, 0.1, 0.3, 1.0] and log and xs == sorted(xs)
    assert F.level_positions(["related", "with-random"]) == (["related", "with-random"],
                                                              [0.0, 1.0], False)


def test_head_vs_probe_hypothesis_pairs_different_keys_of_two_variants(crossover):
    table = crossover.table
    rows = table[table["hypothesis"] == "mt head vs vae probe: digit accuracy"]
    assert set(rows["metric"]) == {"task/digit/accuracy"}
    assert set(rows["baseline_metric"]) == {"probe/digit/accuracy"}
    frame = crossover.frame
    point = rows["point"].iloc[0]

    def values(variant, metric):
        part = frame[(frame["variant"] == variant) & (frame["metric"] == metric)
                     & (frame["point"] == point)]
        return part.sort_values("seed")["value"].to_numpy()

    expected = (values("mt", "task/digit/accuracy") - values("vae", "probe/digit/accuracy"))
    assert rows["diff"].iloc[0] == pytest.approx(expected.mean())
    assert set(rows["verdict"]) == {"better"}  # 0.8 ± 0.05 against 0.7
    # regression tasks are paired on R² with the probe of the same read-out (none here)
    assert "mt vs sup: task/slant/r2" in set(table["hypothesis"])
    # the random control task gets no default hypothesis
    assert not table["hypothesis"].str.contains("random").any()


def test_info_metrics_and_seed_constant_differences_get_no_p_value_or_verdict(crossover):
    for frame in (crossover.table, crossover.exploratory):
        assert "probe/n_dims" not in set(frame["metric"])
    # nll/iwae absent, recon/bce present: it is the primary reconstruction hypothesis
    primary = [h for h in crossover.hypotheses if h.family == "reconstruction"]
    assert [h.metric for h in primary] == ["recon/bce"]
    constant = crossover.table[crossover.table["metric"] == "recon/bce"]
    assert len(constant) == 5 and constant["constant"].all()
    assert set(constant["verdict"]) == {"constant"}
    assert constant[["p_t", "p_t_adj", "p_w", "d_z"]].isna().all().all()
    assert not (crossover.exploratory["constant"] & crossover.exploratory["p_t"].notna()).any()


def test_ood_outcomes_reach_tables_and_hypotheses(crossover):
    explored = crossover.exploratory
    assert "ood/task/digit/accuracy" in set(explored["metric"])
    block = results_tables(crossover)[0]["table"]
    assert "ood/task/digit/accuracy" in [r[0] for r in block["rows"]]
    declared = [{"name": "ood {task}", "variant": "mt", "baseline": "sup",
                 "metric": "ood/task/{task}/accuracy", "baseline_metric": None,
                 "test": "superiority", "margin": 0.0}]
    data = study(spec({"label_count": LABELS}, [0, 1, 2], declared), crossover_metrics)
    assert {h.name for h in data.hypotheses} == {"ood digit"}
    assert set(data.table["metric"]) == {"ood/task/digit/accuracy"}


def test_constant_differences_in_a_hypothesis_are_said_to_be_untested():
    def metrics(variant, point, seed, rng):
        return {"recon/bce": 0.3 if variant == "mt" else 0.2} if variant != "sup" else {}

    data = study(spec({"label_count": [100, 1000]}, [0, 1, 2]), metrics)
    assert set(data.table["verdict"]) == {"constant"}
    assert data.table[["p_t", "p_t_adj", "p_w"]].isna().all().all()
    cell = answer_table(data)["rows"][0][2]
    assert "in every seed" in cell and "identical in every seed (no test)" in cell


def test_non_inferiority_verdicts_equivalent_and_worse():
    declared = [{"name": "ni", "variant": "mt", "baseline": "sup", "metric": "task/digit/accuracy",
                 "baseline_metric": None, "test": "noninferiority", "margin": 0.05}]

    def metrics(variant, point, seed, rng):
        if variant == "vae":
            return {}
        gap = {1: -0.005, 2: -0.2}[point["x"]] if variant == "mt" else 0.0
        return {"task/digit/accuracy": 0.8 + gap + float(rng.normal(0, 0.003))}

    data = study(spec({"x": [1, 2]}, [0, 1, 2, 3, 4], declared), metrics)
    assert list(data.table["verdict"]) == ["equivalent", "worse"]
    assert "equivalent within ±0.05" in answer_table(data)["rows"][0][2]


def test_models_that_did_not_learn_are_flagged():
    heads = {"variant": "mt", "baseline": "sup", "baseline_metric": None,
             "test": "superiority", "margin": 0.0}
    declared = [{**heads, "name": "heads {task}", "metric": "task/{task}/accuracy"},
                {**heads, "name": "heads random", "metric": "task/random/accuracy"}]
    data = study(spec({"label_count": [100, 1000]}, [0, 1, 2], declared), crossover_metrics)
    # {task} skips the random control task; naming it keeps it
    assert {h.name for h in data.hypotheses} == {"heads digit", "heads random"}
    lines = answer_context(data, 0)["learnability"]
    assert "digit: best mt (head, task/digit/accuracy)" in lines[0]
    assert "shown above chance" in lines[0]
    assert "random: best" in lines[0] and "† not shown above chance by any model" in lines[0]
    assert "compare a model not shown above chance on the task" in lines[1]
    assert lines[1].endswith("heads random.")
    # the dagger is carried into the sentence of the hypothesis that uses those cells
    sentences = [s for k in answer_context(data, 0)["kinds"] for s in k["sentences"]]
    random = next(s for s in sentences if s.startswith("heads random"))
    assert "† Not shown above chance at some point: " in random
    assert not any("†" in s for s in sentences if s.startswith("heads digit"))
    flagged = answer_table(data)["rows"]
    assert all(r[2].endswith("†") == (r[0] == "heads random") for r in flagged)


def null_metrics(variant, point, seed, rng):
    """Every variant the same in distribution: there is nothing to find."""
    noise = lambda sd: float(rng.normal(0, sd))  # noqa: E731
    out = {"chance/digit/accuracy": 0.11}
    if variant != "sup":
        out |= {"nll/iwae": 90 + noise(1.0), "probe/digit/accuracy": 0.8 + noise(0.01)}
    if variant != "vae":
        out |= {"task/digit/accuracy": 0.8 + noise(0.01)}
    return out


def test_null_results_give_no_evidence_anywhere_and_say_so():
    conditions = {"label_fraction": [0.01, 0.03, 0.1, 0.3, 1.0], "beta": [0.5, 1.0, 2.0, 4.0]}
    data = study(spec(conditions, list(range(10))), null_metrics)
    table = data.table
    assert len(table) == 4 * 20  # four hypotheses x 20 condition points
    assert (table["p_t"] < 0.05).any()  # uncorrected, some noise looks "significant" ...
    # ... simultaneous within each hypothesis: no claim (equivalence within ±0.01 may be shown)
    assert set(table["verdict"]) <= {"no evidence", "equivalent"}
    assert set(data.pooled["verdict"]) <= {"no evidence", "equivalent"}
    context = answer_context(data, 0)
    for kind in context["kinds"]:
        assert kind["lead"].startswith("Pooled over the condition points")
        assert all(" better" not in s and " worse" not in s and "crossover" not in s
                   for s in kind["sentences"])
        assert all("no single point shows a difference" in s for s in kind["sentences"])
    assert all(v in VERDICTS for v in table["verdict"])
    assert not math.isnan(table["detectable"].iloc[0])
    assert np.isfinite(data.pooled["seeds_needed"].replace(math.inf, 1e9)).all()


def test_categorical_axes_compare_the_variant_with_itself_across_levels():
    def metrics(variant, point, seed, rng):
        if variant == "vae":
            return {"probe/digit/accuracy": 0.7 + float(rng.normal(0, 0.003))}
        drop = 0.1 if (variant == "mt" and point["tasks"] == "with-random") else 0.0
        return {"task/digit/accuracy": 0.8 - drop + float(rng.normal(0, 0.003)),
                "chance/digit/accuracy": 0.11}

    conditions = {"label_fraction": [1.0, 0.1], "tasks": ["related", "with-random"]}
    data = study(spec(conditions, [0, 1, 2, 3], design="ofat"), metrics)
    levels = data.levels[(data.levels["variant"] == "mt")
                         & (data.levels["metric"] == "task/digit/accuracy")]
    row = levels.iloc[0]
    assert (row["axis"], row["level"], row["reference"]) == ("tasks", "with-random", "related")
    assert row["diff"] == pytest.approx(-0.1, abs=0.01) and row["verdict"] == "worse"
    line = answer_context(data, 0)["levels"][0]
    assert "along tasks (each variant against itself): mt task/digit/accuracy at with-random vs " \
        "related: worse (−0.1" in line
    # ofat: the Answer reads axis by axis, the default point with the first axis
    assert answer_table(data)["headers"][2:] == ["label_fraction=0.1, tasks=related",
                                                 "label_fraction=1, tasks=related",
                                                 "label_fraction=1, tasks=with-random"]


def test_default_hypotheses_cover_the_study_tasks_only():
    spec_ = spec({"label_count": [100, 1000]}, [0, 1, 2])
    spec_["datasets"]["mnist"] = {"tasks": ["digit"]}
    data = study(spec_, crossover_metrics)
    tasks = {h.task for h in data.hypotheses if h.task}
    assert tasks == {"digit"}  # slant is probed and has a head, but is not a study task
    line = answer_context(data, 0)["learnability"][0]
    assert "digit: best" in line and "slant" not in line and "random" not in line


WEIGHT_EFFECT = {0: -0.04, 0.1: -0.02, 1: 0.0, 10: 0.02}  # +0.02 per decade, 0 at 0.01


def weight_metrics(variant, point, seed, rng):
    """The MT-VAE's head gains 0.02 on supervised per decade of task weight (0 one decade
    below the smallest weight)."""
    out = crossover_metrics(variant, {"label_count": 1000}, seed, rng)
    if variant == "mt":
        out["task/digit/accuracy"] += WEIGHT_EFFECT[point["task_weight"]] - EFFECT[1000]
    return out


def test_a_task_weight_axis_with_zero_is_tested_on_a_log_scale():
    data = study(spec({"task_weight": [0, 0.1, 1, 10]}, seeds=[0, 1, 2, 3, 4]), weight_metrics)
    trend = data.trends.set_index("hypothesis").loc["mt vs sup: task/digit/accuracy"]
    assert trend["log"] and trend["positions"] == [-2.0, -1.0, 0.0, 1.0]
    assert trend["slope"] == pytest.approx(0.02, abs=0.004) and trend["p"] < 0.05


def test_the_intro_says_which_differences_are_not_claimed():
    from mtvae.report.answer import intro

    assert "(‡) is listed apart and not claimed" in intro(True)
