"""The analysis' statistics against references: power by Monte Carlo, the pooled effect by a
REML mixed model fitted here, Holm's levels, verdicts read from intervals, tested crossovers
on simulated data with fixed RNGs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from mtvae.analysis import inference as I
from mtvae.analysis.stats import hedges, holm, holm_levels, interval_at, pooled_test, power
from mtvae.analysis.trends import all_count, crossover_split, split_tests, trends
from mtvae.evaluate.catalogue import smallest_effect
from mtvae.study.axes import positions
from mtvae.study.expand import point_key


# --- power -----------------------------------------------------------------------------------
@pytest.mark.parametrize("n, effect, alpha", [(5, 2.2, 0.05 / 9), (3, 5.0, 0.05),
                                              (4, 4.0, 0.01 / 9), (3, 1.0, 0.05)])
def test_power_matches_monte_carlo_where_scipy_nct_gives_up(n, effect, alpha):
    # noncentralities 4.9 to 8.7 at 2-4 degrees of freedom: SciPy's nct is NaN for some
    rng = np.random.default_rng(7)
    x = rng.normal(effect, 1.0, size=(200_000, n))
    t = x.mean(axis=1) / (x.std(axis=1, ddof=1) / math.sqrt(n))
    crit = stats.t.ppf(1 - alpha / 2, n - 1)
    simulated = float(np.mean(np.abs(t) > crit))
    assert power(effect, 1.0, n, alpha) == pytest.approx(simulated, abs=0.005)
    assert power(-effect, 1.0, n, alpha) == pytest.approx(simulated, abs=0.005)  # both tails


def test_power_matches_scipy_nct_wherever_that_is_finite():
    import warnings

    compared = 0
    for n in (2, 3, 4, 5, 10, 30, 200):
        for effect in (0.0, 0.3, 1.0, 2.0, 4.0):
            for alpha in (0.05, 0.05 / 9, 0.001):
                df, nc = n - 1, effect * math.sqrt(n)
                crit = stats.t.ppf(1 - alpha / 2, df)
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    exact = stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc)
                if np.isfinite(exact):
                    compared += 1
                    assert power(effect, 1.0, n, alpha) == pytest.approx(exact, abs=1e-4)
    assert compared > 80


def test_power_at_zero_effect_is_the_level():
    assert power(0.0, 1.0, 4, 0.05) == pytest.approx(0.05, abs=1e-4)


def test_hedges_correction_shrinks_d_z_at_few_seeds():
    diff = np.array([0.1, 0.3, 0.2])
    row = I.paired_test(diff)
    assert row["g_z"] == pytest.approx(row["d_z"] * (1 - 3 / (4 * 2 - 1)))
    assert hedges(100) == pytest.approx(1 - 3 / 395)


# --- the pooled effect against a REML mixed model ------------------------------------------
def reml_mixed_model(y: np.ndarray) -> tuple[float, float]:
    """Seeds x points differences: point as a fixed effect, seed as a random intercept, fitted
    by REML (numerical optimisation of the restricted likelihood); the average of the point
    effects and its standard error."""
    n, k = y.shape
    Y = y.reshape(-1)
    X = np.tile(np.eye(k), (n, 1))
    Z = np.kron(np.eye(n), np.ones((k, 1)))

    def covariance(params):
        s2_seed, s2_e = np.exp(params)
        return s2_seed * Z @ Z.T + s2_e * np.eye(n * k)

    def restricted(params):
        V = covariance(params)
        Vi = np.linalg.inv(V)
        XtViX = X.T @ Vi @ X
        beta = np.linalg.solve(XtViX, X.T @ Vi @ Y)
        r = Y - X @ beta
        return 0.5 * (np.linalg.slogdet(V)[1] + np.linalg.slogdet(XtViX)[1] + r @ Vi @ r)

    fit = optimize.minimize(restricted, np.log([y.var(), y.var()]), method="Nelder-Mead",
                            options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20_000})
    Vi = np.linalg.inv(covariance(fit.x))
    cov = np.linalg.inv(X.T @ Vi @ X)
    c = np.full(k, 1 / k)
    return float(c @ np.linalg.solve(X.T @ Vi @ X, X.T @ Vi @ Y)), float(math.sqrt(c @ cov @ c))


def test_pooled_effect_equals_the_reml_mixed_model_in_a_balanced_design():
    rng = np.random.default_rng(3)
    effects = np.array([0.2, 0.5, -0.1, 0.4])
    y = effects + rng.normal(0, 0.6, (6, 1)) + rng.normal(0, 0.3, (6, 4))  # seed effects
    mean, se = reml_mixed_model(y)
    pooled = pooled_test(pd.DataFrame(y))
    assert pooled["diff"] == pytest.approx(mean, rel=1e-9)
    assert pooled["se"] == pytest.approx(se, rel=1e-4)
    assert pooled["df"] == 5 and pooled["n_points"] == 4
    assert pooled["p"] == pytest.approx(stats.ttest_1samp(y.mean(axis=1), 0).pvalue)


def test_pooled_effect_leaves_out_seeds_without_every_point():
    y = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [1.5, np.nan, 2.5]})
    assert pooled_test(y)["n_seeds"] == 2
    assert pooled_test(y)["diff"] == pytest.approx((1.25 + 2.75) / 2)
    assert pooled_test(y.to_numpy()) == pooled_test(y)  # a plain array, as simulations pass


# --- Holm's levels and intervals agree with Holm's decisions --------------------------------
def test_intervals_at_holms_levels_exclude_zero_exactly_when_holm_rejects():
    rng = np.random.default_rng(11)
    for _ in range(200):
        m = int(rng.integers(1, 9))
        t = rng.normal(0, 3, m)
        df = 2
        p = 2 * stats.t.sf(np.abs(t), df)
        levels = holm_levels(p, 0.05)
        rejected = holm(p) < 0.05
        for ti, level, rej in zip(t, levels, rejected, strict=True):
            low, high = interval_at(ti, 1.0, df, level)
            assert (low > 0 or high < 0) == rej


# --- verdicts are read from the printed interval --------------------------------------------
def _row(diff, low, high, test="superiority", margin=0.0, sesoi=0.0):
    return pd.Series({"diff": diff, "diff_low": low, "diff_high": high, "test": test,
                      "margin": margin, "sesoi": sesoi, "constant": False})


@pytest.mark.parametrize("low, high, test, margin, sesoi, expected", [
    (0.01, 0.2, "superiority", 0, 0.01, "better"),
    (-0.3, -0.02, "superiority", 0, 0.01, "worse"),
    (-0.005, 0.008, "superiority", 0, 0.01, "equivalent"),  # TOST inside ±0.01
    (-0.02, 0.008, "superiority", 0, 0.01, "no evidence"),
    (-0.04, 0.06, "noninferiority", 0.05, 0.05, "non-inferior"),  # only Δ > −m is shown
    (-0.04, 0.03, "noninferiority", 0.05, 0.05, "equivalent"),  # both bounds inside ±m
    (-0.03, -0.01, "noninferiority", 0.05, 0.05, "equivalent"),  # negative, but within ±m
    (-0.2, -0.06, "noninferiority", 0.05, 0.05, "worse"),
    (-0.2, -0.01, "noninferiority", 0.05, 0.05, "no evidence"),
])
def test_verdicts_follow_the_interval(low, high, test, margin, sesoi, expected):
    row = _row((low + high) / 2, low, high, test, margin, sesoi)
    assert I.verdict(row.to_frame().T.itertuples().__next__()) == expected


def test_smallest_effects_of_interest_come_from_the_catalogue():
    assert smallest_effect("task/digit/accuracy") == 0.01
    assert smallest_effect("nll/iwae") == 1.0
    assert smallest_effect("probe/thickness/r2") == 0.01
    assert smallest_effect("gen/fd") is None and smallest_effect("probe/n_dims") is None


def _frame(values: dict[tuple[str, str], np.ndarray], metric="task/digit/accuracy"):
    rows = []
    for (variant, point), vals in values.items():
        for seed, v in enumerate(vals):
            rows.append({"dataset": "d", "point": point, "variant": variant, "seed": seed,
                         "run_id": f"{variant}{point}{seed}", "model": variant,
                         "metric": metric, "value": float(v), "family": "task",
                         "higher_is_better": True, "kind": "outcome"})
    return pd.DataFrame(rows)


def test_identical_cells_count_once_in_the_family_and_intervals_match_verdicts():
    rng = np.random.default_rng(5)
    base = rng.normal(0.8, 0.01, 4)
    same = base + rng.normal(0.02, 0.01, 4)
    values = {("v", "p1"): same, ("b", "p1"): base, ("v", "p2"): same, ("b", "p2"): base,
              ("v", "p3"): base + rng.normal(0.0, 0.01, 4), ("b", "p3"): base}
    h = I.Hypothesis("h", "d", "v", "b", "task/digit/accuracy", "task/digit/accuracy", "task")
    table = I.hypothesis_table(_frame(values), [h], 0.05)
    assert set(table["family_size"]) == {2}  # p1 and p2 are one cell
    for r in table.itertuples():
        low, high = interval_at(r.diff, r.sd / math.sqrt(r.n), r.n - 1, 0.05 / 2)
        assert (r.diff_low, r.diff_high) == pytest.approx((low, high))
        assert (r.verdict in I.CLAIMS) == (r.diff_low > 0 or r.diff_high < 0)
        assert r.p_t_adj == pytest.approx(min(1.0, 2 * r.p_t))


# --- tested crossovers on simulated data ---------------------------------------------------
def _named(mu: list[float], rng, reps: int = 150, seeds: int = 5, seed_sd: float = 0.5):
    """The crossover split named in each of ``reps`` simulated hypotheses: Δ at 9 levels is
    ``mu`` + a seed effect + independent noise (sd 1)."""
    k = len(mu)
    out = []
    for _ in range(reps):
        y = np.asarray(mu) + rng.normal(0, seed_sd, (seeds, 1)) + rng.normal(0, 1, (seeds, k))
        out.append(crossover_split(split_tests(y, 0.05 / (k - 1))))
    return out


@pytest.mark.parametrize("effect", [0.0, 1.0, 2.0])
def test_null_and_constant_effects_name_a_crossover_in_at_most_5_percent(effect):
    named = _named([effect] * 9, np.random.default_rng(20 + int(effect)))
    assert np.mean([s is not None for s in named]) <= 0.05


def test_a_planted_sign_reversal_is_named_at_the_right_pair_of_levels():
    # +2.5 at the first four levels, −2.5 at the last five (d_z ≈ 2.2 per point, 5 seeds)
    named = _named([2.5] * 4 + [-2.5] * 5, np.random.default_rng(30))
    assert np.mean([s == 4 for s in named]) >= 0.8


def test_the_old_rule_would_have_named_crossovers_under_a_constant_effect():
    # why the change is tested: a verdict change between cells (Holm within the row) names
    # crossovers when the true effect is the same at every point
    rng = np.random.default_rng(1)
    flips = 0
    for _ in range(100):
        y = 1.0 + rng.normal(0, 1, (5, 9))
        p = 2 * stats.t.sf(np.abs(y.mean(0) / (y.std(0, ddof=1) / math.sqrt(5))), 4)
        decided = holm(p) < 0.05
        flips += bool(np.any(decided[1:] != decided[:-1]))
    assert flips > 20
    assert np.mean([s is not None for s in _named([1.0] * 9, rng, reps=100)]) <= 0.05


def _reversal_table(hypotheses: int, t_side: float, seeds: int = 8) -> pd.DataFrame:
    """Every hypothesis with Δ = +1 at 100 labels and −1 at all, each side's t exactly
    ``t_side`` over ``seeds`` seeds."""
    z = np.linspace(-1, 1, seeds)
    z = (z - z.mean()) / z.std(ddof=1)
    sd = math.sqrt(seeds) / t_side
    sides = {100: 1.0 + sd * z, "all": -1.0 - sd * z[::-1]}
    return pd.DataFrame([{"hypothesis": f"h{i}", "dataset": "d", "family": "task",
                          "point": point_key({"label_count": level}),
                          "seed_diffs": dict(enumerate(values))}
                         for i in range(hypotheses) for level, values in sides.items()])


def test_a_crossover_is_corrected_across_the_study_hypotheses_like_the_verdicts():
    # each side at t = 3 over 8 seeds: p ≈ 0.02, a crossover alone (0.05 per side) but not
    # in a study of 9 hypotheses (0.05 / 9 per side, where t must pass about 4.0)
    spec = {"conditions": {"label_count": [100, "all"]}}
    alone = trends(spec, pd.DataFrame(), _reversal_table(1, 3.0), [])[1]
    nine = trends(spec, pd.DataFrame(), _reversal_table(9, 3.0), [])[1]
    assert alone["crossover"].all() and alone["cross_tests"].eq(1).all()
    assert not nine["crossover"].any() and nine["cross_tests"].eq(9).all()
    assert nine["cross_level"].iloc[0] == pytest.approx(0.05 / 9)
    # the printed sides are at the crossover's level: they include 0 where none is named,
    # while the change between them (at the hypothesis' own level) is still significant
    row = nine.iloc[0]
    assert row["below_low"] < 0 < row["below_high"] and row["above_low"] < 0 < row["above_high"]
    assert row["change_high"] < 0 and row["level"] == pytest.approx(0.05)
    strong = trends(spec, pd.DataFrame(), _reversal_table(9, 6.0), [])[1]
    assert strong["crossover"].all()


# --- `all` at its real labelled count -------------------------------------------------------
def test_all_sits_at_its_real_labelled_count():
    place = positions([100, 300, 1000, "all"], all_at=4000)
    assert place["all"] == pytest.approx(math.log10(4000))
    cells = [{"run_id": "r", "point": '{"label_count":"all"}'},
             {"run_id": "s", "point": '{"label_count":100}'}]
    runs = [{"run_id": "r", "config": {"data": {"n_train": 4000}}, "metrics": {}},
            {"run_id": "s", "config": {"data": {"n_train": 9}}, "metrics": {}}]
    assert all_count(runs, cells, "label_count") == 4000
    runs[0]["config"] = {"data": {"n_train": None}}
    runs[0]["metrics"] = {"probe/digit/n_train@all": 3900}
    assert all_count(runs, cells, "label_count") == 3900
    assert all_count(runs, cells, "label_fraction") is None
