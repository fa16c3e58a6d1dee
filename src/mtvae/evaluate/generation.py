"""Generation metrics: pure functions on feature arrays (N, d) of real and generated samples.

The features come from whatever embedding the caller chooses (an Inception net for images, a
pretrained classifier, or the data themselves for low-dimensional toy sets); these functions
only compare two clouds of points and return a dict of floats.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg

from mtvae.evaluate.seeding import Seed, as_rng


def _features(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (N, d), got shape {x.shape}")
    return x


def _sqrtm(a: np.ndarray) -> np.ndarray:
    """Matrix square root; NaN/inf or a singularity warning are reported as non-finite."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", linalg.LinAlgWarning)
        try:
            return linalg.sqrtm(a)
        except (linalg.LinAlgWarning, linalg.LinAlgError, ValueError):
            return np.full_like(a, np.nan)


def frechet_distance_from_stats(
    mu_a: np.ndarray, sigma_a: np.ndarray, mu_b: np.ndarray, sigma_b: np.ndarray, eps: float = 1e-6
) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2}), the Frechet (2-Wasserstein)
    distance between two Gaussians (Heusel et al. 2017, "GANs Trained by a Two Time-Scale
    Update Rule Converge to a Local Nash Equilibrium").

    As in the pytorch-fid reference: if the product is singular, ``eps * I`` is added to both
    covariances; a small imaginary part left by numerical error is dropped.
    """
    sigma_a, sigma_b = np.atleast_2d(sigma_a), np.atleast_2d(sigma_b)
    diff = np.atleast_1d(mu_a) - np.atleast_1d(mu_b)
    covmean = _sqrtm(sigma_a @ sigma_b)
    if not np.isfinite(covmean).all():
        offset = np.eye(len(sigma_a)) * eps
        covmean = linalg.sqrtm((sigma_a + offset) @ (sigma_b + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"sqrtm left an imaginary part of {np.abs(covmean.imag).max():.3g}")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma_a) + np.trace(sigma_b) - 2.0 * np.trace(covmean))


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> dict[str, float]:
    """Frechet distance between Gaussians fitted to two feature sets (FID on Inception
    features). Returns ``{"frechet_distance": ...}``."""
    a, b = _features(feats_a, "feats_a"), _features(feats_b, "feats_b")
    stats = [(x.mean(axis=0), np.cov(x, rowvar=False)) for x in (a, b)]
    return {"frechet_distance": frechet_distance_from_stats(*stats[0], *stats[1])}


def _cubic_kernel(x: np.ndarray, y: np.ndarray, d: int) -> np.ndarray:
    k = x @ y.T / d + 1.0
    return k * k * k  # much faster than k ** 3, which goes through the generic pow


def _polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3 (diagonals of K_xx, K_yy left out)."""
    m, d = x.shape
    k_xx, k_yy, k_xy = (_cubic_kernel(u, v, d) for u, v in ((x, x), (y, y), (x, y)))
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.mean())


def kernel_distance(
    feats_a: np.ndarray,
    feats_b: np.ndarray,
    n_subsets: int = 100,
    subset_size: int = 1000,
    rng: Seed = None,
) -> dict[str, float]:
    """Kernel Inception Distance (Binkowski et al. 2018, "Demystifying MMD GANs").

    Unbiased MMD^2 with the cubic polynomial kernel, averaged over ``n_subsets`` random subsets
    of ``subset_size`` points from each set (capped at the smaller set), which keeps the cost
    quadratic in the subset rather than the data. Returns ``{"kid": mean, "kid_std": std}``.
    """
    a, b = _features(feats_a, "feats_a"), _features(feats_b, "feats_b")
    rng = as_rng(rng)
    m = min(subset_size, len(a), len(b))
    if m < 2:
        raise ValueError("kernel_distance needs at least 2 points in each set")
    values = np.array(
        [
            _polynomial_mmd2(
                a[rng.choice(len(a), m, replace=False)], b[rng.choice(len(b), m, replace=False)]
            )
            for _ in range(n_subsets)
        ]
    )
    return {"kid": float(values.mean()), "kid_std": float(values.std())}


def _squared_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(len(x), len(y)) squared Euclidean distances, clipped at 0 against round-off.

    Built in place: the (batch, N) block is the whole cost, so no temporaries of its size.
    """
    d2 = x @ y.T
    d2 *= -2.0
    d2 += (x**2).sum(axis=1)[:, None]
    d2 += (y**2).sum(axis=1)[None, :]
    return np.maximum(d2, 0.0, out=d2)


def _knn_radii2(x: np.ndarray, k: int, batch_size: int) -> np.ndarray:
    """Squared distance from each point to its k-th nearest other point (N,)."""
    out = np.empty(len(x), dtype=x.dtype)
    for s in range(0, len(x), batch_size):
        d2 = _squared_distances(x[s : s + batch_size], x)
        # index 0 of the partition is the point itself (distance 0), so index k is the k-th neighbour
        out[s : s + batch_size] = np.partition(d2, k, axis=1)[:, k]
    return out


def _inside_manifold(
    queries: np.ndarray, ref: np.ndarray, radii2: np.ndarray, batch_size: int
) -> np.ndarray:
    """Whether each query lies within the k-NN ball of at least one reference point (N_q,)."""
    out = np.empty(len(queries), dtype=bool)
    for s in range(0, len(queries), batch_size):
        d2 = _squared_distances(queries[s : s + batch_size], ref)
        out[s : s + batch_size] = (d2 <= radii2[None, :]).any(axis=1)
    return out


def precision_recall(
    real: np.ndarray, fake: np.ndarray, k: int = 3, batch_size: int = 1024
) -> dict[str, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019, "Improved Precision and Recall
    Metric for Assessing Generative Models").

    Each set's manifold is the union of balls around its points reaching their k-th nearest
    neighbour. Precision = share of fake points inside the real manifold; recall = share of
    real points inside the fake manifold. Distances are computed in row batches so memory
    stays at ``batch_size x N``; they are computed in float32.
    """
    # float32 halves the memory traffic of the distance blocks (the reference code uses float16)
    real, fake = (
        _features(real, "real").astype(np.float32),
        _features(fake, "fake").astype(np.float32),
    )
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"precision_recall needs more than k={k} points in each set")
    real_r2, fake_r2 = _knn_radii2(real, k, batch_size), _knn_radii2(fake, k, batch_size)
    return {
        "precision": float(_inside_manifold(fake, real, real_r2, batch_size).mean()),
        "recall": float(_inside_manifold(real, fake, fake_r2, batch_size).mean()),
    }


def coherence(predicted_labels: np.ndarray, conditioned_labels: np.ndarray) -> dict[str, float]:
    """Share of generated samples whose predicted label matches the label they were generated
    from (conditional-generation coherence, e.g. Shi et al. 2019 for multimodal VAEs)."""
    pred, cond = np.asarray(predicted_labels), np.asarray(conditioned_labels)
    if pred.shape != cond.shape:
        raise ValueError(f"label arrays differ in shape: {pred.shape} vs {cond.shape}")
    return {"coherence": float(np.mean(pred == cond))}
