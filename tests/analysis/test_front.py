"""The front over the task weight: points, dominance verdicts, adaptive placements and Δm,
on hand-made study results with known answers."""

from __future__ import annotations

import json
import math

import pytest
from scipy import stats

from mtvae.analysis.front import (
    delta_m,
    delta_m_seed,
    front_points,
    front_verdicts,
    fronts,
    placements,
    weight_range,
)

SEEDS = [0, 1, 2, 3, 4]
NOISE = [0.0, 0.002, -0.003, 0.003, -0.002]  # per seed, mean 0; rolled per variant and point
SPEC = {
    "variants": {"vae": {"model": "vae", "baselines": {}},
                 "mtvae": {"model": "mtvae",
                           "baselines": {"reconstruction": "vae", "task": "supervised"}},
                 "supervised": {"model": "supervised", "baselines": {}}},
    "conditions": {"task_weight": [0, 1, 10], "weighting": ["fixed", "famo", "dwa"]},
    "default": {"task_weight": 1, "weighting": "fixed"},
}
# (task_weight, strategy) -> (nll/iwae, task/a/accuracy, val/task/a/accuracy); weight 0 reads
# the probe (its head is untrained: 0.1)
MTVAE = {(0, "fixed"): (100.0, 0.70, 0.1), (1, "fixed"): (100.2, 0.90, 0.90),
         (10, "fixed"): (110.0, 0.95, 0.85), (1, "famo"): (100.1, 0.96, 0.0),
         (1, "dwa"): (100.2, 0.80, 0.0)}


def _config(model: str, seed: int, weight: float = 1, strategy: str = "fixed",
            tasks=("a", "b")) -> dict:
    config = {"seed": seed, "data": {"seed": seed, "n_train": 100},
              "model": {"name": model, "tasks": list(tasks),
                        "weighting": {"strategy": strategy}}}
    if weight != 1:
        config["model"]["task_scale_factor"] = weight
    return config


def _run(rid, variant, model, seed, config, metrics) -> dict:
    return {"run_id": rid, "variant": variant, "model": model, "dataset": "d", "seed": seed,
            "status": "done", "config": config, "metrics": metrics}


def study():
    """runs and cells of an ofat study over task_weight and weighting, five seeds."""
    runs, cells = [], []
    points = [(w, "fixed") for w in (0, 1, 10)] + [(1, "famo"), (1, "dwa")]
    for seed, eps in zip(SEEDS, NOISE, strict=True):
        vae = _run(f"vae{seed}", "vae", "vae", seed, _config("vae", seed),
                   {"nll/iwae": 100.0 + 10 * eps, "probe/a/accuracy": 0.70 + eps})
        sup = _run(f"sup{seed}", "supervised", "supervised", seed, _config("supervised", seed),
                   {"task/a/accuracy": 0.97 + eps})
        runs += [vae, sup]
        for k, (w, s) in enumerate(points, start=1):
            nll, acc, val = MTVAE[(w, s)]
            eps = NOISE[(SEEDS.index(seed) + k) % len(NOISE)]  # independent of the VAE's
            metrics = {"nll/iwae": nll + 10 * eps, "task/a/accuracy": 0.1 if w == 0 else acc + eps,
                       "probe/a/accuracy": acc + eps, "val/task/a/accuracy": val + eps}
            rid = f"mt{w}{s}{seed}"
            runs.append(_run(rid, "mtvae", "mtvae", seed, _config("mtvae", seed, w, s), metrics))
            point = json.dumps({"task_weight": w, "weighting": s}, separators=(",", ":"))
            cells += [{"dataset": "d", "point": point, "variant": v, "seed": seed, "run_id": r}
                      for v, r in (("mtvae", rid), ("vae", vae["run_id"]),
                                   ("supervised", sup["run_id"]))]
    return runs, cells


def test_front_has_each_fixed_weight_the_adaptive_runs_and_both_baselines():
    runs, cells = study()
    (front,) = fronts(SPEC, runs, cells)
    assert sorted(front.weights) == [0.0, 1.0, 10.0]
    assert sorted(front.adaptive) == [("mtvae", "dwa", 1.0), ("mtvae", "famo", 1.0)]
    assert front.tasks == ["a"]
    points = front_points(front).set_index("label")
    assert points.loc["×0", "task_metric"] == "probe/a/accuracy"  # no head trained at 0
    assert points.loc["×0", "task_mean"] == pytest.approx(0.70)
    assert points.loc["×1", "task_metric"] == "task/a/accuracy"
    assert points.loc["×10", "recon_mean"] == pytest.approx(110.0)
    assert points.loc["vae + probe", "task_mean"] == pytest.approx(0.70)
    assert points.loc["supervised", "task_mean"] == pytest.approx(0.97)
    assert math.isnan(points.loc["supervised", "recon_mean"])
    # the interval is the t-interval of the mean over the five seeds
    half = stats.t.ppf(0.975, 4) * stats.tstd(NOISE) / math.sqrt(5)
    assert points.loc["×1", "task_high"] - points.loc["×1", "task_mean"] == pytest.approx(half)


def test_only_the_weight_with_a_better_task_and_no_worse_nll_dominates_the_vae():
    runs, cells = study()
    (front,) = fronts(SPEC, runs, cells)
    (verdict,) = front_verdicts(front, alpha=0.05).to_dict("records")
    # ×0: the probe equals the VAE's (not better); ×10: 10 nats worse (margin: 1 nat)
    assert verdict["tested"] == [0.0, 1.0, 10.0]
    assert verdict["dominating"] == [1.0] and verdict["range"] == "×1"
    assert verdict["margin"] == 1.0


def test_weight_range_names_neighbours_as_a_range_and_others_as_a_list():
    tested = [0.0, 0.1, 0.3, 1.0, 3.0]
    assert weight_range([0.3, 1.0, 3.0], tested) == "×0.3–×3"
    assert weight_range([0.1, 1.0], tested) == "×0.1, ×1"
    assert weight_range([], tested) == "none"


def test_adaptive_strategies_are_placed_against_the_weight_tuned_on_validation():
    runs, cells = study()
    (front,) = fronts(SPEC, runs, cells)
    table = placements(front, alpha=0.05).set_index("strategy")
    # validation picks ×1 (0.90 > ×10's 0.85) although ×10 is best on test (0.95)
    assert set(table["tuned_weight"]) == {1.0} and set(table["tuned_on"]) == {"validation"}
    assert table.loc["famo", "place"] == "above"  # +0.06 accuracy, nll 0.1 nats better
    assert table.loc["dwa", "place"] == "below"  # -0.10 accuracy at the same nll
    assert table.loc["famo", "task_diff"] == pytest.approx(0.06)


def test_tuning_falls_back_to_the_test_split_and_says_so():
    runs, cells = study()
    for run in runs:
        run["metrics"].pop("val/task/a/accuracy", None)
    (front,) = fronts(SPEC, runs, cells)
    table = placements(front, alpha=0.05)
    assert set(table["tuned_weight"]) == {10.0} and set(table["tuned_on"]) == {"test"}


def test_delta_m_of_one_seed_follows_libmtl_signs():
    multi = {"task/a/accuracy": 0.8, "task/b/mae": 2.0}
    single = {"task/a/accuracy": 0.75, "task/b/mae": 2.5}
    # 100 * mean(+(0.8 - 0.75) / 0.75, -(2.0 - 2.5) / 2.5) = 100 * mean(1/15, 1/5)
    assert delta_m_seed(multi, single) == pytest.approx(100 * (1 / 15 + 1 / 5) / 2)


def test_delta_m_pairs_each_seed_with_the_single_task_runs_of_the_same_config():
    runs, cells = [], []
    multi_acc = {0: (0.80, 0.60), 1: (0.82, 0.58), 2: (0.78, 0.62)}
    for seed, (a, b) in multi_acc.items():
        runs.append(_run(f"m{seed}", "mtvae", "mtvae", seed, _config("mtvae", seed),
                         {"task/a/accuracy": a, "task/b/accuracy": b}))
        runs.append(_run(f"sa{seed}", "mtvae", "mtvae", seed,
                         _config("mtvae", seed, tasks=["a"]), {"task/a/accuracy": 0.75}))
        runs.append(_run(f"sb{seed}", "mtvae", "mtvae", seed,
                         _config("mtvae", seed, tasks=["b"]), {"task/b/accuracy": 0.60}))
        other = _config("mtvae", seed, tasks=["b"])
        other["data"]["n_train"] = 50  # another config: never the reference
        runs.append(_run(f"x{seed}", "mtvae", "mtvae", seed, other, {"task/b/accuracy": 0.1}))
        for point, rid in (('{"tasks":"related"}', f"m{seed}"), ('{"tasks":"a"}', f"sa{seed}"),
                           ('{"tasks":"b"}', f"sb{seed}")):
            cells.append({"dataset": "d", "point": point, "variant": "mtvae", "seed": seed,
                          "run_id": rid})
    (row,) = delta_m({}, runs, cells).to_dict("records")
    expected = {s: 100 * ((a - 0.75) / 0.75 + (b - 0.60) / 0.60) / 2
                for s, (a, b) in multi_acc.items()}
    assert row["per_seed"] == pytest.approx(expected)
    assert row["delta_m"] == pytest.approx(sum(expected.values()) / 3)
    assert row["metrics"] == ["task/a/accuracy", "task/b/accuracy"] and row["n"] == 3
    half = stats.t.ppf(0.975, 2) * stats.tstd(list(expected.values())) / math.sqrt(3)
    assert row["high"] - row["delta_m"] == pytest.approx(half)


def test_no_front_without_a_task_weight_axis():
    runs, cells = study()
    assert fronts({**SPEC, "conditions": {"weighting": ["fixed"]}}, runs, cells) == []


def test_a_variant_without_declared_baselines_is_measured_against_the_registered_references():
    from mtvae.analysis.front import _baseline

    spec = {"variants": {"mt": {"model": "mtvae"}, "plain": {"model": "vae"},
                         "heads": {"model": "supervised"},
                         "named": {"model": "mtvae", "baselines": {"task": "mt"}}}}
    # the models' registry entries say which is the reference on which family, by any name
    assert _baseline(spec, "mt", "reconstruction") == "plain"
    assert _baseline(spec, "mt", "task") == "heads"
    assert _baseline(spec, "named", "task") == "mt"  # a declared baseline wins
    assert _baseline({"variants": {"mt": {"model": "mtvae"}}}, "mt", "task") is None
