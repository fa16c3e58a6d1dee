"""Held-out regions (data.holdout) are evaluated apart, under ood/ keys."""

import copy
import json
import warnings

import pytest

import mtvae.pipeline
from mtvae.config import resolve_config
from mtvae.data.generalization import holdout_mask, parse_holdout
from mtvae.data.sources import load_dataset
from mtvae.evaluate.reconstruction import reconstruction_metrics
from mtvae.evaluate.tasks import task_metrics
from mtvae.pipeline import evaluate_run, train_run
from mtvae.run_directory import load

HOLDOUT = "shapes:square-right"
KEYS = ("recon/mse", "recon/bce", "task/shape/accuracy", "task/x/mae")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    config = resolve_config({
        "data": {"n_train": 96, "n_val": 16, "n_test": 64, "image_size": 16, "holdout": HOLDOUT},
        "model": {"name": "mtvae", "latent_dim": 6, "tasks": ["shape", "x"],
                  "encoder": {"arch": "mlp", "hidden": [32]}},
        "train": {"epochs": 1, "batch_size": 32, "progress": False},
    })
    return train_run(config, tmp_path_factory.mktemp("ood") / "run")


def test_holdout_split_gets_its_own_recon_and_task_metrics(run):
    results = evaluate_run(run, metrics="recon,task")
    for key in KEYS:
        assert key in results and f"ood/{key}" in results, key
    assert results["ood/task/x/mae"] >= 0 and 0 <= results["ood/task/shape/accuracy"] <= 1

    # the ood values are those of the held-out region's test samples, not of the test split
    model, config = load(run)
    data = load_dataset(config.data)
    holdout = parse_holdout(HOLDOUT)
    assert holdout_mask(data.ood, data, holdout).all()
    assert not holdout_mask(data.test, data, holdout).any()
    with warnings.catch_warnings():  # the region holds one shape class only
        warnings.simplefilter("ignore", UserWarning)
        expected = {**reconstruction_metrics(model, data.ood.x), **task_metrics(model, data.ood)}
    for key in KEYS:
        assert results[f"ood/{key}"] == pytest.approx(expected[key], rel=1e-6), key
    assert results["ood/recon/mse"] != pytest.approx(results["recon/mse"], rel=1e-3)


def test_ood_metrics_read_the_ood_split(run, monkeypatch):
    """Planted: with the test split itself in the ood slot, every ood/ value equals the test
    value; any other source of the ood/ numbers (test minus region, val) would differ."""
    real = load_dataset

    def planted(cfg):
        data = real(cfg)
        data.ood = copy.deepcopy(data.test)
        return data

    monkeypatch.setattr(mtvae.pipeline, "load_dataset", planted)
    results = evaluate_run(run, metrics="recon,task")
    for key in KEYS:
        assert results[f"ood/{key}"] == pytest.approx(results[key], rel=1e-6), key


def test_a_family_declares_whether_it_is_evaluated_on_the_held_out_region(run, monkeypatch,
                                                                          capsys):
    """A family registered in METRIC_FAMILIES alone, with an ``ood`` function, is evaluated on
    the ood split under ood/ keys from the command line; a family without one (nll) is not."""
    from mtvae.cli import main
    from mtvae.evaluate import runner

    def mean(split):
        return {"mean/x": float(split.x.mean())}

    family = runner.MetricFamily("mean", (), lambda ctx: mean(ctx.data.test), "mean pixel",
                                 ood=lambda ctx, split: mean(split))
    monkeypatch.setitem(runner.METRIC_FAMILIES, "mean", family)
    assert main(["evaluate", str(run), "--metrics", "mean,nll"]) == 0
    capsys.readouterr()
    results = json.loads((run / "results.json").read_text())
    data = load_dataset(load(run)[1].data)
    assert results["mean/x"] == pytest.approx(float(data.test.x.mean()))
    assert results["ood/mean/x"] == pytest.approx(float(data.ood.x.mean()))
    assert "nll/iwae" in results and not any(k.startswith("ood/nll") for k in results)
