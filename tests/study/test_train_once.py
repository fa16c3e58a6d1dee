"""Train once what the labels do not change: a label-free model trained for one label
condition is evaluated (probes re-fitted) for every other, with the same results as training it
again; and a baseline that learns from labels must get the variant's label budget."""

from __future__ import annotations

import copy
import os

import pytest

from mtvae.errors import UserError
from mtvae.study.expand import expand, training_identity
from mtvae.study.spec import parse_spec
from mtvae.study.store import Store
from mtvae.study.study import run_study

SPEC = {
    "name": "once",
    "datasets": {"shapes": {"tasks": ["shape", "x"]}},
    "base": {"data": {"n_train": 128, "n_val": 32, "n_test": 64, "image_size": 16},
             "model": {"latent_dim": 4, "encoder": {"arch": "mlp", "hidden": [16]}},
             "train": {"epochs": 1, "batch_size": 64, "labelled_per_batch": 8},
             "eval": {"probe_budgets": ["all"]}},
    "variants": {"vae": {"model": "vae"},
                 "mt": {"model": "mtvae", "set": {"model.layout": "shared"},
                        "baselines": {"representation": "vae", "task": "sup"}},
                 "sup": {"model": "supervised"}},
    "conditions": {"label_count": [16, "all"]},
    "seeds": [0],
    "metrics": ["recon", "task", "probe"],
}


def _runs_by(plan, variant):
    return [r for r in plan.runs.values() if r.variant == variant]


def test_label_free_runs_share_a_training_id_and_the_others_do_not():
    plan = expand(parse_spec(SPEC))
    vae = _runs_by(plan, "vae")
    assert len(vae) == 2 and len({r.run_id for r in vae}) == 2  # a run per condition
    assert len({r.train_id for r in vae}) == 1  # one training for both
    for name in ("mt", "sup"):  # they read labels: a training per condition
        assert len({r.train_id for r in _runs_by(plan, name)}) == 2
    identity = training_identity(vae[0].config)
    assert "n_labelled" not in identity["data"] and "labelled_per_batch" not in identity["train"]
    assert identity["eval"] == {"batch_size": vae[0].config["eval"]["batch_size"]}


def _metrics(out):
    store = Store(out / "results.db", create=False)
    try:
        rows = {r["run_id"]: r for r in store.runs()}
    finally:
        store.close()
    return rows


def test_training_once_gives_every_cell_the_results_of_training_it_again(tmp_path):
    spec = parse_spec(SPEC)
    quiet = dict(workers=1, threads=1, log=lambda _: None)
    run_study(spec, tmp_path / "once", train_once=True, **quiet)
    run_study(spec, tmp_path / "every", train_once=False, **quiet)
    once, every = _metrics(tmp_path / "once"), _metrics(tmp_path / "every")
    assert set(once) == set(every) and {r["status"] for r in once.values()} == {"done"}
    for rid, row in once.items():
        same = {k: v for k, v in row["metrics"].items() if not k.startswith("time/")}
        assert same == {k: v for k, v in every[rid]["metrics"].items()
                        if not k.startswith("time/")}, row["variant"]
    vae = _runs_by(expand(spec), "vae")
    weights = [tmp_path / "once" / "runs" / r.run_id / "model.safetensors" for r in vae]
    assert os.stat(weights[0]).st_ino == os.stat(weights[1]).st_ino  # trained once, linked
    budgets = sorted(once[r.run_id]["metrics"]["probe/shape/n_train@all"] for r in vae)
    assert budgets == [16, 128]  # each condition's probes saw that condition's labels


def test_a_baseline_that_learns_from_labels_gets_the_same_label_budget():
    raw = copy.deepcopy(SPEC)
    raw["variants"]["mt"]["set"]["train.epochs"] = 3
    with pytest.raises(UserError, match=r"'mt' is compared with 'sup'.*train.epochs is 3 for "
                                         r"'mt' and 1 for 'sup'.*in `base`"):
        parse_spec(raw)
    raw = copy.deepcopy(SPEC)
    raw["variants"]["mt"]["baselines"] = {"representation": "vae"}
    raw["variants"]["vae"]["set"] = {"train.epochs": 3}  # label-free: no budget to match
    parse_spec(raw)
