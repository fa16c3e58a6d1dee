"""The Ray backend: a tiny study on a local Ray instance gives the local runner's results."""

from __future__ import annotations

import json
import sqlite3

import pytest

from mtvae.errors import UserError
from mtvae.study.spec import parse_spec
from mtvae.study.study import run_study
from mtvae.study.workers import check_backend

ray = pytest.importorskip("ray", reason="Ray is the optional extra mtvae[ray]; make test installs it")

TINY = {
    "name": "tiny-ray",
    "datasets": {"shapes": {"tasks": ["shape", "x"]}},
    "base": {"data": {"n_train": 128, "n_val": 32, "n_test": 32, "image_size": 16},
             "model": {"latent_dim": 4, "encoder": {"arch": "mlp", "hidden": [16]}},
             "train": {"epochs": 1, "batch_size": 64},
             "eval": {"iwae_k": 4, "iwae_n": 8, "n_grid": 4}},
    "variants": {
        "vae": {"model": "vae"},
        "mt": {"model": "mtvae", "set": {"model.task_dim": 1},
               "baselines": {"reconstruction": "vae"}},
        # x's head reads the shared block, but two task blocks of 2 fill latent_dim 4: fails
        # when the model is built (a latent too narrow for the blocks is refused at plan time)
        "broken": {"model": "mtvae", "set": {"model.task_dim": 2,
                                             "model.head_blocks.x": ["shared"]}},
    },
    "seeds": [0, 1],
    "metrics": ["recon", "task"],
}


def _rows(study) -> dict[str, tuple]:
    with sqlite3.connect(study / "results.db") as db:
        rows = db.execute("SELECT run_id, status, metrics FROM runs").fetchall()
    return {rid: (status, metrics) for rid, status, metrics in rows}


def _scores(metrics_json: str) -> dict:
    return {k: v for k, v in json.loads(metrics_json).items() if not k.startswith("time/")}


@pytest.fixture(scope="module")
def ray_instance():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_study_matches_the_local_runner_and_isolates_failures(tmp_path, ray_instance):
    spec = parse_spec(TINY)
    local = run_study(spec, tmp_path / "local", workers=2, threads=1,
                      log=lambda _: None)
    remote = run_study(spec, tmp_path / "ray", workers=2, threads=1, backend="ray",
                       log=lambda _: None)
    a, b = _rows(local), _rows(remote)
    assert a.keys() == b.keys() and len(a) == 6
    statuses = [status for status, _ in b.values()]
    assert statuses.count("failed") == 2 and statuses.count("done") == 4
    for rid, (status, metrics) in a.items():
        assert b[rid][0] == status
        if status == "done":  # same seeds, same single thread: the same numbers
            assert _scores(b[rid][1]) == _scores(metrics)
    again = run_study(spec, tmp_path / "ray", workers=2, threads=1, backend="ray",
                      log=lambda _: None)
    assert _rows(again) == b  # resumed: nothing re-run, nothing duplicated


def test_missing_ray_is_a_clear_error(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "ray" else real(name, *a))
    with pytest.raises(UserError, match=r"pip install 'mtvae\[ray\]'"):
        check_backend("ray")
