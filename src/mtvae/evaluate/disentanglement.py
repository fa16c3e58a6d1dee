"""Disentanglement metrics: pure functions on latent codes and ground-truth factors.

Every metric takes ``codes`` (N, L), the latent means as floats, and ``factors`` (N, F), the
ground-truth factor levels as integers, and returns a dict of floats. The definitions follow
the published papers and, where the papers leave a choice open, the reference implementation
in disentanglement_lib (Locatello et al. 2019).

Conventions shared by all metrics:

* a factor with a single value carries no information and is skipped; a metric with no factor
  left returns NaN, the one case where it is undefined;
* a constant code dimension scores 0 wherever the definition gives 0 (no NaN from 0/0);
* FactorVAE and beta-VAE scores need batches of data with one factor held fixed. The original
  protocol renders new observations for such batches; from a fixed sample of (codes, factors)
  we instead draw rows (with replacement) among those that share the fixed factor's value.
  For a dataset that covers the factor grid uniformly, this is the same distribution.

Why one module of over 400 lines: it is the ``disent`` family's, and a metric family is one
file (CONTRIBUTING.md, "Adding a metric"); each of its metrics is a pure function of a few
dozen lines with its helpers beside it.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from mtvae.evaluate.seeding import Seed, as_rng

# ----------------------------------------------------------------------------- helpers


def _check(codes: np.ndarray, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return float64 codes (N, L) and int factors (N, F), or raise a clear ValueError."""
    codes = np.asarray(codes, dtype=np.float64)
    factors = np.asarray(factors)
    if codes.ndim != 2 or factors.ndim != 2:
        raise ValueError(f"codes and factors must be 2-D, got {codes.shape} and {factors.shape}")
    if len(codes) != len(factors):
        raise ValueError(f"codes has {len(codes)} rows but factors has {len(factors)}")
    return codes, factors


def _informative(factors: np.ndarray) -> np.ndarray:
    """Indices of the factors that take more than one value."""
    keep = [k for k in range(factors.shape[1]) if np.unique(factors[:, k]).size > 1]
    return np.array(keep, dtype=np.int64)


def _encode_levels(factors: np.ndarray) -> np.ndarray:
    """Map each column's values to 0..K-1, so levels can index one-hot columns."""
    return np.stack([np.unique(col, return_inverse=True)[1] for col in factors.T], axis=1)


def _discretize(codes: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-width histogram bins over each column's range -> ints in [0, n_bins).

    Same binning as ``np.histogram(x, n_bins)`` (the max value falls into the last bin); a
    constant column lands in a single bin, so its mutual information is exactly 0.
    """
    lo, hi = codes.min(axis=0), codes.max(axis=0)
    width = np.where(hi > lo, (hi - lo) / n_bins, 1.0)
    return np.clip(np.floor((codes - lo) / width), 0, n_bins - 1).astype(np.int64)


def _one_hot(levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated one-hot encoding of (N, D) levels -> (N, sum K_d) and column offsets (D,)."""
    sizes = levels.max(axis=0) + 1
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    onehot = np.zeros((len(levels), int(sizes.sum())))
    onehot[np.arange(len(levels))[:, None], levels + offsets] = 1.0
    return onehot, offsets


def _discrete_mutual_info(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mutual information in nats between every column of ``a`` and of ``b`` -> (Da, Db).

    One matrix product gives the joint histogram of every pair of columns at once; the
    per-cell terms p log(p / (pa pb)) are then summed within each (column, column) block.
    """
    oh_a, off_a = _one_hot(a)
    oh_b, off_b = _one_hot(b)
    joint = oh_a.T @ oh_b / len(a)  # (sum Ka, sum Kb)
    outer = oh_a.mean(axis=0)[:, None] * oh_b.mean(axis=0)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(joint > 0, joint * np.log(joint / outer), 0.0)
    return np.add.reduceat(np.add.reduceat(terms, off_a, axis=0), off_b, axis=1)


def _discrete_entropy(levels: np.ndarray) -> np.ndarray:
    """Entropy in nats of each column of (N, D) integer levels -> (D,)."""
    out = np.empty(levels.shape[1])
    for d, col in enumerate(levels.T):
        p = np.bincount(col) / len(col)
        p = p[p > 0]
        out[d] = -np.sum(p * np.log(p))
    return out


def _top_two_gap(scores: np.ndarray) -> np.ndarray:
    """Per column of (L, F) scores: best minus second best (second is 0 when L == 1)."""
    ordered = np.sort(scores, axis=0)[::-1]
    second = ordered[1] if len(ordered) > 1 else np.zeros(ordered.shape[1])
    return ordered[0] - second


# ----------------------------------------------------------------------------- MIG


def mig(codes: np.ndarray, factors: np.ndarray, n_bins: int = 20) -> dict[str, float]:
    """Mutual Information Gap (Chen et al. 2018, "Isolating Sources of Disentanglement in VAEs").

    Each code dimension is discretized into ``n_bins`` equal-width bins; for each factor, the
    gap in mutual information between its two most informative dimensions, divided by the
    factor's entropy, is averaged over factors.
    """
    codes, factors = _check(codes, factors)
    keep = _informative(factors)
    if keep.size == 0:
        return {"mig": float("nan")}
    levels = _encode_levels(factors[:, keep])
    mi = _discrete_mutual_info(_discretize(codes, n_bins), levels)  # (L, F)
    return {"mig": float(np.mean(_top_two_gap(mi) / _discrete_entropy(levels)))}


# ----------------------------------------------------------------------------- DCI


def _normalized_entropy(p: np.ndarray, base: int) -> np.ndarray:
    """Entropy of each row of ``p`` (rows sum to 1 or are all 0), in log base ``base``."""
    if base < 2:  # a distribution over one outcome has no uncertainty
        return np.zeros(len(p))
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return -terms.sum(axis=1) / np.log(base)


def _weighted_specificity(r: np.ndarray) -> float:
    """sum_i w_i (1 - H_base(P_i.)) with w_i the share of total importance in row i."""
    total = r.sum()
    if total <= 0:  # nothing is predictive: no row is specific to anything
        return 0.0
    rows = r.sum(axis=1)
    p = np.divide(r, rows[:, None], out=np.zeros_like(r), where=rows[:, None] > 0)
    return float(np.sum(rows / total * (1.0 - _normalized_entropy(p, r.shape[1]))))


def dci_from_importance(importance: np.ndarray) -> dict[str, float]:
    """Disentanglement and completeness from an importance matrix R (L codes x F factors).

    Eastwood & Williams 2018, "A Framework for the Quantitative Evaluation of Disentangled
    Representations": D = sum_i rho_i (1 - H_F(P_i.)), with P_i. row i normalised and rho_i row
    i's share of total importance; C is the same on the transpose (base L).
    """
    r = np.abs(np.asarray(importance, dtype=np.float64))
    return {"dci_d": _weighted_specificity(r), "dci_c": _weighted_specificity(r.T)}


# disentanglement_lib's DCI fits sklearn's GradientBoostingClassifier with its defaults: 100
# estimators (depth 3, learning rate 0.1). Fewer trees concentrate the importance on the first
# splits' dimensions and inflate D (with 10, D rose by 0.08 on a shapes VAE's codes and about
# 0.25 on others), so the published number of trees is the only one used.
DCI_ESTIMATORS = 100


# The importance models DCI may fit, by the name ``importance`` takes: (n_estimators, seed) ->
# an unfitted sklearn estimator.
IMPORTANCE_MODELS = {
    # disentanglement_lib's choice; impurity-based feature_importances_
    "gbt": lambda n_estimators, seed: GradientBoostingClassifier(n_estimators=n_estimators,
                                                                 random_state=seed),
    # Eastwood & Williams' linear variant: L1-penalised, scaled inputs
    "lasso": lambda n_estimators, seed: make_pipeline(
        StandardScaler(),
        LogisticRegression(l1_ratio=1.0, C=0.1, solver="saga", tol=1e-3, max_iter=500),
    ),
}


def _importance_model(kind: str, n_estimators: int, seed: int):
    if kind not in IMPORTANCE_MODELS:
        raise ValueError(f"importance must be one of {sorted(IMPORTANCE_MODELS)}, got {kind!r}")
    return IMPORTANCE_MODELS[kind](n_estimators, seed)


def _feature_importance(model) -> np.ndarray:
    if isinstance(model, GradientBoostingClassifier):
        return model.feature_importances_
    return np.abs(model[-1].coef_).sum(axis=0)  # (classes or 1, L) -> (L,)


def dci_importance(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    importance: Literal["gbt", "lasso"] = "gbt",
    n_estimators: int = DCI_ESTIMATORS,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Importance matrix (L, F') and train/test accuracies (F',) over informative factors.

    One classifier per factor predicts its level from all codes: gradient-boosted trees with
    disentanglement_lib's 100 estimators (``DCI_ESTIMATORS``; fewer only for tests of the
    arithmetic, never for reported numbers).
    """
    codes_train, factors_train = _check(codes_train, factors_train)
    codes_test, factors_test = _check(codes_test, factors_test)
    keep = _informative(factors_train)
    r = np.zeros((codes_train.shape[1], keep.size))
    acc_train, acc_test = np.zeros(keep.size), np.zeros(keep.size)
    for j, k in enumerate(keep):
        model = _importance_model(importance, n_estimators, seed)
        model.fit(codes_train, factors_train[:, k])
        r[:, j] = _feature_importance(model)
        acc_train[j] = np.mean(model.predict(codes_train) == factors_train[:, k])
        acc_test[j] = np.mean(model.predict(codes_test) == factors_test[:, k])
    return r, acc_train, acc_test


def dci(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    importance: Literal["gbt", "lasso"] = "gbt",
    n_estimators: int = DCI_ESTIMATORS,
    seed: int = 0,
) -> dict[str, float]:
    """DCI disentanglement, completeness and informativeness (Eastwood & Williams 2018).

    Informativeness is the mean test accuracy of the per-factor classifiers (as in
    disentanglement_lib); ``dci_i_train`` is the same on the training points.
    """
    r, acc_train, acc_test = dci_importance(
        codes_train, factors_train, codes_test, factors_test, importance, n_estimators, seed
    )
    if r.shape[1] == 0:
        return {k: float("nan") for k in ("dci_d", "dci_c", "dci_i", "dci_i_train")}
    return {
        **dci_from_importance(r),
        "dci_i": float(acc_test.mean()),
        "dci_i_train": float(acc_train.mean()),
    }


# ----------------------------------------------------------------------------- SAP


def _r2_matrix(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Squared correlation of every code dim with every factor -> (L, F); 0 for constant dims."""
    zc = codes - codes.mean(axis=0)
    fc = factors - factors.mean(axis=0)
    cov = zc.T @ fc / len(codes)
    var_z, var_f = (zc**2).mean(axis=0), (fc**2).mean(axis=0)
    denom = var_z[:, None] * var_f[None, :]
    # disentanglement_lib zeroes dims with variance below 1e-12 rather than dividing by ~0
    return np.where(var_z[:, None] > 1e-12, cov**2 / np.where(denom > 0, denom, 1.0), 0.0)


def _threshold_accuracy(x_train, y_train, x_test, y_test) -> float:
    """Balanced test accuracy of a 1-D classifier with at most K-1 thresholds on one dim."""
    n_levels = np.unique(y_train).size
    tree = DecisionTreeClassifier(max_leaf_nodes=n_levels, class_weight="balanced", random_state=0)
    tree.fit(x_train[:, None], y_train)
    return balanced_accuracy_score(y_test, tree.predict(x_test[:, None]))


def sap(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    continuous_factors: bool = False,
) -> dict[str, float]:
    """Separated Attribute Predictability (Kumar et al. 2018, "Variational Inference of
    Disentangled Latent Concepts from Unlabeled Observations").

    Score matrix S (L, F) of predicting each factor from each single code dim; SAP is the mean
    over factors of the gap between the two best dims. For discrete factors S is the balanced
    test accuracy of a threshold classifier on the single dim (Kumar et al.'s single threshold,
    with K-1 thresholds for K levels: disentanglement_lib's one-vs-rest LinearSVC cannot isolate
    middle levels of an ordinal factor on one dim). Its chance level is 1/K, so a perfect code
    scores about 1 - 1/K. With ``continuous_factors`` S is the R^2 of a linear fit on the
    training points, and a perfect code scores about 1.
    """
    codes_train, factors_train = _check(codes_train, factors_train)
    codes_test, factors_test = _check(codes_test, factors_test)
    keep = _informative(factors_train)
    if keep.size == 0:
        return {"sap": float("nan")}
    if continuous_factors:
        scores = _r2_matrix(codes_train, factors_train[:, keep].astype(np.float64))
    else:
        scores = np.zeros((codes_train.shape[1], keep.size))  # (L, F')
        for i in range(codes_train.shape[1]):
            for j, k in enumerate(keep):
                scores[i, j] = _threshold_accuracy(
                    codes_train[:, i], factors_train[:, k], codes_test[:, i], factors_test[:, k]
                )
    return {"sap": float(np.mean(_top_two_gap(scores)))}


# ----------------------------------------------------------------------------- fixed-factor batches


def _usable(factors: np.ndarray) -> np.ndarray:
    """Factors with more than one value and at least one value shared by two or more rows."""
    counts = [np.unique(col, return_counts=True)[1] for col in factors.T]
    return np.array([k for k, c in enumerate(counts) if c.size > 1 and c.max() > 1], dtype=np.int64)


def _sample_same_value(column: np.ndarray, n_sets: int, set_size: int, rng) -> np.ndarray:
    """(n_sets, set_size) row indices; the rows of each set share one value of ``column``.

    A set's value is that of a random row (values with a single row excluded, as a set of
    copies of one row has zero variance), then its rows are drawn with replacement among the
    rows holding that value.
    """
    order = np.argsort(column, kind="stable")
    _, starts, counts = np.unique(column[order], return_index=True, return_counts=True)
    weight = np.where(counts > 1, counts, 0).astype(np.float64)
    group = rng.choice(len(counts), size=n_sets, p=weight / weight.sum())
    offset = (rng.random((n_sets, set_size)) * counts[group][:, None]).astype(np.int64)
    return order[starts[group][:, None] + offset]


# ----------------------------------------------------------------------------- FactorVAE


def _factorvae_votes(codes, factors, usable, scale, n_votes, batch_size, rng) -> np.ndarray:
    """Votes (F, L'): how often fixing factor k made dim j the least variable (scaled) dim."""
    votes = np.zeros((factors.shape[1], codes.shape[1]), dtype=np.int64)
    fixed = rng.choice(usable, size=n_votes)
    for k in usable:
        idx = _sample_same_value(factors[:, k], int(np.sum(fixed == k)), batch_size, rng)
        local_var = (codes[idx] / scale).var(axis=1, ddof=1)  # (n_k, L')
        votes[k] += np.bincount(local_var.argmin(axis=1), minlength=codes.shape[1])
    return votes


def factorvae_score(
    codes: np.ndarray,
    factors: np.ndarray,
    rng: Seed = None,
    n_train: int = 10000,
    n_eval: int = 5000,
    batch_size: int = 64,
    prune_threshold: float = 0.05,
) -> dict[str, float]:
    """FactorVAE score (Kim & Mnih 2018, "Disentangling by Factorising").

    Codes are divided by their std over all points; dims with std below ``prune_threshold``
    (collapsed dims, whose ratio would be noise) are dropped. Each vote fixes a random factor,
    draws a batch sharing its value (see the module note) and records the dim of least scaled
    variance. A majority-vote classifier dim -> factor is fitted on ``n_train`` votes and its
    accuracy on ``n_eval`` fresh votes is the score.
    """
    codes, factors = _check(codes, factors)
    rng = as_rng(rng)
    usable = _usable(factors)
    std = codes.std(axis=0, ddof=1)
    active = std >= prune_threshold
    if usable.size == 0:
        return {
            "factorvae": float("nan"),
            "factorvae_train": float("nan"),
            "factorvae_active_dims": 0.0,
        }
    if not active.any():  # everything collapsed: as in disentanglement_lib, score 0
        return {"factorvae": 0.0, "factorvae_train": 0.0, "factorvae_active_dims": 0.0}
    args = (codes[:, active], factors, usable, std[active])
    train = _factorvae_votes(*args, n_train, batch_size, rng)
    test = _factorvae_votes(*args, n_eval, batch_size, rng)
    classifier = train.argmax(axis=0)  # (L',) factor predicted for each dim
    dims = np.arange(train.shape[1])
    return {
        "factorvae": float(test[classifier, dims].sum() / test.sum()),
        "factorvae_train": float(train[classifier, dims].sum() / train.sum()),
        "factorvae_active_dims": float(active.sum()),
    }


# ----------------------------------------------------------------------------- beta-VAE


def _betavae_features(codes, factors, usable, n_points, batch_size, rng):
    """Features (n, L): mean |z1 - z2| over a batch of pairs sharing a fixed factor's value."""
    labels = rng.choice(usable, size=n_points)
    feats = np.empty((n_points, codes.shape[1]))
    for k in usable:
        rows = labels == k
        pairs = _sample_same_value(factors[:, k], int(rows.sum()) * batch_size, 2, rng)
        pairs = pairs.reshape(-1, batch_size, 2)
        feats[rows] = np.abs(codes[pairs[..., 0]] - codes[pairs[..., 1]]).mean(axis=1)
    return feats, labels


def betavae_score(
    codes: np.ndarray,
    factors: np.ndarray,
    rng: Seed = None,
    n_train: int = 10000,
    n_eval: int = 5000,
    batch_size: int = 64,
) -> dict[str, float]:
    """beta-VAE score (Higgins et al. 2017, "beta-VAE: Learning Basic Visual Concepts with a
    Constrained Variational Framework").

    Each example fixes a random factor, draws ``batch_size`` pairs of points sharing its value
    (see the module note) and uses the mean absolute code difference as features; a logistic
    regression predicts which factor was fixed. Score = its accuracy on ``n_eval`` new examples.
    """
    codes, factors = _check(codes, factors)
    rng = as_rng(rng)
    usable = _usable(factors)
    if usable.size < 2:  # nothing to tell apart
        return {"betavae": float("nan"), "betavae_train": float("nan")}
    x_train, y_train = _betavae_features(codes, factors, usable, n_train, batch_size, rng)
    x_test, y_test = _betavae_features(codes, factors, usable, n_eval, batch_size, rng)
    # scaling only helps lbfgs converge; the classifier stays linear in the features
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(x_train, y_train)
    return {
        "betavae": float(model.score(x_test, y_test)),
        "betavae_train": float(model.score(x_train, y_train)),
    }


# ----------------------------------------------------------------------------- modularity


def _modularity(mi: np.ndarray) -> float:
    """Ridgeway & Mozer's modularity from an (L, F) mutual information matrix."""
    sq = mi**2
    top = sq.max(axis=1)
    if mi.shape[1] == 1:  # each dim can only be about the one factor
        return float(np.mean(np.where(top > 0, 1.0, 0.0)))
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = (sq.sum(axis=1) - top) / (top * (mi.shape[1] - 1))
    return float(np.mean(np.where(top > 0, 1.0 - delta, 0.0)))  # dims with no MI score 0


def _explicitness(x_train, y_train, x_test, y_test) -> tuple[float, float]:
    """Macro one-vs-rest ROC AUC of a logistic regression, on train and test points."""
    clf = LogisticRegression(max_iter=1000).fit(x_train, y_train)

    def auc(x, y):
        onehot = (y[:, None] == clf.classes_[None, :]).astype(int)
        ok = (onehot.min(axis=0) == 0) & (onehot.max(axis=0) == 1)  # classes seen both ways
        if not ok.any():  # e.g. a test split holding a single level: AUC undefined
            return float("nan")
        return roc_auc_score(onehot[:, ok], clf.predict_proba(x)[:, ok], average="macro")

    return auc(x_train, y_train), auc(x_test, y_test)


def modularity_explicitness(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    n_bins: int = 20,
) -> dict[str, float]:
    """Modularity and explicitness (Ridgeway & Mozer 2018, "Learning Deep Disentangled
    Embeddings with the F-Statistic Loss").

    Modularity: per code dim, 1 - (sum of squared MI with non-best factors) / (squared MI with
    the best factor x (F - 1)), averaged over dims (discretized codes, as for MIG). Explicitness:
    macro one-vs-rest ROC AUC of a per-factor logistic regression on standardized codes.
    """
    codes_train, factors_train = _check(codes_train, factors_train)
    codes_test, factors_test = _check(codes_test, factors_test)
    keep = _informative(factors_train)
    if keep.size == 0:
        return {
            "modularity": float("nan"),
            "explicitness": float("nan"),
            "explicitness_train": float("nan"),
        }
    mi = _discrete_mutual_info(
        _discretize(codes_train, n_bins), _encode_levels(factors_train[:, keep])
    )
    scaler = StandardScaler().fit(codes_train)
    x_train, x_test = scaler.transform(codes_train), scaler.transform(codes_test)
    aucs = np.array(
        [_explicitness(x_train, factors_train[:, k], x_test, factors_test[:, k]) for k in keep]
    )
    return {
        "modularity": _modularity(mi),
        "explicitness": float(aucs[:, 1].mean()),
        "explicitness_train": float(aucs[:, 0].mean()),
    }


# ----------------------------------------------------------------------------- total correlation


def gaussian_total_correlation(codes: np.ndarray) -> dict[str, float]:
    """Total correlation of a Gaussian with the empirical covariance of the codes (in nats).

    Locatello et al. 2019, "Challenging Common Assumptions in the Unsupervised Learning of
    Disentangled Representations": TC = 0.5 (sum_i log Sigma_ii - log det Sigma). Constant dims
    are independent of the rest and add 0, so they are dropped rather than giving log 0.
    Exactly dependent dims give +inf, the Gaussian TC of a singular covariance.
    """
    codes = np.asarray(codes, dtype=np.float64)
    var = codes.var(axis=0)
    keep = var > 1e-12 * max(var.max(initial=0.0), 1e-300)
    if keep.sum() < 2:
        return {"tc": 0.0}
    cov = np.atleast_2d(np.cov(codes[:, keep], rowvar=False))
    sign, logdet = np.linalg.slogdet(cov)
    if sign <= 0:
        return {"tc": float("inf")}
    return {"tc": float(0.5 * (np.sum(np.log(np.diag(cov))) - logdet))}
