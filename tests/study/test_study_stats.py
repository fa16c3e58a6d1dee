"""Study statistics on synthetic results with known answers."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mtvae.report.findings import generate_findings
from mtvae.study.stats import (
    holm,
    metric_rule,
    min_wilcoxon_p,
    paired_comparisons,
    results_frame,
    summarize,
    t_interval,
    win_table,
)

SEEDS = [0, 1, 2, 3, 4]
NOISE = np.array([0.01, -0.02, 0.015, -0.005, 0.0])
MT_NOISE = np.array([0.02, -0.01, -0.015, 0.01, -0.005])  # mean zero: no shift, no difference


def synthetic(mt_shift: dict[str, float]) -> pd.DataFrame:
    """Results of 'vae' and 'mt' on two conditions; mt = vae + shift (+ seed noise) per metric."""
    base = {"recon/mse": 0.5, "probe/shape/accuracy": 0.6, "probe/x/r2": 0.7, "kl": 3.0}
    cells, runs = [], []
    for point in ({"label_fraction": 0.1}, {"label_fraction": 1.0}):
        for variant in ("vae", "mt"):
            for i, seed in enumerate(SEEDS):
                rid = f"{variant}-{point['label_fraction']}-{seed}"
                metrics = {k: v + NOISE[i] * (1 + SEEDS[i] % 2) for k, v in base.items()}
                if variant == "mt":
                    metrics = {k: v + mt_shift.get(k, 0.0) + MT_NOISE[i] for k, v in metrics.items()}
                cells.append({"dataset": "shapes", "point": json.dumps(point), "variant": variant,
                              "seed": seed, "run_id": rid})
                runs.append({"run_id": rid, "model": "mtvae" if variant == "mt" else "vae",
                             "status": "done", "metrics": {**metrics, "nll/iwae_k": 100}})
    return results_frame(cells, runs)


BASELINES = {"mt": {"reconstruction": "vae", "representation": "vae"}}


def test_metric_directions_and_families():
    assert metric_rule("recon/mse") == ("reconstruction", False)
    assert metric_rule("nll/iwae") == ("reconstruction", False)
    assert metric_rule("elbo") == ("reconstruction", True)
    assert metric_rule("gen/fd") == ("generation", False)
    assert metric_rule("gen/precision") == ("generation", True)
    assert metric_rule("probe/shape/accuracy") == ("representation", True)
    assert metric_rule("disent/mig") == ("representation", True)
    assert metric_rule("task/x/mae") == ("task", False)
    assert metric_rule("task/shape/accuracy") == ("task", True)
    assert metric_rule("probe_knn/x/mae@all") == ("representation", False)
    for key in ("nll/iwae_k", "probe/x/n_train", "kl", "time/train_s", "probe/x/r2@100",
                "gen/n_samples", "disent/n_points", "leakage/shared/x", "probe_knn/x/n_train@all",
                "gen/reference_accuracy"):
        assert metric_rule(key)[0] is None, key


def test_summary_gives_the_known_means_and_t_intervals():
    frame = synthetic({})
    summary = summarize(frame)
    row = summary[(summary["variant"] == "vae") & (summary["metric"] == "recon/mse")].iloc[0]
    values = 0.5 + NOISE * (1 + np.array(SEEDS) % 2)
    half = stats.t.ppf(0.975, 4) * values.std(ddof=1) / math.sqrt(5)
    assert row["n"] == 5
    assert row["mean"] == pytest.approx(values.mean())
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((values.mean() - half,
                                                             values.mean() + half))
    assert t_interval(np.array([1.0, 1.0, 1.0]))[1:] == (1.0, 1.0)
    assert all(math.isnan(v) for v in t_interval(np.array([2.0]))[1:])


def test_holm_matches_the_textbook_example():
    adjusted = holm(np.array([0.01, 0.04, 0.03, 0.005, np.nan]))
    np.testing.assert_allclose(adjusted[:4], [0.03, 0.06, 0.06, 0.02])
    assert math.isnan(adjusted[4])
    assert min_wilcoxon_p(3) == 0.25 and min_wilcoxon_p(6) == pytest.approx(1 / 32)


def test_paired_tests_match_scipy_and_give_wins_losses_and_ties():
    # mt: much lower recon error (a win, lower is better), much worse probe accuracy (a loss),
    # the same x r2 up to noise (a tie); kl is descriptive and never compared.
    frame = synthetic({"recon/mse": -0.2, "probe/shape/accuracy": -0.3, "probe/x/r2": 0.0})
    table = paired_comparisons(frame, BASELINES)
    assert set(table["metric"]) == {"recon/mse", "probe/shape/accuracy", "probe/x/r2"}
    assert len(table) == 6  # 3 metrics x 2 conditions
    row = table[(table["metric"] == "recon/mse") & (table["point"].str.contains("0.1"))].iloc[0]
    mt = frame[(frame["variant"] == "mt") & (frame["metric"] == "recon/mse")
               & frame["point"].str.contains("0.1")].sort_values("seed")["value"].to_numpy()
    vae = frame[(frame["variant"] == "vae") & (frame["metric"] == "recon/mse")
                & frame["point"].str.contains("0.1")].sort_values("seed")["value"].to_numpy()
    assert row["p_t"] == pytest.approx(stats.ttest_rel(mt, vae).pvalue)
    assert row["p_w"] == pytest.approx(stats.wilcoxon(mt - vae).pvalue)
    diff = vae - mt  # oriented: lower error is better for mt
    assert row["improvement"] == pytest.approx(diff.mean())
    assert row["d_z"] == pytest.approx(diff.mean() / diff.std(ddof=1))
    np.testing.assert_allclose(table["p_t_holm"], holm(table["p_t"].to_numpy()))
    assert (table["p_t_holm"] >= table["p_t"]).all()
    outcomes = table.groupby("metric")["outcome"].agg(set).to_dict()
    assert outcomes == {"recon/mse": {"win"}, "probe/shape/accuracy": {"loss"},
                        "probe/x/r2": {"tie"}}
    wins = win_table(table)
    recon = wins[wins["family"] == "reconstruction"]
    assert recon[["win", "tie", "loss"]].sum().tolist() == [2, 0, 0]
    rep = wins[wins["family"] == "representation"]
    assert rep[["win", "tie", "loss", "n"]].sum().tolist() == [0, 2, 2, 4]


def test_findings_are_driven_by_the_numbers():
    frame = synthetic({"recon/mse": -0.2, "probe/shape/accuracy": -0.3})
    table = paired_comparisons(frame, BASELINES)
    text = " ".join(sum(generate_findings(win_table(table), table, {"mt": "mtvae", "vae": "vae"},
                                          5, 0.05, 0).values(), []))
    assert "mt beat vae on reconstruction metrics in 1 of 1 comparisons" in text
    assert "lost on representation metrics in 1 of 2 comparisons" in text
    assert "on reconstruction metrics they won 2, tied 0 and lost 0 of 2" in text
    flipped = synthetic({"recon/mse": 0.2, "probe/shape/accuracy": 0.3})
    table = paired_comparisons(flipped, BASELINES)
    text = " ".join(sum(generate_findings(win_table(table), table, {"mt": "mtvae", "vae": "vae"},
                                          3, 0.05, 1).values(), []))
    assert "it lost on reconstruction metrics in 1 of 1 comparisons (Holm-corrected p < 0.05" in text
    assert "beat vae on representation metrics" in text
    assert "smallest two-sided p is 0.25" in text and "1 run(s) failed" in text
