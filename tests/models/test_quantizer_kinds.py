"""Every quantizer kind through the CLI in both VQ models: train (with the prior stage),
evaluate (codebook metrics over the kind's codes), sample, load; exact resume with FSQ; and the
state-dict keys, which for the default VQ are those of run directories written before."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file

import mtvae
from helpers_runs import crashed_and_resumed
from mtvae.cli import main
from mtvae.config import resolve_config
from mtvae.data.dataset import DataInfo
from mtvae.data.shapes import load_shapes
from mtvae.latent.fsq import FiniteScalarQuantizer
from mtvae.latent.vq import VectorQuantizer
from mtvae.models.registry import build_model

SETTINGS = ["data.n_train=128", "data.n_val=32", "data.n_test=32", "data.image_size=16",
            "model.encoder.channels=[8,8]", "model.encoder.hidden=[8]",
            "model.prior.epochs=1", "model.prior.hidden=8", "model.prior.layers=2",
            "train.epochs=2", "train.batch_size=32", "train.progress=false", "eval.n_grid=4"]
KINDS = {  # kind -> (settings, number of codes, quantizer class)
    "fsq": (["model.quantizer.kind=fsq", "model.quantizer.levels=[4,3,2]"], 24,
            FiniteScalarQuantizer),
    "rotation": (["model.quantizer.num_codes=16", "model.quantizer.code_dim=4",
                  "model.quantizer.gradient=rotation"], 16, VectorQuantizer),
}
MODELS = {"vqvae": [], "mtvqvae": ["model.tasks=[shape]"]}
GRID = 4 * 4  # 16x16 images, two stride-2 layers


def sets(*groups: list[str]) -> list[str]:
    return [arg for group in groups for setting in group for arg in ("--set", setting)]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("kind", KINDS)
def test_train_evaluate_sample_and_load_through_the_cli(model, kind, tmp_path, capsys):
    settings, n_codes, cls = KINDS[kind]
    run = tmp_path / "run"
    argv = ["train", "--model", model, "--data", "shapes", "--out", str(run),
            *sets(SETTINGS, settings, MODELS[model])]
    assert main(argv) == 0, capsys.readouterr().err
    assert main(["evaluate", str(run)]) == 0, capsys.readouterr().err
    results = json.loads((run / "results.json").read_text())
    assert results["prior/epochs"] == 1
    assert 0 < results["vq/usage"] <= 1 and 1 <= results["vq/perplexity"] <= n_codes
    assert results["vq/dead"] == round(n_codes * (1 - results["vq/usage"]))
    assert results["nll/vq_bound_uniform"] == pytest.approx(
        results["vq/recon_nll"] + GRID * math.log(n_codes))
    if model == "mtvqvae":
        assert "task/shape/accuracy" in results
    assert main(["sample", str(run), "--n", "4", "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").is_file()
    loaded, config = mtvae.load(run)
    assert isinstance(loaded.quantizer, cls) and loaded.num_codes == n_codes
    written = (run / "config.yaml").read_text()
    assert ("kind: fsq" in written) == (kind == "fsq")
    assert ("gradient: rotation" in written) == (kind == "rotation")
    codes = loaded.encode_codes(torch.rand(3, 1, 16, 16))
    assert codes.shape == (3, 4, 4) and 0 <= int(codes.min()) and int(codes.max()) < n_codes


def test_resume_with_fsq_equals_an_uninterrupted_run(tmp_path):
    raw = {"data": {"n_train": 128, "n_val": 32, "n_test": 32, "image_size": 16},
           "model": {"name": "vqvae", "quantizer": {"kind": "fsq", "levels": [4, 3, 2]},
                     "encoder": {"channels": [8, 8], "hidden": [8]},
                     "prior": {"epochs": 1, "hidden": 8, "layers": 2}},
           "train": {"epochs": 3, "batch_size": 32, "progress": False, "restore_best": False}}
    config = resolve_config(raw)
    data = load_shapes(n_train=128, n_val=32, n_test=32, image_size=16)
    run_a, run_b = crashed_and_resumed(config, data, tmp_path)
    wa, wb = load_file(run_a / "model.safetensors"), load_file(run_b / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.parametrize("quantizer, keys", [
    ({}, {"codebook", "unused_steps", "initialized"}),  # as in every earlier run directory
    ({"ema": True}, {"codebook", "ema_count", "ema_sum", "unused_steps", "initialized"}),
    ({"gradient": "rotation"}, {"codebook", "unused_steps", "initialized"}),
    ({"kind": "fsq"}, set()),  # nothing learned
])
def test_quantizer_state_dict_keys(quantizer, keys):
    config = resolve_config({"model": {"name": "vqvae", "quantizer": quantizer}}).model
    model = build_model(config, DataInfo(image_shape=(1, 16, 16), tasks={}))
    got = {k.removeprefix("quantizer.") for k in model.state_dict() if k.startswith("quantizer.")}
    assert got == keys
