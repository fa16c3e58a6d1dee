"""Time the whole evaluation-metric suite on 10,000 points, 10 latent dims, 5 factors.

Usage: python benchmarks/bench_metrics.py [--n 10000] [--threads 1] [--out PATH]

``--threads`` caps the BLAS/OpenMP pools (threadpoolctl). On a small shared machine one
thread per process can be several times faster than the default, because OpenMP workers
spin-wait for cores that other processes hold.

The data are synthetic: 5 independent factors (3-10 levels); 5 code dims each read mostly one
factor (with some mixing and noise) and 5 dims are noise, so no metric sits at a trivial
extreme. DCI uses the published protocol of 10,000 train / 5,000 test points.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from mtvae.data.task_kinds import Categorical, Regression
from mtvae.evaluate import disentanglement as dis
from mtvae.evaluate import generation as gen
from mtvae.evaluate import probes

LEVELS = (3, 4, 6, 8, 10)
LATENT_DIM = 10


def make_data(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Factors (n, 5) and codes (n, 10): a noisy, slightly mixed copy of the factors + noise dims."""
    factors = np.stack([rng.integers(0, k, n) for k in LEVELS], axis=1)
    scaled = (factors - factors.mean(axis=0)) / factors.std(axis=0)
    mixing = np.eye(len(LEVELS)) + 0.2 * rng.normal(size=(len(LEVELS), len(LEVELS)))
    informative = scaled @ mixing + 0.3 * rng.normal(size=scaled.shape)
    noise = rng.normal(size=(n, LATENT_DIM - len(LEVELS)))
    return np.concatenate([informative, noise], axis=1), factors


def suite(n: int, rng: np.random.Generator) -> dict[str, Callable[[], dict]]:
    """Each metric as a zero-argument call on the same data."""
    z, f = make_data(n, rng)
    z_test, f_test = make_data(n // 2, rng)
    fake = z + 0.5 * rng.normal(size=z.shape)  # a "generator" that blurs the real codes
    predicted = np.where(rng.random(n) < 0.9, f[:, 0], 0)  # a classifier right ~90% of the time
    blocks = {f"block{k}": z[:, [k, len(LEVELS) + k]] for k in range(len(LEVELS))}
    targets = {f"factor{k}": (f[:, k], Categorical(LEVELS[k])) for k in range(len(LEVELS))}
    return {
        "mig": lambda: dis.mig(z, f),
        "dci": lambda: dis.dci(z, f, z_test, f_test),
        "sap": lambda: dis.sap(z, f, z_test, f_test),
        "factorvae": lambda: dis.factorvae_score(z, f, rng=0),
        "betavae": lambda: dis.betavae_score(z, f, rng=0),
        "modularity_explicitness": lambda: dis.modularity_explicitness(z, f, z_test, f_test),
        "gaussian_tc": lambda: dis.gaussian_total_correlation(z),
        "frechet_distance": lambda: gen.frechet_distance(z, fake),
        "kernel_distance": lambda: gen.kernel_distance(z, fake, rng=0),
        "precision_recall": lambda: gen.precision_recall(z, fake),
        "coherence": lambda: gen.coherence(predicted, f[:, 0]),
        "linear_probe": lambda: probes.linear_probe(z, f[:, 4], z_test, f_test[:, 4], rng=0),
        "linear_probe_regression": lambda: probes.linear_probe(
            z, f[:, 4].astype(float), z_test, f_test[:, 4].astype(float), kind=Regression()
        ),
        "knn_probe": lambda: probes.knn_probe(z, f[:, 4], z_test, f_test[:, 4], rng=0),
        "leakage_matrix": lambda: probes.leakage_matrix(blocks, targets, rng=0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000, help="number of points")
    parser.add_argument(
        "--threads", type=int, default=None, help="BLAS/OpenMP threads (default: library's)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "metrics.json"
    )
    args = parser.parse_args()

    seconds, values = {}, {}
    with threadpool_limits(limits=args.threads):
        for name, run in suite(args.n, np.random.default_rng(0)).items():
            start = time.perf_counter()
            values[name] = run()
            seconds[name] = time.perf_counter() - start
            print(f"{name:28s} {seconds[name]:7.2f} s")
    total = sum(seconds.values())
    print(f"{'total':28s} {total:7.2f} s")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "n_points": args.n,
        "latent_dim": LATENT_DIM,
        "n_factors": len(LEVELS),
        "threads": args.threads,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "seconds": seconds,
        "total_seconds": total,
        "values": values,
    }
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
