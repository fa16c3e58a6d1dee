"""Known-answer tests for the generation metrics (Frechet distance, KID, precision/recall)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from mtvae.data.tasks import TaskSpec
from mtvae.evaluate.generation import (
    coherence,
    frechet_distance,
    frechet_distance_from_stats,
    kernel_distance,
    precision_recall,
)
from mtvae.evaluate.reference import reference_task


@pytest.fixture(scope="module")
def feats() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(2000, 8))


def test_frechet_distance_of_a_set_with_itself_is_zero(feats):
    assert frechet_distance(feats, feats)["frechet_distance"] == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_grows_with_shift(feats):
    other = np.random.default_rng(1).normal(size=feats.shape)
    values = [frechet_distance(feats, other + s)["frechet_distance"] for s in (0.0, 0.5, 1.0, 2.0)]
    assert np.all(np.diff(values) > 0)
    # the mean term of a shift s in all 8 dims is 8 s^2
    assert values[-1] == pytest.approx(8 * 2.0**2, rel=0.05)


def test_frechet_distance_from_stats_closed_form_for_diagonal_gaussians():
    mu_a, mu_b = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    var_a, var_b = np.array([1.0, 4.0, 0.25]), np.array([2.0, 1.0, 0.25])
    expected = np.sum((mu_a - mu_b) ** 2) + np.sum(var_a + var_b - 2 * np.sqrt(var_a * var_b))
    got = frechet_distance_from_stats(mu_a, np.diag(var_a), mu_b, np.diag(var_b))
    assert got == pytest.approx(expected)


def test_frechet_distance_from_samples_matches_closed_form():
    rng = np.random.default_rng(2)
    mu_a, mu_b = np.array([0.0, 1.0]), np.array([2.0, -1.0])
    std_a, std_b = np.array([1.0, 3.0]), np.array([2.0, 0.5])
    a = mu_a + std_a * rng.normal(size=(200000, 2))
    b = mu_b + std_b * rng.normal(size=(200000, 2))
    expected = np.sum((mu_a - mu_b) ** 2) + np.sum((std_a - std_b) ** 2)
    assert frechet_distance(a, b)["frechet_distance"] == pytest.approx(expected, rel=0.02)


def test_frechet_distance_survives_singular_covariance(feats):
    collapsed = feats.copy()
    collapsed[:, 0] = 0.0  # a dead feature makes the covariance singular
    value = frechet_distance(collapsed, feats)["frechet_distance"]
    assert np.isfinite(value) and value > 0.5  # the dead dim alone contributes ~1


def test_kernel_distance_same_distribution_is_zero_shift_is_not(feats):
    other = np.random.default_rng(1).normal(size=feats.shape)
    same = kernel_distance(feats, other, n_subsets=20, subset_size=500, rng=0)
    shifted = kernel_distance(feats, other + 1.0, n_subsets=20, subset_size=500, rng=0)
    assert abs(same["kid"]) < 3 * same["kid_std"] + 1e-3
    assert shifted["kid"] > 0.1 and shifted["kid"] > 10 * abs(same["kid"])


def test_precision_recall_identical_sets_are_one(feats):
    assert precision_recall(feats, feats.copy()) == {"precision": 1.0, "recall": 1.0}


def test_precision_recall_far_apart_sets_are_zero(feats):
    assert precision_recall(feats, feats + 100.0) == {"precision": 0.0, "recall": 0.0}


def test_precision_recall_mode_dropping_lowers_recall_not_precision():
    rng = np.random.default_rng(3)
    centers = np.array([[-10.0, 0.0], [10.0, 0.0]])
    real = centers[rng.integers(0, 2, 2000)] + rng.normal(size=(2000, 2))
    fake = centers[0] + rng.normal(size=(1000, 2))  # generator covers one of two modes
    out = precision_recall(real, fake)
    assert out["precision"] > 0.9
    assert out["recall"] == pytest.approx(0.5, abs=0.06)


def test_coherence_counts_matches():
    assert coherence(np.array([1, 2, 3, 4]), np.array([1, 2, 0, 4])) == {"coherence": 0.75}
    with pytest.raises(ValueError):
        coherence(np.zeros(3), np.zeros(4))


def test_the_reference_task_is_the_first_categorical_one():
    tasks = {"odd": TaskSpec("odd", "binary"), "size": TaskSpec("size", "regression"),
             "tags": TaskSpec("tags", "multilabel", 3), "digit": TaskSpec("digit", "categorical", 10),
             "shape": TaskSpec("shape", "categorical", 3)}
    data = SimpleNamespace(tasks=tasks)
    assert reference_task(data) == "digit"  # a binary task is not learned as classes here
    data.tasks = {k: v for k, v in tasks.items() if not v.task_kind.class_indices}
    assert reference_task(data) is None
