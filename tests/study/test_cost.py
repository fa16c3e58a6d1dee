"""A study hands out its longest runs first (mtvae.study.cost)."""

from __future__ import annotations

from pathlib import Path

from mtvae.study.cost import task_cost, training_cost
from mtvae.study.spec import parse_spec
from mtvae.study.study import _tasks


def config(model: str, epochs: int = 10, n_train: int = 1000, image_size: int = 16) -> dict:
    return {"model": {"name": model}, "data": {"n_train": n_train, "image_size": image_size},
            "train": {"epochs": epochs}}


def test_cost_grows_with_model_data_and_budget():
    base = training_cost(config("supervised"))
    assert training_cost(config("m2")) > training_cost(config("vae")) > base
    assert training_cost(config("supervised", epochs=20)) == 2 * base
    assert training_cost(config("supervised", n_train=3000)) == 3 * base
    assert training_cost(config("supervised", image_size=32)) == 4 * base
    assert task_cost(config("vae"), shared=3) > task_cost(config("vae"), shared=0)


def test_a_study_starts_its_longest_runs_first(tmp_path: Path):
    spec = parse_spec({
        "name": "order",
        "datasets": {"digits": {"tasks": ["digit"]}},
        "base": {"data": {"n_train": 64, "n_val": 16, "n_test": 16, "image_size": 16},
                 "model": {"latent_dim": 2, "encoder": {"arch": "mlp", "hidden": [8]}},
                 "train": {"epochs": 2}},
        "variants": {"supervised": {"model": "supervised"},
                     "long-supervised": {"model": "supervised", "set": {"train.epochs": 8}},
                     "vae": {"model": "vae"}, "m2": {"model": "m2"}},
        "conditions": {"label_fraction": [0.5, 1.0]},
        "seeds": [0],
    })
    plan = spec.plan()
    tasks = _tasks(plan, tmp_path, list(plan.runs), spec, train_once=True)
    order = [plan.runs[t.run_id].variant for t in tasks]
    # long-supervised: 8 epochs x 1; m2: 2 x 5; vae: 2 x 2, once for both label fractions
    assert order == ["m2", "m2", "long-supervised", "long-supervised", "vae",
                     "supervised", "supervised"]
    assert len(tasks[4].shared) == 1
