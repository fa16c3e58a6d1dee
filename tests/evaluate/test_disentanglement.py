"""Known-answer tests for the disentanglement metrics.

Synthetic ground truth: 5 independent factors with 4-10 levels. The identity code (factors plus
tiny noise) is perfectly disentangled; pure noise and a constant code carry nothing.
"""

from __future__ import annotations

import numpy as np
import pytest

from mtvae.evaluate.disentanglement import (
    betavae_score,
    dci,
    dci_from_importance,
    factorvae_score,
    gaussian_total_correlation,
    mig,
    modularity_explicitness,
    sap,
)

LEVELS = (4, 5, 6, 8, 10)
N = 3000


@pytest.fixture(scope="module")
def factors() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.stack([rng.integers(0, k, N) for k in LEVELS], axis=1)  # (N, F)


@pytest.fixture(scope="module")
def codes(factors) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    identity = factors + 0.01 * rng.normal(size=factors.shape)
    return {
        "identity": identity,
        "noise": rng.normal(size=factors.shape),
        "constant": np.zeros(factors.shape),
        # each factor copied into two dims: two equally informative dims per factor
        "duplicated": np.repeat(identity, 2, axis=1) + 0.01 * rng.normal(size=(N, 2 * len(LEVELS))),
    }


def split(z: np.ndarray, f: np.ndarray):
    h = len(z) // 2
    return z[:h], f[:h], z[h:], f[h:]


# ----------------------------------------------------------------------------- MIG


def test_mig_identity_is_one_noise_and_constant_are_zero(codes, factors):
    assert mig(codes["identity"], factors)["mig"] == pytest.approx(1.0, abs=0.02)
    assert mig(codes["noise"], factors)["mig"] < 0.05
    assert mig(codes["constant"], factors)["mig"] == 0.0


def test_mig_of_a_code_keeping_half_the_bits_is_one_half():
    # a uniform 4-level factor read through f // 2: MI = ln 2, H = ln 4, second dim is noise
    rng = np.random.default_rng(3)
    f = np.repeat(np.arange(4), 2000)[:, None]
    z = np.stack([f[:, 0] // 2 + 0.01 * rng.normal(size=len(f)), rng.normal(size=len(f))], axis=1)
    assert mig(z, f)["mig"] == pytest.approx(0.5, abs=0.01)


def test_mig_duplicated_latent_has_no_gap(codes, factors):
    assert mig(codes["duplicated"], factors)["mig"] < 0.05


def test_mig_is_invariant_to_permuting_and_rescaling_dims(codes, factors):
    z = codes["identity"] + 0.5 * np.random.default_rng(2).normal(size=codes["identity"].shape)
    moved = 3.0 * z[:, ::-1] - 7.0
    assert mig(moved, factors)["mig"] == pytest.approx(mig(z, factors)["mig"])


def test_mig_skips_single_valued_factors(codes, factors):
    with_constant_factor = np.concatenate([factors, np.zeros((N, 1), dtype=int)], axis=1)
    assert mig(codes["identity"], with_constant_factor)["mig"] == pytest.approx(
        mig(codes["identity"], factors)["mig"]
    )
    assert np.isnan(mig(codes["identity"], np.zeros((N, 2), dtype=int))["mig"])


# ----------------------------------------------------------------------------- DCI


def test_dci_from_importance_diagonal_is_perfect():
    out = dci_from_importance(np.diag([0.3, 1.0, 2.0, 0.5]))
    assert out["dci_d"] == pytest.approx(1.0)
    assert out["dci_c"] == pytest.approx(1.0)


@pytest.mark.parametrize("n_factors", [2, 3, 5, 8])
def test_dci_from_importance_code_mixing_two_factors(n_factors):
    r = np.zeros((1, n_factors))
    r[0, :2] = 0.5
    assert dci_from_importance(r)["dci_d"] == pytest.approx(1 - np.log(2) / np.log(n_factors))


def test_dci_from_importance_weights_rows_by_importance_share():
    # two perfect dims (weight 1 each) and one dim mixing two of four factors (weight 2)
    r = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 1.0]])
    expected = (1 + 1 + 2 * (1 - np.log(2) / np.log(4))) / 4
    assert dci_from_importance(r)["dci_d"] == pytest.approx(expected)


def test_dci_from_importance_uniform_and_zero_matrices():
    assert dci_from_importance(np.ones((4, 3)))["dci_d"] == pytest.approx(0.0, abs=1e-12)
    assert dci_from_importance(np.ones((4, 3)))["dci_c"] == pytest.approx(0.0, abs=1e-12)
    assert dci_from_importance(np.zeros((4, 3))) == {"dci_d": 0.0, "dci_c": 0.0}


@pytest.mark.parametrize("name", ["identity", "noise", "constant"])
def test_dci_gbt_identity_noise_and_constant(codes, factors, name):
    n = 600  # boosting (100 trees per class) is the slow part of the suite: a subset is plenty
    out = dci(*split(codes[name][:n], factors[:n]))
    if name == "identity":
        assert out["dci_d"] > 0.95 and out["dci_c"] > 0.95 and out["dci_i"] > 0.95
    elif name == "noise":
        assert out["dci_d"] < 0.1 and out["dci_i"] < 0.3
    else:
        assert out["dci_d"] == 0.0 and out["dci_c"] == 0.0


def test_dci_is_disentanglement_libs_protocol(factors):
    """D and C as disentanglement_lib computes them: one sklearn GradientBoostingClassifier
    per factor with its defaults (100 estimators), importances |feature_importances_|, D and
    C from the importance matrix (a port of its dci.py, same random state)."""
    from sklearn.ensemble import GradientBoostingClassifier

    from mtvae.evaluate.disentanglement import DCI_ESTIMATORS

    rng = np.random.default_rng(3)
    f = factors[:400, :3]
    mixing = rng.normal(size=(3, 6))
    z = np.tanh(f @ mixing / 4) + 0.3 * rng.normal(size=(400, 6))  # entangled, noisy codes
    train, test = (z[:200], f[:200]), (z[200:], f[200:])
    importance = np.stack([
        np.abs(GradientBoostingClassifier(random_state=0).fit(train[0], train[1][:, i])
               .feature_importances_) for i in range(3)], axis=1)  # (codes, factors)

    def specificity(r):  # disentanglement_lib: 1 - entropy(row, base=cols), weighted rows
        p = r / r.sum(axis=1, keepdims=True)
        h = -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0), 1) / np.log(r.shape[1])
        return float(np.sum((1 - h) * r.sum(axis=1) / r.sum()))

    out = dci(*train, *test, seed=0)
    assert DCI_ESTIMATORS == GradientBoostingClassifier().n_estimators == 100
    assert out["dci_d"] == pytest.approx(specificity(importance), abs=1e-9)
    assert out["dci_c"] == pytest.approx(specificity(importance.T), abs=1e-9)
    assert out["dci_d"] != pytest.approx(dci(*train, *test, n_estimators=10)["dci_d"], abs=1e-3)


def test_dci_duplicated_latent_halves_completeness(codes, factors):
    out = dci(*split(codes["duplicated"], factors), importance="lasso")
    assert out["dci_d"] > 0.9
    assert out["dci_c"] < 0.9  # each factor spread over two dims


def test_dci_lasso_identity(codes, factors):
    out = dci(*split(codes["identity"], factors), importance="lasso")
    assert out["dci_d"] > 0.95 and out["dci_c"] > 0.95


# ----------------------------------------------------------------------------- SAP


def test_sap_continuous_identity_is_one(codes, factors):
    assert sap(*split(codes["identity"], factors), continuous_factors=True)["sap"] > 0.95


def test_sap_discrete_identity_reaches_one_minus_chance(codes, factors):
    # balanced accuracy of the right dim is ~1 and of any other dim ~1/K (chance)
    expected = np.mean([1 - 1 / k for k in LEVELS])
    assert sap(*split(codes["identity"], factors))["sap"] == pytest.approx(expected, abs=0.05)


@pytest.mark.parametrize("continuous", [False, True])
def test_sap_noise_constant_and_duplicated_are_zero(codes, factors, continuous):
    for name in ("noise", "constant", "duplicated"):
        assert sap(*split(codes[name], factors), continuous_factors=continuous)["sap"] < 0.05, name


# ----------------------------------------------------------------------------- FactorVAE / beta-VAE

FAST = {"n_train": 1000, "n_eval": 500, "batch_size": 32}


def test_factorvae_identity_noise_constant(codes, factors):
    assert factorvae_score(codes["identity"], factors, rng=0, **FAST)["factorvae"] > 0.97
    chance = 1 / len(LEVELS)
    assert factorvae_score(codes["noise"], factors, rng=0, **FAST)["factorvae"] < chance + 0.15
    const = factorvae_score(codes["constant"], factors, rng=0, **FAST)
    assert const["factorvae"] == 0.0 and const["factorvae_active_dims"] == 0.0


def test_factorvae_prunes_collapsed_dims(codes, factors):
    z = np.concatenate([codes["identity"], 1e-4 * codes["noise"]], axis=1)
    out = factorvae_score(z, factors, rng=0, **FAST)
    assert out["factorvae_active_dims"] == len(LEVELS)
    assert out["factorvae"] > 0.97


def test_factorvae_is_seeded(codes, factors):
    a = factorvae_score(codes["noise"], factors, rng=3, **FAST)
    b = factorvae_score(codes["noise"], factors, rng=3, **FAST)
    assert a == b
    assert factorvae_score(codes["noise"], factors, rng=4, **FAST) != a  # the seed is used


def test_betavae_identity_and_noise(codes, factors):
    assert betavae_score(codes["identity"], factors, rng=0, **FAST)["betavae"] > 0.97
    assert betavae_score(codes["noise"], factors, rng=0, **FAST)["betavae"] < 1 / len(LEVELS) + 0.15


def test_fixed_factor_scores_skip_single_valued_factors(codes, factors):
    f = np.concatenate([factors, np.full((N, 1), 7)], axis=1)
    assert factorvae_score(codes["identity"], f, rng=0, **FAST)["factorvae"] > 0.97
    assert betavae_score(codes["identity"], f, rng=0, **FAST)["betavae"] > 0.97


# ----------------------------------------------------------------------------- modularity / explicitness


def test_modularity_identity_and_duplicated_are_modular(codes, factors):
    for name in ("identity", "duplicated"):
        out = modularity_explicitness(*split(codes[name], factors))
        assert out["modularity"] > 0.95, name
        assert out["explicitness"] > 0.95, name


def test_modularity_of_a_dim_encoding_two_factors(factors):
    # z = 5 f0 + f1 is a bijection of (f0, f1): MI(z, f0) = H(f0), MI(z, f1) = H(f1), 0 elsewhere,
    # so modularity = 1 - H(f0)^2 / (H(f1)^2 (F - 1)); the 20 values fall in 20 distinct bins
    z = (5 * factors[:, 0] + factors[:, 1]).astype(float)[:, None]
    h = [-np.sum(p * np.log(p)) for p in (np.bincount(factors[:, i]) / N for i in (0, 1))]
    expected = 1 - h[0] ** 2 / (h[1] ** 2 * (len(LEVELS) - 1))
    got = modularity_explicitness(z, factors, z, factors)["modularity"]
    assert got == pytest.approx(expected, abs=0.01)


def test_explicitness_noise_and_constant_at_chance(codes, factors):
    for name in ("noise", "constant"):
        out = modularity_explicitness(*split(codes[name], factors))
        assert out["explicitness"] == pytest.approx(0.5, abs=0.05), name
    assert modularity_explicitness(*split(codes["constant"], factors))["modularity"] == 0.0


# ----------------------------------------------------------------------------- total correlation


def test_gaussian_tc_independent_dims_is_zero():
    z = np.random.default_rng(0).normal(size=(20000, 4)) * [1.0, 2.0, 0.1, 5.0]
    assert gaussian_total_correlation(z)["tc"] == pytest.approx(0.0, abs=5e-3)


@pytest.mark.parametrize("rho", [0.3, 0.8, -0.6])
def test_gaussian_tc_correlated_pair_matches_closed_form(rho):
    cov = [[1.0, rho], [rho, 1.0]]
    z = np.random.default_rng(0).multivariate_normal([0, 0], cov, size=50000)
    assert gaussian_total_correlation(z)["tc"] == pytest.approx(-0.5 * np.log(1 - rho**2), abs=0.01)


def test_gaussian_tc_ignores_constant_dims():
    z = np.random.default_rng(0).normal(size=(1000, 3))
    with_const = np.concatenate([z, np.full((1000, 2), 4.2)], axis=1)
    assert gaussian_total_correlation(with_const)["tc"] == pytest.approx(
        gaussian_total_correlation(z)["tc"]
    )
    assert gaussian_total_correlation(np.zeros((10, 3)))["tc"] == 0.0
