"""FAMO keeps state between steps (its logits, their Adam moments, the previous log-losses):
a run resumed after a crash trains exactly as one that never stopped."""

from __future__ import annotations

import torch
from safetensors.torch import load_file

from helpers_runs import crashed_and_resumed
from mtvae.config import resolve_config
from mtvae.data.shapes import load_shapes


def test_famo_run_resumed_after_a_crash_equals_an_uninterrupted_run(tmp_path):
    data = load_shapes(n_train=128, n_val=32, n_test=32, image_size=16)
    config = resolve_config({
        "data": {"n_train": 128, "n_val": 32, "n_test": 32, "image_size": 16},
        "model": {"name": "mtvae", "latent_dim": 6, "tasks": ["shape", "x"],
                  "encoder": {"arch": "mlp", "hidden": [32]},
                  "weighting": {"strategy": "famo"}},
        "train": {"epochs": 3, "batch_size": 32, "restore_best": False, "device": "cpu",
                  "progress": False},
    })
    run_a, run_b = crashed_and_resumed(config, data, tmp_path)
    a, b = load_file(run_a / "model.safetensors"), load_file(run_b / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    state = torch.load(run_a / "checkpoint/last.pt", weights_only=True)
    logits = state["weighting"]["logits"]
    assert logits.abs().sum() > 0  # the logits moved, so the resume had state to restore
