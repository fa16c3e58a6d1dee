"""One pass per run: a study expands its spec once; a study worker loads a run's dataset once
and trains, evaluates and collects artifacts from that copy; a run sharing the training (other
labels) loads its own."""

from __future__ import annotations

import pytest
import torch

import mtvae.data.sources as sources
import mtvae.runs as runs
import mtvae.study.expand
import mtvae.study.runner as runner
from mtvae.runconfig import resolve_config
from mtvae.study.runner import RunTask, execute
from mtvae.study.spec import parse_spec
from mtvae.study.study import run_study

BASE = {
    "data": {"source": "digits", "n_train": 96, "n_val": 32, "n_test": 32, "image_size": 16},
    "model": {"name": "vae", "latent_dim": 4, "encoder": {"arch": "mlp", "hidden": [16]}},
    "train": {"epochs": 1, "batch_size": 32, "progress": False},
    "eval": {"iwae_k": 2, "iwae_n": 8, "n_grid": 4, "probe_budgets": ["all"],
             "gen_samples": 16, "kid_subsets": 2},
}


def task(tmp_path, name: str, label_fraction: float, shared=()) -> RunTask:
    config = {**BASE, "data": {**BASE["data"], "label_fraction": label_fraction}}
    return RunTask(run_id=name, config=config, run_dir=str(tmp_path / name),
                   metrics="recon,probe,leakage", figures=True, shared=tuple(shared))


def counting(monkeypatch, module, name: str) -> list:
    """Replace ``module.name`` by a wrapper that records each call's arguments."""
    calls: list = []
    real = getattr(module, name)

    def wrapper(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return calls


@pytest.fixture
def loads(monkeypatch) -> list[str]:
    """The sources actually read (every load_dataset goes through _load_with_conditions)."""
    seen: list[str] = []
    real = sources._load_with_conditions

    def counting_loads(entry, cfg):
        seen.append(f"{cfg.source}:{cfg.label_fraction}")
        return real(entry, cfg)

    monkeypatch.setattr(sources, "_load_with_conditions", counting_loads)
    return seen


def test_a_study_run_loads_its_dataset_once_and_a_shared_run_once_more(tmp_path, loads):
    result = execute(task(tmp_path, "leader", 1.0, [task(tmp_path, "shared", 0.5)]))
    assert result["status"] == "done", result.get("error")
    assert result["shared"][0]["status"] == "done", result["shared"][0].get("error")
    # train + evaluate + artifacts of the leader, then the shared run's evaluation + artifacts
    assert loads == ["digits:1.0", "digits:0.5"]
    assert "figure:traversals" in result["artifacts"]  # artifacts read the same copy
    assert "figure:traversals" in result["shared"][0]["artifacts"]


@pytest.mark.parametrize("model", [
    {"name": "vae", "latent_dim": 4, "encoder": {"arch": "conv", "channels": [4, 8]}},
    {"name": "vqvae", "n_latents": 2, "encoder": {"arch": "mlp", "hidden": [16]},
     "quantizer": {"num_codes": 8, "code_dim": 2}, "prior": {"epochs": 1, "hidden": 8}},
], ids=["conv-vae", "vqvae-prior"])
def test_the_model_in_memory_evaluates_as_the_saved_one(tmp_path, model):
    config = resolve_config({**BASE, "model": model})
    trained = runs.train_in_memory(config, tmp_path / "run")
    assert not trained.model.training and next(trained.model.parameters()).device.type == "cpu"
    in_memory = runs.evaluate_run(trained, "recon,nll,vq,figures", log=lambda _: None)
    loaded, loaded_config = runs.load(tmp_path / "run")
    assert loaded_config == trained.config
    # equal to the saved weights, and left unchanged by its evaluation (a shared run's next)
    saved = loaded.state_dict()
    assert all(torch.equal(v, saved[k]) for k, v in trained.model.state_dict().items())
    assert runs.evaluate_run(tmp_path / "run", "recon,nll,vq,figures",
                             log=lambda _: None) == in_memory


class _Done:
    """A backend that runs nothing: every run is done at once (for counting the expansions)."""

    def __init__(self, workers: int, threads: int) -> None:
        pass

    def run(self, tasks, started):
        for t in tasks:
            started(t)
            yield {"run_id": t.run_id, "status": "done", "metrics": {"recon/mse": 0.1},
                   "shared": [{"run_id": s.run_id, "status": "done"} for s in t.shared]}


def test_a_study_expands_its_spec_once(tmp_path, monkeypatch):
    monkeypatch.setitem(runner.BACKENDS, "done", _Done)
    resolved = counting(monkeypatch, mtvae.study.expand, "resolve_config")  # per cell
    spec = parse_spec({"name": "once", "datasets": ["digits"], "base": {"data": BASE["data"]},
                       "variants": {"vae": {"model": "vae"}}, "seeds": [0, 1],
                       "metrics": ["recon"]})
    run_study(spec, tmp_path / "study", backend="done", log=lambda _: None)
    assert len(resolved) == 2  # parse_spec's expansion of the 2 cells, which the study reuses
    spec.seeds = [0, 1, 2]  # a changed spec is expanded anew
    run_study(spec, tmp_path / "more", backend="done", log=lambda _: None)
    assert len(resolved) == 2 + 3
