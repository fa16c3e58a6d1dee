"""Second training stage of a VQ-VAE: fit the autoregressive prior on the training set's codes.

The trained VQ-VAE is frozen; every training image is encoded once into its code grid, and the
prior (``model.prior``) is fitted by maximum likelihood with Adam for ``model.prior.epochs``
epochs. The prior is re-initialised from ``seed`` first, so the stage is a deterministic
function of the VQ-VAE weights, the data and the config: running it in the same ``mtvae train``
run or later with ``--stage prior`` gives the same prior (on CPU). Records
``{"kind": "prior", ...}`` go to ``log.jsonl`` with steps counted on from the main training's
last step; finally ``model.safetensors`` is rewritten, with the trained prior, atomically.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from mtvae.data.dataset import Dataset
from mtvae.train.checkpoint import read_weights, save_weights
from mtvae.train.logger import RunLogger
from mtvae.train.progress import draws_bars

PRIOR_SEED_OFFSET = 2  # the main trainer's loader uses seed + 1


@torch.inference_mode()
def encode_all(model: nn.Module, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Code grids ``(N, H', W')`` of images ``(N, C, H, W)``, in evaluation mode, batched."""
    model.eval()
    device = next(model.parameters()).device
    return torch.cat([
        model.encode_codes(x[i : i + batch_size].to(device)) for i in range(0, len(x), batch_size)
    ])


@torch.no_grad()
def mean_nll(prior: nn.Module, codes: torch.Tensor, batch_size: int = 500) -> float:
    """Mean prior NLL per code grid in nats."""
    prior.eval()
    total = sum(float(prior.nll(codes[i : i + batch_size]).sum())
                for i in range(0, len(codes), batch_size))
    return total / max(len(codes), 1)


def reset_parameters(module: nn.Module, seed: int) -> None:
    """Re-initialise every submodule that can be, from ``seed`` (the global RNG is restored)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for sub in module.modules():
            if hasattr(sub, "reset_parameters"):
                sub.reset_parameters()


def train_prior(
    model: nn.Module,
    dataset: Dataset,
    config: Any,  # the run's RunConfig (seed, model.prior, train.progress, eval.batch_size)
    run_dir: str | Path,
    log: RunLogger,
    start_step: int = 0,
) -> dict[str, float]:
    """Fit ``model.prior`` on the codes of ``dataset.train``; return summary results.

    ``start_step`` is the main training's last step: prior records are numbered after it, and
    records of an earlier run of this stage (steps beyond it) are dropped from the log first.
    """
    options, prior = config.model.prior, model.prior
    started = time.perf_counter()
    codes = encode_all(model, dataset.train.x, config.eval.batch_size)  # (N, H', W')
    val_codes = encode_all(model, dataset.val.x, config.eval.batch_size)
    log.truncate_after(start_step)
    reset_parameters(prior, config.seed + PRIOR_SEED_OFFSET)
    optimizer = torch.optim.Adam(prior.parameters(), lr=options.lr)
    generator = torch.Generator().manual_seed(config.seed + PRIOR_SEED_OFFSET)
    n, bs = len(codes), options.batch_size
    steps_per_epoch = -(-n // bs)
    step, train_nll, val_nll = start_step, float("nan"), float("nan")
    bar = tqdm(total=options.epochs * steps_per_epoch, desc="prior",
               disable=not draws_bars(config.train.progress), leave=False, dynamic_ncols=True)
    for epoch in range(1, options.epochs + 1):
        prior.train()
        order = torch.randperm(n, generator=generator).to(codes.device)
        total = 0.0
        for start in range(0, n, bs):
            batch = codes[order[start : start + bs]]
            loss = prior.nll(batch).mean()  # nats per code grid
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
            step += 1
            bar.update()
        train_nll = total / n
        val_nll = mean_nll(prior, val_codes)
        bar.set_postfix({"nll": f"{train_nll:.4g}", "val_nll": f"{val_nll:.4g}"})
        log.log({"kind": "prior", "epoch": epoch, "step": step,
                 "prior/nll": train_nll, "prior/val_nll": val_nll})
        if config.train.progress and not draws_bars(True):
            print(f"prior epoch {epoch}/{options.epochs}: nll {train_nll:.4g}, val nll "
                  f"{val_nll:.4g}", file=sys.stderr, flush=True)
    bar.close()
    model.eval()
    _rewrite_weights(Path(run_dir) / "model.safetensors", model)
    return {
        "prior/nll": train_nll,
        "prior/val_nll": val_nll,
        "prior/epochs": options.epochs,
        "time/prior_s": time.perf_counter() - started,
    }


def _rewrite_weights(path: Path, model: nn.Module) -> None:
    """Write the model (now with its prior) over ``path``, keeping the file's metadata."""
    _, meta = read_weights(path)
    save_weights(path, model, meta)
