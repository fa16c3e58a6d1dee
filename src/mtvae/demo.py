"""The main job until studies land: train, evaluate and sample a VAE on the shapes data."""

from __future__ import annotations

from pathlib import Path

from mtvae.config import resolve_config
from mtvae.evaluate.runner import evaluate_run, format_table
from mtvae.runs import train_run
from mtvae.sampling import sample_to_png

DEMO_CONFIG = {
    "seed": 0,
    "data": {"source": "shapes", "n_train": 20000},
    "model": {"name": "vae", "latent_dim": 10},
    "train": {"epochs": 10, "batch_size": 128, "lr": 1e-3},
}


def run_demo(out: Path) -> None:
    """Train + evaluate + sample into ``out`` (replacing an earlier demo there)."""
    config = resolve_config(DEMO_CONFIG)
    run_dir = train_run(config, out, overwrite=True)
    results = evaluate_run(run_dir)
    samples = sample_to_png(run_dir, 64, run_dir / "figures/samples.png")
    print(format_table(results))
    print(f"\nrun directory:   {run_dir}")
    print(f"results:         {run_dir / 'results.json'}")
    print(f"reconstructions: {run_dir / 'figures/reconstructions.png'}")
    print(f"samples:         {samples}")
