"""Study statistics on synthetic results with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from mtvae.analysis.stats import (
    detectable_effect,
    holm,
    min_wilcoxon_p,
    paired_test,
    power,
    results_frame,
    seeds_needed,
    summarize,
    t_interval,
)
from mtvae.evaluate import catalogue


def test_catalogue_directions_families_and_kinds():
    expect = {"recon/mse": ("reconstruction", "lower"), "nll/iwae": ("reconstruction", "lower"),
              "elbo": ("reconstruction", "higher"), "gen/fd": ("generation", "lower"),
              "gen/precision": ("generation", "higher"),
              "probe/shape/accuracy": ("representation", "higher"),
              "probe/x/r2@100": ("representation", "higher"),
              "disent/mig": ("representation", "higher"), "task/x/mae": ("task", "lower"),
              "task/shape/accuracy": ("task", "higher"),
              "probe_knn/x/mae@all": ("representation", "lower"),
              "ood/task/shape/accuracy": ("task", "higher")}
    for key, (family, direction) in expect.items():
        metric = catalogue.lookup(key)
        assert (metric.family, metric.direction, metric.kind) == (family, direction, "outcome")
        assert metric.definition, key
    for key in ("nll/iwae_k", "nll/iwae_n", "probe/x/n_train@all", "probe/n_dims", "kl",
                "time/train_s", "gen/n_samples", "disent/n_points", "leakage/shared/x",
                "probe_knn/x/n_train@all", "gen/reference_accuracy", "chance/x/accuracy",
                "vq/usage", "an/undeclared/key"):
        assert not catalogue.is_outcome(key), key
    assert catalogue.lookup("ood/recon/mse").definition.startswith("on the held-out")


def test_results_frame_carries_the_catalogue():
    cells = [{"dataset": "d", "point": "{}", "variant": "v", "seed": 0, "run_id": "r"}]
    runs = [{"run_id": "r", "model": "mtvae", "status": "done",
             "metrics": {"probe/n_dims": 10, "task/digit/accuracy": 0.9, "flag": True}}]
    frame = results_frame(cells, runs)
    assert "flag" not in set(frame["metric"])
    kinds = frame.drop_duplicates("metric").set_index("metric")["kind"].to_dict()
    assert kinds["probe/n_dims"] == "info" and kinds["task/digit/accuracy"] == "outcome"


def test_summary_gives_the_known_means_and_t_intervals():
    values = np.array([0.5, 0.52, 0.47, 0.51, 0.49])
    cells = [{"dataset": "d", "point": "{}", "variant": "v", "seed": s, "run_id": f"r{s}"}
             for s in range(5)]
    runs = [{"run_id": f"r{s}", "model": "vae", "status": "done",
             "metrics": {"recon/mse": float(v)}} for s, v in enumerate(values)]
    row = summarize(results_frame(cells, runs)).iloc[0]
    half = stats.t.ppf(0.975, 4) * values.std(ddof=1) / math.sqrt(5)
    assert row["n"] == 5 and row["mean"] == pytest.approx(values.mean())
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((values.mean() - half,
                                                             values.mean() + half))
    assert t_interval(np.array([1.0, 1.0, 1.0]))[1:] == (1.0, 1.0)
    assert all(math.isnan(v) for v in t_interval(np.array([2.0]))[1:])


def test_holm_matches_the_textbook_example():
    adjusted = holm(np.array([0.01, 0.04, 0.03, 0.005, np.nan]))
    np.testing.assert_allclose(adjusted[:4], [0.03, 0.06, 0.06, 0.02])
    assert math.isnan(adjusted[4])
    assert min_wilcoxon_p(3) == 0.25 and min_wilcoxon_p(6) == pytest.approx(1 / 32)


def test_paired_test_matches_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 1.0, 8), rng.normal(0.0, 1.0, 8)
    out = paired_test(a - b, margin=0.5)
    assert out["p_t"] == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert out["p_w"] == pytest.approx(stats.wilcoxon(a - b).pvalue)
    assert out["d_z"] == pytest.approx((a - b).mean() / (a - b).std(ddof=1))
    one_sided = stats.ttest_1samp(a - b + 0.5, 0.0, alternative="greater").pvalue
    assert out["p_ni"] == pytest.approx(one_sided) and not out["constant"]


def test_a_difference_identical_in_every_seed_gets_no_p_value():
    out = paired_test(np.array([22.0, 22.0, 22.0]))
    assert out["constant"] and out["diff"] == 22.0
    assert all(math.isnan(out[k]) for k in ("p_t", "p_w", "p_ni", "p_inf", "t", "d_z"))


def test_detectable_effect_has_80_percent_power_and_seeds_needed_is_the_first_n():
    sd, n, alpha = 0.02, 5, 0.05
    effect = detectable_effect(sd, n, alpha)
    assert power(effect, sd, n, alpha) == pytest.approx(0.8, abs=1e-6)
    assert effect > stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)  # larger than the CI's half
    needed = seeds_needed(0.01, sd, alpha)
    assert power(0.01, sd, int(needed), alpha) >= 0.8 > power(0.01, sd, int(needed) - 1, alpha)
    assert seeds_needed(1e-6, sd, alpha) == math.inf
    assert math.isnan(detectable_effect(0.0, n, alpha))
