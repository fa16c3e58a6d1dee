"""The VQ-VAE: objective and gradients, codes and samples, epoch usage statistics, the prior
stage (in the run and as ``--stage prior``), save/load round trips including the prior, exact
resume, and the ``vq`` metric family."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import mtvae
import mtvae.pipeline
from mtvae.autoconf import resolve_auto
from mtvae.cli import main
from mtvae.config import resolve_config
from mtvae.data.dataset import DataInfo
from mtvae.data.loader import Batch
from mtvae.data.shapes import load_shapes
from mtvae.models.vqvae import VQVAE, VQVAEConfig
from mtvae.pipeline import evaluate_run, resume_run, train_run
from mtvae.train.checkpoint import META_KEY, read_weights
from mtvae.train.trainer import Trainer

K = 16  # codes
GRID = (4, 4)  # 16x16 images, two stride-2 layers
TINY_MODEL = {
    "quantizer": {"num_codes": K, "code_dim": 4, "kmeans_init": True},
    "encoder": {"channels": [8, 8], "hidden": [8]},
    "prior": {"epochs": 3, "hidden": 16, "layers": 2, "batch_size": 64, "lr": 3e-3},
}


@pytest.fixture(scope="module")
def data():
    return load_shapes(n_train=256, n_val=64, n_test=64, image_size=16)


def make_config(model: dict | None = None, **train):
    return resolve_config(
        {
            "data": {"n_train": 256, "n_val": 64, "n_test": 64, "image_size": 16},
            "model": {"name": "vqvae", **TINY_MODEL} | (model or {}),
            "train": {"epochs": 3, "batch_size": 64, "lr": 3e-3, "restore_best": False,
                      "device": "cpu", "progress": False, "log_every": 2} | train,
            "eval": {"batch_size": 64, "n_grid": 8},
        }
    )


def make_model(seed: int = 0, **fields) -> VQVAE:
    torch.manual_seed(seed)
    config = VQVAEConfig(**(TINY_MODEL | fields))
    return VQVAE(config, DataInfo(image_shape=(1, 16, 16), tasks={}))


def batch_of(x: torch.Tensor) -> Batch:
    return Batch(x=x, targets={}, masks={})


def records(run: Path, kind: str) -> list[dict]:
    lines = (run / "log.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def without_time(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "time_s"} for r in rows]


def weights_equal(a: Path, b: Path) -> bool:
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data):
    """A tiny run (VQ-VAE then prior), with the in-memory model the run fitted."""
    built = []
    build = mtvae.pipeline.build_model

    def spy(config, info):
        built.append(build(config, info))
        return built[-1]

    config = make_config()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(mtvae.pipeline, "build_model", spy)
        run = train_run(config, tmp_path_factory.mktemp("runs") / "vq", dataset=data)
    return run, config, built[0].eval()


# --- config and model -----------------------------------------------------------------------
def test_default_config_needs_no_latent_dim_and_gives_an_8x8_grid_for_32x32():
    config = resolve_config({"model": {"name": "vqvae", "encoder": {"activation": "silu"}}})
    model = VQVAE(config.model, DataInfo(image_shape=(1, 32, 32), tasks={}))
    assert model.grid_shape == (8, 8)  # overriding one body key keeps the VQ body defaults
    assert (model.num_codes, config.model.quantizer.code_dim) == (128, 16)
    assert model.second_stage == "prior"


@pytest.mark.parametrize("arch, grid", [("conv", GRID), ("mlp", (1, 5))])
def test_forward_backward_and_where_gradients_go(arch, grid):
    model = make_model(encoder={"arch": arch, "channels": [8, 8], "hidden": [8]}, n_latents=5)
    x = torch.rand(6, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    model.train()
    out = model(batch_of(x))
    assert set(out.losses) == set(model.loss_names()) == {"recon", "vq"}
    assert torch.allclose(out.loss, sum(out.losses.values()))
    assert {"recon", "vq", "vq/perplexity", "vq/used"} <= set(out.terms)
    assert out.latents["codes"].shape == (6, *grid)
    out.loss.backward()
    for part in (model.encoder, model.decoder):  # the straight-through estimator reaches both
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
    assert model.quantizer.codebook.grad.abs().sum() > 0  # the codebook loss
    assert all(p.grad is None for p in model.prior.parameters())  # a separate stage fits it
    codes = model.encode_codes(x)
    assert codes.shape == (6, *grid) and codes.dtype == torch.long
    assert 0 <= int(codes.min()) and int(codes.max()) < K


def test_encode_codes_are_the_forward_indices_and_change_no_state():
    model = make_model()
    x = torch.rand(8, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    codes = model.encode_codes(x)  # in training mode: still no k-means init, no counters
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    model.eval()
    assert torch.equal(codes, model(batch_of(x)).latents["codes"])
    params = model.decode_codes(codes)
    assert torch.equal(model.reconstruct(x), model.likelihood.mean(params))


@pytest.mark.parametrize("kind", ["pixelcnn", "uniform"])
def test_samples_are_images_in_the_unit_range_and_reproducible(kind):
    model = make_model(prior={"kind": kind, "hidden": 8, "layers": 2}).eval()
    draw = lambda: model.sample(5, generator=torch.Generator().manual_seed(3))  # noqa: E731
    images = draw()
    assert images.shape == (5, 1, 16, 16)
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    assert torch.equal(images, draw())
    assert not torch.equal(images, model.sample(5, generator=torch.Generator().manual_seed(4)))
    assert model.second_stage == ("prior" if kind == "pixelcnn" else None)


def test_epoch_terms_count_training_forwards_only_and_reset():
    model = make_model(quantizer={"num_codes": K, "code_dim": 4, "kmeans_init": True})
    x = torch.rand(16, 1, 16, 16, generator=torch.Generator().manual_seed(2))
    model.train()
    codes = model(batch_of(x)).latents["codes"]
    model.eval()
    model(batch_of(torch.rand(16, 1, 16, 16)))  # evaluation forwards are not counted
    stats = model.epoch_terms()
    used = len(codes.unique())
    assert stats["vq/epoch_usage"] == used / K
    assert stats["vq/epoch_dead"] == K - used
    assert 1.0 <= stats["vq/epoch_perplexity"] <= used
    assert model.epoch_terms()["vq/epoch_usage"] == 0.0  # reset by the first call


# --- training: both stages, round trips, resume -----------------------------------------------
def test_run_logs_epoch_usage_and_the_prior_beats_uniform_on_training_codes(trained, data):
    run, config, _ = trained
    epochs = records(run, "epoch")
    assert [r["epoch"] for r in epochs] == [1, 2, 3]
    for key in ("vq/epoch_usage", "vq/epoch_dead", "vq/epoch_perplexity", "vq/perplexity"):
        assert f"train/{key}" in epochs[-1]
    prior = records(run, "prior")
    assert [r["epoch"] for r in prior] == [1, 2, 3]
    assert prior[0]["step"] > epochs[-1]["step"]  # numbered after the main training
    assert prior[-1]["prior/nll"] < prior[0]["prior/nll"]
    results = json.loads((run / "results.json").read_text())
    assert results["prior/epochs"] == 3 and results["train/epochs"] == 3
    model, _ = mtvae.load(run)
    uniform_nll = math.prod(GRID) * math.log(K)
    with torch.no_grad():
        assert float(model.code_nll(data.train.x).mean()) < uniform_nll - 1.0


def test_load_round_trips_reconstructions_and_samples_with_the_prior(trained, data):
    run, config, fitted = trained
    model, loaded_config = mtvae.load(run)
    assert loaded_config.to_dict() == resolve_auto(config, data).to_dict()
    state = fitted.state_dict()
    assert any(k.startswith("prior.") for k in state)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    fresh = make_model(prior=TINY_MODEL["prior"])
    assert not torch.equal(fresh.prior.embed.weight, model.prior.embed.weight)  # it was trained
    x = data.test.x[:8]
    assert torch.equal(model.reconstruct(x), fitted.reconstruct(x))
    draw = lambda m: m.sample(4, generator=torch.Generator().manual_seed(7))  # noqa: E731
    assert torch.equal(draw(model), draw(fitted))


def test_resume_of_the_main_stage_equals_an_uninterrupted_run(trained, data, tmp_path):
    run_a, config, _ = trained
    original = Trainer._save_checkpoint
    calls = []

    def crash_on_second_save(self):
        calls.append(self.state.epoch)
        if len(calls) == 2:
            raise RuntimeError("simulated crash")
        original(self)

    run_b = tmp_path / "b"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Trainer, "_save_checkpoint", crash_on_second_save)
        with pytest.raises(RuntimeError, match="simulated crash"):
            train_run(config, run_b, dataset=data)
    resume_run(run_b, dataset=data)
    assert weights_equal(run_a, run_b)  # the VQ-VAE and the prior fitted after it
    assert without_time(records(run_b, "epoch")) == without_time(records(run_a, "epoch"))
    assert records(run_b, "prior") == records(run_a, "prior")


def test_stage_prior_refits_the_same_prior_without_duplicating_its_log(trained, tmp_path, capsys):
    run = Path(shutil.copytree(trained[0], tmp_path / "copy"))
    tensors, meta = read_weights(run / "model.safetensors")
    tensors = {k: torch.zeros_like(v) if k.startswith("prior.") else v for k, v in tensors.items()}
    save_file(tensors, str(run / "model.safetensors"), metadata={META_KEY: json.dumps(meta)})
    assert not weights_equal(trained[0], run)
    assert main(["train", "--resume", str(run), "--stage", "prior"]) == 0, capsys.readouterr()
    assert weights_equal(trained[0], run)  # deterministic: the same prior as in the first run
    assert records(run, "prior") == records(trained[0], "prior")
    assert records(run, "epoch") == records(trained[0], "epoch")


def user_error(capsys, *argv: str) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert err.startswith("mtvae: error: ") and "Traceback" not in err
    return err


def test_stage_errors_are_user_errors(trained, data, tmp_path, capsys):
    vae_config = resolve_config(
        {
            "data": {"n_train": 256, "n_val": 64, "n_test": 64, "image_size": 16},
            "model": {"name": "vae", "latent_dim": 2, "encoder": {"arch": "mlp", "hidden": [8]}},
            "train": {"epochs": 1, "batch_size": 128, "device": "cpu", "progress": False},
        }
    )
    vae_run = train_run(vae_config, tmp_path / "vae", dataset=data)
    capsys.readouterr()  # its warning that 1 epoch did not converge is not the error read below
    assert "no second stage" in user_error(capsys, "train", "--resume", str(vae_run), "--stage", "prior")
    assert "Did you mean 'prior'" in user_error(
        capsys, "train", "--resume", str(trained[0]), "--stage", "priors"
    )
    assert "--resume" in user_error(capsys, "train", "--model", "vqvae", "--stage", "prior")
    unfinished = Path(shutil.copytree(trained[0], tmp_path / "unfinished"))
    (unfinished / "results.json").unlink()
    (unfinished / "model.safetensors").unlink()
    err = user_error(capsys, "train", "--resume", str(unfinished), "--stage", "prior")
    assert "not finished" in err


# --- evaluation -------------------------------------------------------------------------------
def test_evaluate_writes_vq_metrics_and_skips_the_iwae_family(trained, tmp_path):
    run = Path(shutil.copytree(trained[0], tmp_path / "eval"))
    messages: list[str] = []
    results = evaluate_run(run, log=messages.append)
    assert any(m.startswith("skipped nll") and "log_weights" in m for m in messages)
    assert "nll/iwae" not in results and "recon/mse" in results
    assert 0 < results["vq/usage"] <= 1 and 1 <= results["vq/perplexity"] <= K
    assert results["vq/dead"] == round(K * (1 - results["vq/usage"]))
    uniform_nll = math.prod(GRID) * math.log(K)
    assert results["nll/vq_bound_uniform"] == pytest.approx(results["vq/recon_nll"] + uniform_nll)
    assert results["nll/vq_bound"] == pytest.approx(
        results["vq/recon_nll"] + results["vq/prior_nll"]
    )
    assert results["nll/vq_bound"] < results["nll/vq_bound_uniform"]  # the prior was learned
    stored = json.loads((run / "results.json").read_text())
    assert {"vq/perplexity", "vq/usage", "vq/dead", "nll/vq_bound"} <= set(stored)
    assert (run / "figures/samples.png").is_file()
    assert (run / "figures/reconstructions.png").is_file()


def test_the_prior_kinds_a_config_accepts_are_the_registered_ones():
    from typing import get_args

    from mtvae.models.vqvae import PRIORS, PriorOptions

    assert set(get_args(PriorOptions.model_fields["kind"].annotation)) == set(PRIORS)
    assert [k for k, kind in PRIORS.items() if kind.fitted] == ["pixelcnn"]  # a second stage
