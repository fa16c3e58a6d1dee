"""One pass per run: a study worker loads a run's dataset once and trains, evaluates and
collects artifacts from that copy; a run sharing the training (other labels) loads its own."""

from __future__ import annotations

import pytest

import mtvae.data.sources as sources
from mtvae.study.runner import RunTask, execute

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


@pytest.fixture
def loads(monkeypatch) -> list[str]:
    """The sources actually read (every load_dataset goes through _load_with_conditions)."""
    seen: list[str] = []
    real = sources._load_with_conditions

    def counting(entry, cfg):
        seen.append(f"{cfg.source}:{cfg.label_fraction}")
        return real(entry, cfg)

    monkeypatch.setattr(sources, "_load_with_conditions", counting)
    return seen


def test_a_study_run_loads_its_dataset_once_and_a_shared_run_once_more(tmp_path, loads):
    result = execute(task(tmp_path, "leader", 1.0, [task(tmp_path, "shared", 0.5)]))
    assert result["status"] == "done", result.get("error")
    assert result["shared"][0]["status"] == "done", result["shared"][0].get("error")
    # train + evaluate + artifacts of the leader, then the shared run's evaluation + artifacts
    assert loads == ["digits:1.0", "digits:0.5"]
    assert "figure:traversals" in result["artifacts"]  # artifacts read the same copy
    assert "figure:traversals" in result["shared"][0]["artifacts"]
