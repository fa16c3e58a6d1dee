"""Time the evaluation wrappers (probe, disent, leakage families) on 10,000 points x 10 dims.

Usage: python benchmarks/bench_evaluate.py [--n 10000] [--threads 1] [--out PATH]

Unlike bench_metrics.py, which calls the array functions, this goes through the same path as
``mtvae evaluate``: an EvalContext, the model's representation (here a synthetic "model" whose
posterior mean is the input itself, so no network cost is measured), the run's label masks,
the probe budgets, the disent halves and the leakage matrix. The codes are bench_metrics.py's
synthetic data: 5 factors, 5 code dims that each read mostly one factor, 5 noise dims; the
"MT-VAE" has 5 blocks of 2 dims. As in ``shapes``, the first factor is a categorical task and
the others regression tasks (level / (levels - 1)). ``n`` training points (for the probes) and
``n`` test points.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import nn
from torch.distributions import Normal

from bench_metrics import LEVELS, make_data
from common import machine
from mtvae.config import resolve_config
from mtvae.data.dataset import Dataset, Split
from mtvae.data.tasks import TaskSpec
from mtvae.evaluate import families
from mtvae.evaluate.runner import EvalContext


class CodesAsPosterior(nn.Module):
    """A stand-in model: its 'images' ``(N, 1, 1, L)`` are the codes, its posterior mean too."""

    def __init__(self, latent_dim: int, block_dim: int = 2) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))  # gives the module a device
        self.blocks = {
            f"block{k}": slice(k * block_dim, (k + 1) * block_dim)
            for k in range(latent_dim // block_dim)
        }

    def encode(self, x: torch.Tensor) -> Normal:
        loc = x.flatten(1)
        return Normal(loc, torch.ones_like(loc))


def make_split(n: int, rng: np.random.Generator) -> Split:
    """Codes as 1x1xL 'images', their tasks (shapes-like) and factors."""
    codes, factors = make_data(n, rng)
    x = torch.from_numpy(codes.astype(np.float32))[:, None, None, :]
    targets = {"factor0": torch.from_numpy(factors[:, 0])}
    for k in range(1, len(LEVELS)):
        targets[f"factor{k}"] = torch.from_numpy(
            (factors[:, k] / (LEVELS[k] - 1)).astype(np.float32)
        )
    return Split(x=x, targets=targets, factors=torch.from_numpy(factors))


def make_context(n: int) -> EvalContext:
    rng = np.random.default_rng(0)
    tasks = {"factor0": TaskSpec("factor0", "categorical", LEVELS[0])}
    tasks.update(
        {f"factor{k}": TaskSpec(f"factor{k}", "regression") for k in range(1, len(LEVELS))}
    )
    train, test = make_split(n, rng), make_split(n, rng)
    data = Dataset("synthetic", train, test.subset(slice(0, 100)), test, tasks)
    config = resolve_config({"model": {"name": "vae"}})
    model = CodesAsPosterior(train.x.shape[-1])
    return EvalContext(model, data, config, Path("unused"))


FAMILIES = {
    "probe": families.evaluate_probes,
    "disent": families.evaluate_disentanglement,
    "leakage": families.leakage_scores,  # the matrix without the heat map file
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000, help="training and test points")
    parser.add_argument("--threads", type=int, default=None, help="BLAS/OpenMP/torch threads")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "evaluate.json"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    ctx = make_context(args.n)
    seconds, values = {}, {}
    with threadpool_limits(limits=args.threads), torch.no_grad():
        for name, run in FAMILIES.items():
            start = time.perf_counter()
            values[name] = run(ctx)
            seconds[name] = time.perf_counter() - start
    total = sum(seconds.values())
    print(
        f"Wrappers of `mtvae evaluate` on {args.n} train + {args.n} test points, 10 dims, "
        f"5 factors (target: the suite under 60 s on 2 cores).\n"
    )
    print("| family | seconds |\n|---|---|")
    for name, value in [*seconds.items(), ("total", total)]:
        print(f"| {name} | {value:.2f} |")
    record = {"n_points": args.n, "latent_dim": 10, "threads": args.threads,
              "machine": machine(), "seconds": seconds, "total_seconds": total, "values": values}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nRaw numbers: `{args.out.name}`")


if __name__ == "__main__":
    main()
