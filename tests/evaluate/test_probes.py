"""Known-answer tests for the representation probes and the leakage matrix."""

from __future__ import annotations

import numpy as np
import pytest

from mtvae.data.task_kinds import Binary, Categorical, Multilabel, Regression
from mtvae.evaluate.probes import budget_indices, knn_probe, leakage_matrix, linear_probe

N_TRAIN, N_TEST = 1500, 500


def separable(rng, n_classes=4, dim=6, n=N_TRAIN + N_TEST):
    """Classes at well-separated centres along a random direction per class (linearly separable)."""
    y = rng.integers(0, n_classes, n)
    centers = 6.0 * rng.normal(size=(n_classes, dim))
    return centers[y] + 0.3 * rng.normal(size=(n, dim)), y


def parts(x, y):
    return x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:]


@pytest.mark.parametrize("probe", [linear_probe, knn_probe])
def test_probe_separable_codes_near_perfect(probe):
    x, y = separable(np.random.default_rng(0))
    out = probe(*parts(x, y), rng=0)
    assert out["accuracy"] > 0.98 and out["balanced_accuracy"] > 0.98
    assert out["n_train"] == N_TRAIN


@pytest.mark.parametrize("probe", [linear_probe, knn_probe])
def test_probe_random_codes_at_chance(probe):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(N_TRAIN + N_TEST, 6)), rng.integers(0, 4, N_TRAIN + N_TEST)
    assert probe(*parts(x, y), rng=0)["balanced_accuracy"] == pytest.approx(0.25, abs=0.07)


def test_ridge_probe_recovers_linear_target():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(N_TRAIN + N_TEST, 5))
    y = x @ np.array([1.0, -2.0, 0.5, 0.0, 3.0]) + 0.01 * rng.normal(size=len(x))
    out = linear_probe(*parts(x, y), kind=Regression())
    assert out["r2"] > 0.999 and out["mae"] < 0.05
    assert knn_probe(*parts(x, y), kind=Regression())["r2"] > 0.8


def test_binary_kind_is_scored_as_categorical():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(N_TRAIN + N_TEST, 3))
    y = (x[:, 0] > 0).astype(np.float32)  # 0/1 floats, as binary task targets are stored
    out = linear_probe(*parts(x, y), kind=Binary())
    assert out["accuracy"] > 0.97 and "balanced_accuracy" in out
    with pytest.raises(ValueError, match="one value per sample; a multilabel task has"):
        linear_probe(*parts(x, y), kind=Multilabel(3))


def test_a_kind_name_instead_of_a_kind_object_is_refused_with_the_fix():
    x, y = separable(np.random.default_rng(8))
    with pytest.raises(TypeError, match=r"must be a TaskKind .*task_kind\('regression'\)"):
        linear_probe(*parts(x, y), kind="regression")
    with pytest.raises(TypeError, match="must be a TaskKind"):
        budget_indices(y, 8, "categorical", rng=0)


def test_budget_limits_training_points_and_hurts_a_hard_problem():
    rng = np.random.default_rng(3)
    x, y = separable(rng, n_classes=5, dim=20)
    x = x + 8.0 * rng.normal(size=x.shape)  # heavy overlap: many labels are needed
    full = linear_probe(*parts(x, y), rng=0)
    small = linear_probe(*parts(x, y), budget=10, rng=0)
    assert small["n_train"] == 10 and full["n_train"] == N_TRAIN
    assert small["accuracy"] < full["accuracy"] - 0.1
    assert linear_probe(*parts(x, y), budget=10**6, rng=0)["n_train"] == N_TRAIN


def test_budget_indices_cover_every_class_and_are_seeded():
    y = np.repeat(np.arange(5), [1000, 10, 10, 10, 2])
    kind = Categorical(5)
    idx = budget_indices(y, 8, kind, rng=0)
    assert len(idx) == 8 and len(np.unique(idx)) == 8
    assert set(y[idx]) == set(range(5))
    assert np.array_equal(idx, budget_indices(y, 8, kind, rng=0))
    assert not np.array_equal(idx, budget_indices(y, 8, kind, rng=1))  # seed matters
    assert len(set(y[budget_indices(y, 3, kind, rng=0)])) == 3
    # a continuous kind has no classes to cover: a plain random subset
    assert len(set(y[budget_indices(y, 8, Regression(), rng=0)])) < 5


def test_tiny_budgets_do_not_crash():
    x, y = separable(np.random.default_rng(4))
    for budget in (1, 3, 5):
        assert linear_probe(*parts(x, y), budget=budget, rng=0)["n_train"] == budget
        assert knn_probe(*parts(x, y), budget=budget, rng=0)["n_train"] == budget


def test_leakage_matrix_is_diagonal_for_block_diagonal_code():
    rng = np.random.default_rng(5)
    n = 1200
    labels = {t: rng.integers(0, 3, n) for t in ("a", "b", "c")}
    # block t is a noisy one-hot of task t's label and nothing else
    blocks = {t: np.eye(3)[y] + 0.1 * rng.normal(size=(n, 3)) for t, y in labels.items()}
    targets = {t: (y, Categorical(3)) for t, y in labels.items()}
    m = leakage_matrix(blocks, targets, rng=0)
    for b in blocks:
        for t in targets:
            if b == t:
                assert m[b][t] > 0.98, (b, t)
            else:
                assert m[b][t] == pytest.approx(1 / 3, abs=0.08), (b, t)


def test_leakage_matrix_regression_cell_is_r2():
    rng = np.random.default_rng(6)
    z = rng.normal(size=(600, 2))
    m = leakage_matrix({"z": z}, {"sum": (z.sum(axis=1), Regression())}, rng=0)
    assert m["z"]["sum"] > 0.99
