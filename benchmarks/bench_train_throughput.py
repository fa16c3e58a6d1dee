"""Training throughput: mtvae's trainer (VAE, MT-VAE with fixed weights) vs a bare PyTorch loop.

All contenders train the identical conv VAE body on the same `shapes` tensors with the same
batch size and optimizer; throughput counts training samples per second over one epoch,
measured in alternating rounds. Run: ``python benchmarks/bench_train_throughput.py``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from common import alternate, machine, summary
from mtvae.config import resolve_config
from mtvae.data.loader import InMemoryLoader
from mtvae.data.shapes import load_shapes
from mtvae.models.registry import build_model
from mtvae.train.trainer import Trainer

N_TRAIN, BATCH = 4096, 128


def _config(model: dict):
    return resolve_config({
        "data": {"n_train": N_TRAIN, "n_val": 128, "n_test": 128},
        "model": model,
        "train": {"epochs": 1, "batch_size": BATCH, "progress": False, "restore_best": False},
    })


def trainer_epoch(data, model_cfg: dict) -> float:
    """Samples/s of one epoch of the Trainer (training steps only, validation excluded)."""
    config = _config(model_cfg)
    torch.manual_seed(0)
    model = build_model(config.model, data.info)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(model, data, config, Path(tmp))
        start = time.perf_counter()
        trainer._train_epoch()
        return N_TRAIN / (time.perf_counter() - start)


def bare_epoch(data) -> float:
    """Samples/s of a hand-written loop over the same model, data, batch size and optimizer."""
    config = _config({"name": "vae"})
    torch.manual_seed(0)
    model = build_model(config.model, data.info).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = InMemoryLoader(data.train, BATCH, shuffle=True, generator=torch.Generator().manual_seed(1))
    start = time.perf_counter()
    for batch in loader:
        optimizer.zero_grad(set_to_none=True)
        model(batch).loss.backward()
        optimizer.step()
    return N_TRAIN / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "train.json")
    args = parser.parse_args()
    data = load_shapes(n_train=N_TRAIN, n_val=128, n_test=128)
    mtvae_model = {"name": "mtvae", "tasks": ["shape", "scale", "x", "y"], "latent_dim": 10,
                   "task_dim": 2}
    runs = alternate(
        {
            "bare loop (vae)": lambda: bare_epoch(data),
            "mtvae trainer (vae)": lambda: trainer_epoch(data, {"name": "vae"}),
            "mtvae trainer (mtvae, fixed weights)": lambda: trainer_epoch(data, mtvae_model),
        },
        args.repeats,
    )
    stats = {name: summary(values) for name, values in runs.items()}
    ref = stats["bare loop (vae)"]["median"]
    vae = stats["mtvae trainer (vae)"]["median"]
    record = {"benchmark": "training throughput", "n_train": N_TRAIN, "batch_size": BATCH,
              "model": "conv VAE 32x32 shapes, channels [32,32,64,64], hidden 256, latent 10",
              "samples_per_s": stats, "machine": machine()}
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print("### Training throughput (samples/s, one epoch of 4096 `shapes` images, batch 128, Adam)\n")
    print(f"Threads: {torch.get_num_threads()}; {args.repeats} alternating rounds.\n")
    print("| contender | median | min | max | vs bare loop | vs mtvae VAE |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, s in stats.items():
        print(f"| {name} | {s['median']:.0f} | {s['min']:.0f} | {s['max']:.0f} | "
              f"{s['median'] / ref:.3f} | {s['median'] / vae:.3f} |")


if __name__ == "__main__":
    main()
