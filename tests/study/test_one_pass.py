"""One pass per run: a study expands its spec once; a worker resolves a run's config and loads
its dataset once, trains it and evaluates the model it holds in memory (no load back from its
files), and stores as artifacts the figures that evaluation wrote, computing none itself; a
run sharing the training (other labels) loads its own dataset and evaluates the same model."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest
import torch

import mtvae.data.sources as sources
import mtvae.evaluate.families as families
import mtvae.pipeline
import mtvae.run_directory
import mtvae.runconfig
import mtvae.study.expand
import mtvae.study.study
import mtvae.study.workers
from mtvae.cli import main
from mtvae.io import read_yaml
from mtvae.pipeline import evaluate_run, train_in_memory
from mtvae.run_directory import load, load_config
from mtvae.runconfig import resolve_config
from mtvae.study import artifacts
from mtvae.study.spec import parse_spec
from mtvae.study.study import run_study
from mtvae.study.workers import RunTask, execute

BASE = {
    "data": {"source": "digits", "n_train": 96, "n_val": 32, "n_test": 32, "image_size": 16},
    "model": {"name": "vae", "latent_dim": 4, "encoder": {"arch": "mlp", "hidden": [16]}},
    "train": {"epochs": 1, "batch_size": 32, "progress": False},
    "eval": {"iwae_k": 2, "iwae_n": 8, "n_grid": 4, "probe_budgets": ["all"],
             "gen_samples": 16, "kid_subsets": 2},
}
MTVAE = {"name": "mtvae", "latent_dim": 6, "task_dim": 2, "tasks": ["digit", "parity"],
         "encoder": {"arch": "mlp", "hidden": [16]}}


def task(tmp_path, name: str, label_fraction: float, shared=(), model=None,
         metrics: tuple[str, ...] = ("recon", "probe", "leakage")) -> RunTask:
    config = {**BASE, "data": {**BASE["data"], "label_fraction": label_fraction},
              "model": model or BASE["model"]}
    return RunTask(run_id=name, config=config, run_dir=str(tmp_path / name),
                   metrics=metrics, figures=True, shared=tuple(shared))


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


def test_a_shared_run_records_the_values_auto_stood_for_like_its_leader(tmp_path):
    execute(task(tmp_path, "leader", 1.0, [task(tmp_path, "shared", 0.5)]))
    leader, shared = (read_yaml(tmp_path / name / "config.yaml") for name in ("leader", "shared"))
    assert shared["train"]["labelled_per_batch"] != "auto"
    assert shared["model"] == leader["model"]  # padding and the rest, resolved alike
    assert shared["data"]["label_fraction"] == 0.5


def test_a_worker_resolves_each_config_once_and_loads_no_model(tmp_path, monkeypatch):
    model_loads = counting(monkeypatch, mtvae.pipeline, "load")
    resolved = counting(monkeypatch, mtvae.runconfig, "resolve_config")
    resolved += counting(monkeypatch, mtvae.run_directory, "resolve_config")  # config.yaml read back
    result = execute(task(tmp_path, "leader", 1.0, [task(tmp_path, "shared", 0.5)]))
    assert result["status"] == "done", result.get("error")
    assert result["shared"][0]["status"] == "done", result["shared"][0].get("error")
    assert model_loads == []  # both evaluated the trained model in memory
    assert len(resolved) == 2  # one resolution per run
    # each run's directory still holds its own resolved config
    for name, fraction in (("leader", 1.0), ("shared", 0.5)):
        assert load_config(tmp_path / name).data.label_fraction == fraction


def test_a_figures_run_stores_what_its_evaluation_drew(tmp_path, monkeypatch):
    traversals = counting(monkeypatch, families, "traversal_plot")
    leakage = counting(monkeypatch, families, "leakage_scores")
    # the spec asks for recon only: figures and leakage come after it, for the report
    run = task(tmp_path, "mt", 1.0, [task(tmp_path, "mt-shared", 0.5, model=MTVAE,
                                          metrics=("recon",))], model=MTVAE, metrics=("recon",))
    result = execute(run)
    assert result["status"] == "done", result.get("error")
    assert len(traversals) == 2 and len(leakage) == 2  # once per run, by its evaluation
    for name, outcome in (("mt", result), ("mt-shared", result["shared"][0])):
        assert outcome["status"] == "done", outcome.get("error")
        drawn = {f"figure:{p.stem}": p.read_bytes()
                 for p in sorted((tmp_path / name / "figures").glob("*.png"))
                 if p.stem not in artifacts.SKIPPED_FIGURES}
        stored = {k: data for k, (kind, data) in outcome["artifacts"].items() if kind == "png"}
        assert stored == drawn and {"figure:traversals", "figure:samples"} <= set(stored)
        assert set(outcome["artifacts"]) == {"curve", *drawn}  # no leakage artifact
        assert any(k.startswith("leakage/") for k in outcome["metrics"])  # the report's matrix
        # figures the study does not store are not drawn for the families added for it
        assert not {"leakage", "training_curves", "embedding"} & {
            p.stem for p in (tmp_path / name / "figures").glob("*.png")}


def test_a_later_seed_evaluates_only_the_spec_families():
    later = RunTask("r", {}, "unused", ("recon", "task"), figures=False)
    assert later.families() == ("recon", "task") and later.skipped_figures() == ()
    first = RunTask("r", {}, "unused", ("recon", "leakage", "task"), figures=True)
    assert first.families() == ("recon", "leakage", "task", "figures")  # appended, in order
    # what the study would not store is not drawn, unless the spec asks for the family
    assert first.skipped_figures() == ("training_curves", "embedding")


def test_artifacts_compute_nothing():
    tree = ast.parse(inspect.getsource(artifacts))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {"torch", "mtvae.pipeline", "mtvae.run_directory", "mtvae.evaluate",
                 "mtvae.models"} & imported, imported


@pytest.mark.parametrize("model", [
    {"name": "vae", "latent_dim": 4, "encoder": {"arch": "conv", "channels": [4, 8]}},
    {"name": "vqvae", "n_latents": 2, "encoder": {"arch": "mlp", "hidden": [16]},
     "quantizer": {"num_codes": 8, "code_dim": 2}, "prior": {"epochs": 1, "hidden": 8}},
], ids=["conv-vae", "vqvae-prior"])
def test_the_model_in_memory_evaluates_as_the_saved_one(tmp_path, model):
    config = resolve_config({**BASE, "model": model})
    trained = train_in_memory(config, tmp_path / "run")
    assert not trained.model.training and next(trained.model.parameters()).device.type == "cpu"
    in_memory = evaluate_run(trained, "recon,nll,vq,figures", log=lambda _: None)
    loaded, loaded_config = load(tmp_path / "run")
    assert loaded_config == trained.config
    # equal to the saved weights, and left unchanged by its evaluation (a shared run's next)
    saved = loaded.state_dict()
    assert all(torch.equal(v, saved[k]) for k, v in trained.model.state_dict().items())
    assert evaluate_run(tmp_path / "run", "recon,nll,vq,figures",
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


def test_a_study_on_other_data_expands_only_the_changed_spec(tmp_path, monkeypatch):
    expansions = counting(monkeypatch, mtvae.study.expand, "expand")
    started = []
    monkeypatch.setattr(mtvae.study.study, "run_study",
                        lambda spec, out, **_: started.append(spec) or Path(out))
    assert main(["study", "--preset", "quick", "--data", "digits",
                 "--out", str(tmp_path / "s")]) == 0
    assert len(expansions) == 1 and list(started[0].datasets) == ["digits"]
    assert started[0].plan() is started[0].plan()  # the study reuses that expansion


def test_a_study_expands_its_spec_once(tmp_path, monkeypatch):
    monkeypatch.setitem(mtvae.study.workers.BACKENDS, "done", _Done)
    resolved = counting(monkeypatch, mtvae.study.expand, "resolve_config")  # per cell
    spec = parse_spec({"name": "once", "datasets": ["digits"], "base": {"data": BASE["data"]},
                       "variants": {"vae": {"model": "vae"}}, "seeds": [0, 1],
                       "metrics": ["recon"]})
    run_study(spec, tmp_path / "study", backend="done", log=lambda _: None)
    assert len(resolved) == 2  # parse_spec's expansion of the 2 cells, which the study reuses
    spec.seeds = [0, 1, 2]  # a changed spec is expanded anew
    run_study(spec, tmp_path / "more", backend="done", log=lambda _: None)
    assert len(resolved) == 2 + 3
