"""A spec's robustness option re-runs the centre point with the maximum budget multiplied,
stored apart from the grid."""

from __future__ import annotations

import json

import pytest
import yaml

from mtvae.errors import UserError
from mtvae.study.spec import parse_spec, spec_yaml
from mtvae.study.store import Store
from mtvae.study.study import run_study

SPEC = {
    "name": "robust",
    "datasets": {"digits": {"tasks": ["digit"]}},
    "base": {"data": {"n_train": 64, "n_val": 16, "n_test": 16, "image_size": 16},
             "model": {"latent_dim": 2, "encoder": {"arch": "mlp", "hidden": [8]}},
             "train": {"epochs": 1, "early_stopping": 2, "batch_size": 32},
             "eval": {"iwae_k": 2, "iwae_n": 4}},
    "variants": {"vae": {"model": "vae"},
                 "mtvae": {"model": "mtvae", "baselines": {"reconstruction": "vae"}}},
    "conditions": {"label_fraction": [0.5, 1.0], "beta": [1.0, 2.0]},
    "design": "ofat",
    "seeds": [0, 1],
    "metrics": ["recon"],
}


def test_the_centre_point_is_planned_again_with_the_budget_multiplied():
    plan = parse_spec({**SPEC, "robustness": {"budget": 2.5}}).plan()
    plain = parse_spec(SPEC).plan()
    assert plan.cells == plain.cells  # the grid is unchanged
    centre = json.dumps({"label_fraction": 0.5, "beta": 1.0}, separators=(",", ":"))
    assert {(c.variant, c.seed) for c in plan.robustness} == {
        (v, s) for v in ("vae", "mtvae") for s in (0, 1)}
    for cell in plan.robustness:
        assert cell.point == centre and cell.factor == 2.5
        config = plan.runs[cell.run_id].config
        assert config["train"]["epochs"] == 3  # ceil(1 x 2.5)
        assert config["train"]["early_stopping"] == 5  # the patience too
        (twin,) = [c for c in plain.cells if (c.point, c.variant, c.seed) == (
            centre, cell.variant, cell.seed)]
        original = plain.runs[twin.run_id].config
        assert {**config, "train": {**config["train"], "epochs": 1, "early_stopping": 2}
                } == original


def test_a_budget_must_grow():
    with pytest.raises(UserError, match="robustness.budget"):
        parse_spec({**SPEC, "robustness": {"budget": 1}})


def test_a_spec_without_the_option_keeps_its_study_yaml():
    assert "robustness" not in yaml.safe_load(spec_yaml(parse_spec(SPEC)))


def test_the_re_runs_run_and_are_stored_apart(tmp_path):
    spec = parse_spec({**SPEC, "conditions": {"label_fraction": [0.5]},
                       "seeds": [0], "robustness": {"budget": 2}})
    out = run_study(spec, tmp_path / "study", workers=1, threads=1, log=lambda _: None)
    store = Store(out / "results.db", create=False)
    robust = store.robustness_cells()
    runs = {r["run_id"]: r for r in store.runs()}
    cells = store.cells()
    store.close()
    assert {c["variant"] for c in robust} == {"vae", "mtvae"}
    assert not {c["run_id"] for c in robust} & {c["run_id"] for c in cells}
    for cell in robust:
        run = runs[cell["run_id"]]
        assert run["status"] == "done" and run["epochs_trained"] == 2
        assert cell["factor"] == 2.0
