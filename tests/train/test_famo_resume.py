"""FAMO keeps state between steps (its logits, their Adam moments, the previous log-losses):
a run resumed after a crash trains exactly as one that never stopped."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from mtvae.config import resolve_config
from mtvae.data.shapes import load_shapes
from mtvae.runs import resume_run, train_run
from mtvae.train.trainer import Trainer


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
    run_a = train_run(config, tmp_path / "a", dataset=data)
    original, calls = Trainer._save_checkpoint, []

    def crash_on_second_save(self):
        calls.append(self.state.epoch)
        if len(calls) == 2:
            raise RuntimeError("simulated crash")
        original(self)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Trainer, "_save_checkpoint", crash_on_second_save)
        with pytest.raises(RuntimeError, match="simulated crash"):
            train_run(config, tmp_path / "b", dataset=data)
    run_b = resume_run(tmp_path / "b", dataset=data)
    a, b = load_file(run_a / "model.safetensors"), load_file(run_b / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    state = torch.load(run_a / "checkpoint/last.pt", weights_only=True)
    logits = state["weighting"]["logits"]
    assert logits.abs().sum() > 0  # the logits moved, so the resume had state to restore
