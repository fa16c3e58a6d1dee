"""train.amp on the CPU: auto follows the CPU's native bfloat16; training autocasts, while
validation stays float32; config.yaml records what auto stood for."""

from __future__ import annotations

import pytest
import torch
import yaml

import mtvae.train.precision as precision
from mtvae.config import resolve_config
from mtvae.data.shapes import load_shapes
from mtvae.models.vae import VAE
from mtvae.pipeline import train_run

CPU = torch.device("cpu")


def make_config(amp):
    return resolve_config({
        "data": {"n_train": 64, "n_val": 32, "n_test": 32, "image_size": 16},
        "model": {"name": "vae", "latent_dim": 2, "encoder": {"arch": "mlp", "hidden": [16]}},
        "train": {"epochs": 1, "batch_size": 32, "device": "cpu", "progress": False,
                  "amp": amp},
    })


@pytest.mark.parametrize(("flags", "native"), [
    ("fpu sse avx512f avx512_bf16 avx512_vnni", True),
    ("fpu sse amx_bf16 amx_tile", True),
    ("fpu sse avx512f avx512bw", False),
])
def test_native_bf16_is_read_from_the_cpu_flags(tmp_path, flags, native):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: X\nflags\t\t: {flags}\n\n")
    assert precision.cpu_has_native_bf16(cpuinfo) is native


def test_no_cpuinfo_means_no_native_bf16(tmp_path):
    assert precision.cpu_has_native_bf16(tmp_path / "missing") is False


@pytest.mark.parametrize("native", [True, False])
def test_auto_is_on_exactly_where_bf16_is_native(monkeypatch, native):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    assert precision.resolve_amp("auto", CPU) is native
    assert precision.resolve_amp(True, CPU) is True and precision.resolve_amp(False, CPU) is False


@pytest.mark.parametrize("native", [True, False])
def test_training_autocasts_and_validation_stays_float32(tmp_path, monkeypatch, native):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    seen = []
    forward = VAE.forward

    def spy(self, batch, step=None):
        seen.append((self.training, torch.is_autocast_enabled("cpu"),
                     torch.get_autocast_dtype("cpu")))
        return forward(self, batch, step=step)

    monkeypatch.setattr(VAE, "forward", spy)
    data = load_shapes(n_train=64, n_val=32, n_test=32, image_size=16)
    run = train_run(make_config("auto"), tmp_path / "run", dataset=data)
    training = {(on, dtype) for is_training, on, dtype in seen if is_training}
    validation = {on for is_training, on, _ in seen if not is_training}
    assert {on for on, _ in training} == {native}
    if native:
        assert {dtype for _, dtype in training} == {torch.bfloat16}
    assert validation == {False}
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["amp"] is native
