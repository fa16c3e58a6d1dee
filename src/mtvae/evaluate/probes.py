"""Representation probes: how much a simple model can read a label off the codes.

Pure functions on arrays. Codes are standardized with statistics of the labelled training
points only (the probe sees nothing of the test set). ``budget`` caps the number of labelled
training points, for label-efficiency curves. ``kind`` is the task's
:class:`~mtvae.data.task_kinds.TaskKind` (``spec.task_kind``): a probe reads one value per
sample, so categorical, binary (two classes) and regression tasks are probed, and the kind
scores the predictions (:meth:`~mtvae.data.task_kinds.TaskKind.scores`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV, RidgeCV
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.preprocessing import StandardScaler

from mtvae.data.task_kinds import Categorical, TaskKind
from mtvae.evaluate.seeding import Seed, as_rng

CATEGORICAL = Categorical()  # the default kind: class labels, however many there are

_CS = (0.01, 0.1, 1.0, 10.0)  # a short grid: the probe should be cheap, not squeezed
_ALPHAS = tuple(np.logspace(-3, 3, 7))
_CV = 3


def _check_kind(kind: TaskKind) -> TaskKind:
    """``kind`` itself, when a probe can read it: a task kind with one value per sample."""
    if not isinstance(kind, TaskKind):
        raise TypeError(f"kind must be a TaskKind (e.g. spec.task_kind, or "
                        f"mtvae.data.task_kinds.task_kind('regression')), got {kind!r}")
    if not kind.scalar:
        raise ValueError(f"a probe reads one value per sample; a {kind.name} task has "
                         f"{kind.label_shape} labels")
    return kind


def budget_indices(
    y: np.ndarray, budget: int | None, kind: TaskKind, rng: Seed = None
) -> np.ndarray:
    """Indices of at most ``budget`` training points (all of them when budget is None or large).

    For a discrete kind one point of each class is taken first (while the budget allows),
    so a small budget still sees every class; the rest is uniform at random.
    """
    kind, n = _check_kind(kind), len(y)
    if budget is None or budget >= n:
        return np.arange(n)
    if budget < 1:
        raise ValueError(f"budget must be at least 1, got {budget}")
    order = as_rng(rng).permutation(n)
    if kind.discrete:
        _, first = np.unique(y[order], return_index=True)  # first occurrence of each class
        seeds = order[np.sort(first)][:budget]
        order = np.concatenate([seeds, order[~np.isin(order, seeds)]])
    return np.sort(order[:budget])


def _linear_model(y: np.ndarray, kind: TaskKind):
    if kind.continuous:
        return RidgeCV(alphas=_ALPHAS)  # efficient leave-one-out CV over alpha
    counts = np.unique(y, return_counts=True)[1]
    if counts.size < 2:  # one class seen: nothing to learn, predict it
        return DummyClassifier(strategy="most_frequent")
    if counts.min() < _CV:  # too few points per class for stratified CV folds
        return LogisticRegression(C=1.0, max_iter=500)
    return LogisticRegressionCV(
        Cs=list(_CS),
        cv=_CV,
        l1_ratios=(0.0,),
        scoring="accuracy",
        max_iter=200,
        use_legacy_attributes=False,
    )


def _knn_model(y: np.ndarray, kind: TaskKind, k: int):
    n_neighbors = min(k, len(y))
    if kind.continuous:
        return KNeighborsRegressor(n_neighbors=n_neighbors)
    return KNeighborsClassifier(n_neighbors=n_neighbors)


def _probe(make_model: Callable, train_codes, train_y, test_codes, test_y, kind, budget, rng):
    """Subsample to the budget, standardize on the used training points, fit, score."""
    kind = _check_kind(kind)
    train_y, test_y = np.asarray(train_y), np.asarray(test_y)
    idx = budget_indices(train_y, budget, kind, rng)
    scaler = StandardScaler().fit(np.asarray(train_codes, dtype=np.float64)[idx])
    x_train = scaler.transform(np.asarray(train_codes, dtype=np.float64)[idx])
    x_test = scaler.transform(np.asarray(test_codes, dtype=np.float64))
    y_fit, unscale = _standardized_targets(train_y[idx], kind)
    model = make_model(y_fit).fit(x_train, y_fit)
    return {**kind.scores(test_y, unscale(model.predict(x_test))), "n_train": float(len(idx))}


def _standardized_targets(y: np.ndarray, kind: TaskKind):
    """Regression targets z-scored for the fit, and the map back to the user's units.

    Ridge's alpha grid and k-NN are equivariant to shifting and scaling y in exact arithmetic;
    z-scoring keeps them so in floating point whatever the units (a target ~1e6 included).
    """
    if not kind.continuous:
        return y, lambda pred: pred
    mean, std = float(np.mean(y)), float(np.std(y))
    std = std if std > 1e-12 else 1.0
    return (y - mean) / std, lambda pred: pred * std + mean


def linear_probe(
    train_codes: np.ndarray,
    train_y: np.ndarray,
    test_codes: np.ndarray,
    test_y: np.ndarray,
    kind: TaskKind = CATEGORICAL,
    budget: int | None = None,
    rng: Seed = None,
) -> dict[str, float]:
    """Linear probe (the linear evaluation protocol of representation learning, e.g. Alain &
    Bengio 2016, "Understanding intermediate layers using linear classifier probes").

    Discrete kinds (categorical, binary): multinomial logistic regression with C chosen by
    3-fold CV over a short grid (plain C=1 when a class has fewer than 3 points); returns
    accuracy, balanced_accuracy. Regression: ridge with alpha chosen by leave-one-out CV;
    returns mae, r2. Both also return ``n_train``, the number of labelled points used.
    """
    return _probe(
        lambda y: _linear_model(y, kind),
        train_codes,
        train_y,
        test_codes,
        test_y,
        kind,
        budget,
        rng,
    )


def knn_probe(
    train_codes: np.ndarray,
    train_y: np.ndarray,
    test_codes: np.ndarray,
    test_y: np.ndarray,
    kind: TaskKind = CATEGORICAL,
    budget: int | None = None,
    rng: Seed = None,
    k: int = 5,
) -> dict[str, float]:
    """k-nearest-neighbour probe (k=5) on standardized codes: a non-linear, local read-out.
    Same arguments and keys as :func:`linear_probe`."""
    return _probe(
        lambda y: _knn_model(y, kind, k),
        train_codes,
        train_y,
        test_codes,
        test_y,
        kind,
        budget,
        rng,
    )


def leakage_matrix(
    blocks: dict[str, np.ndarray],
    targets: dict[str, tuple[np.ndarray, TaskKind]],
    test_fraction: float = 0.3,
    budget: int | None = None,
    rng: Seed = None,
) -> dict[str, dict[str, float]]:
    """How well each latent block predicts each task: ``{block: {task: score}}``.

    Score = the linear probe's ``kind.main_score`` on the test points (accuracy for a discrete
    task, R^2 for regression) of one random train/test split shared by all cells. In a well-separated multitask code the matrix is
    high on the block's own task and near chance elsewhere; off-diagonal mass is leakage.
    """
    n = {len(v) for v in blocks.values()} | {len(y) for y, _ in targets.values()}
    if len(n) != 1:
        raise ValueError(f"blocks and targets must have the same number of rows, got {sorted(n)}")
    rng = as_rng(rng)
    order = rng.permutation(n.pop())
    n_test = max(1, int(round(test_fraction * len(order))))
    test, train = order[:n_test], order[n_test:]
    out: dict[str, dict[str, float]] = {}
    for block, codes in blocks.items():
        codes = np.asarray(codes, dtype=np.float64).reshape(len(codes), -1)
        out[block] = {}
        for task, (y, kind) in targets.items():
            y = np.asarray(y)
            res = linear_probe(codes[train], y[train], codes[test], y[test], kind, budget, rng)
            out[block][task] = res[kind.main_score]
    return out
