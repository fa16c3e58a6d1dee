"""Fair baselines: under the same train settings, the supervised baseline's heads, the MT-VAE's
and M2's classifier see exactly the same labelled samples, as many times as the loader says:
``n_labelled + labelled_per_batch * batches`` per epoch."""

from __future__ import annotations

import math

import pytest
import torch

import mtvae.models.m2
import mtvae.objectives.task_losses
from mtvae.config import resolve_config
from mtvae.pipeline import train_run

N_TRAIN, BATCH, EPOCHS, N_LABELLED = 192, 64, 2, 24


@pytest.mark.parametrize("extra", [0, 16])
def test_models_with_heads_see_their_labels_equally_often(monkeypatch, tmp_path, extra):
    seen: dict[str, list[torch.Tensor]] = {}
    for module in (mtvae.objectives.task_losses, mtvae.models.m2):  # every model's task loss
        monkeypatch.setattr(module, "masked_task_loss", _counting(module.masked_task_loss, seen))
    for name in ("supervised", "mtvae", "m2"):
        seen[name] = []
        seen["training"] = seen[name]
        config = resolve_config({
            "data": {"n_train": N_TRAIN, "n_val": 32, "n_test": 32, "image_size": 16,
                     "n_labelled": {"shape": N_LABELLED}},
            "model": {"name": name, "tasks": ["shape"], "latent_dim": 4,
                      "encoder": {"arch": "mlp", "hidden": [16]}},
            "train": {"epochs": EPOCHS, "batch_size": BATCH, "labelled_per_batch": extra,
                      "progress": False},
        })
        train_run(config, tmp_path / f"{name}-{extra}")
    batches = math.ceil(N_TRAIN / BATCH)
    per_epoch = N_LABELLED + extra * batches
    del seen["training"]
    for name, counts in seen.items():
        assert sum(len(c) for c in counts) == EPOCHS * per_epoch, name
    assert torch.equal(torch.cat(seen["supervised"]), torch.cat(seen["mtvae"]))  # same samples
    assert torch.equal(torch.cat(seen["supervised"]), torch.cat(seen["m2"]))


def _counting(real, seen):
    """Wrap a task loss: record, per training step, the labels it is given, in
    ``seen["training"]`` (the list of the model being trained)."""
    def wrapper(task, output, target, mask):
        if torch.is_grad_enabled():  # training steps; validation runs without gradients
            seen["training"].append(target[mask].clone())
        return real(task, output, target, mask)
    return wrapper
