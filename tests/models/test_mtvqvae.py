"""Multitask VQ-VAE: heads on the quantised grid, masks, end to end through the run directory."""

import pytest
import torch

from mtvae.config import resolve_config
from mtvae.data.loader import InMemoryLoader
from mtvae.data.shapes import load_shapes
from mtvae.models.registry import build_model
from mtvae.pipeline import evaluate_run, train_run
from mtvae.run_directory import load

MODEL = {"name": "mtvqvae", "tasks": ["shape", "x"],
         "quantizer": {"num_codes": 16, "code_dim": 4},
         "encoder": {"channels": [8, 8], "hidden": [8]},
         "prior": {"epochs": 1, "hidden": 8, "layers": 2}}


@pytest.fixture(scope="module")
def data():
    return load_shapes(n_train=128, n_val=32, n_test=32, image_size=16)


def _model(data, **options):
    torch.manual_seed(0)
    return build_model(resolve_config({"model": {**MODEL, **options}}).model, data.info)


def test_forward_adds_masked_task_losses_to_the_vq_objective(data):
    model = _model(data)
    batch = next(iter(InMemoryLoader(data.train, 16)))
    out = model(batch)
    assert list(out.losses) == ["recon", "vq", "task/shape", "task/x"] == model.loss_names()
    assert torch.isclose(out.loss, sum(out.losses.values()))
    out.losses["task/shape"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())
    assert all(p.grad is None for p in model.decoder.parameters())  # tasks don't touch it


def test_unlabelled_samples_give_no_task_gradient(data):
    model = _model(data)
    batch = next(iter(InMemoryLoader(data.train, 8)))
    batch.masks["shape"] = torch.zeros(8, dtype=torch.bool)
    model(batch).losses["task/shape"].backward()
    assert all(p.grad is None or torch.all(p.grad == 0) for p in model.heads["shape"].parameters())


def test_train_evaluate_and_reload(tmp_path, data):
    config = resolve_config({
        "data": {"n_train": 128, "n_val": 32, "n_test": 32, "image_size": 16},
        "model": MODEL, "train": {"epochs": 1, "batch_size": 32, "progress": False},
        "eval": {"n_grid": 4},
    })
    run = train_run(config, tmp_path / "run", dataset=data)
    results = evaluate_run(run, "recon,task,vq", log=lambda _: None)
    for key in ["recon/mse", "task/shape/accuracy", "task/x/mae", "vq/perplexity",
                "nll/vq_bound"]:
        assert key in results
    model, _ = load(run)
    x = data.test.x[:4]
    assert model.predict(x)["shape"].shape == (4,)
    assert model.sample(2, generator=torch.Generator().manual_seed(0)).shape == (2, 1, 16, 16)
