"""Held-out regions (data.holdout) are evaluated apart, under ood/ keys."""

from mtvae.config import resolve_config
from mtvae.evaluate.runner import evaluate_run
from mtvae.runs import train_run


def test_holdout_split_gets_its_own_recon_and_task_metrics(tmp_path):
    config = resolve_config({
        "data": {"n_train": 96, "n_val": 16, "n_test": 64, "image_size": 16,
                 "holdout": "shapes:square-right"},
        "model": {"name": "mtvae", "latent_dim": 6, "tasks": ["shape", "x"],
                  "encoder": {"arch": "mlp", "hidden": [32]}},
        "train": {"epochs": 1, "batch_size": 32, "progress": False},
    })
    run = train_run(config, tmp_path / "run")
    results = evaluate_run(run, metrics="recon,task")
    for key in ("recon/mse", "task/shape/accuracy", "ood/recon/mse", "ood/recon/bce",
                "ood/task/shape/accuracy", "ood/task/x/mae"):
        assert key in results, key
    assert results["ood/task/x/mae"] >= 0 and 0 <= results["ood/task/shape/accuracy"] <= 1
