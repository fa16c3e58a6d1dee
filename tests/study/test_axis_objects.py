"""Condition axes as objects: each named axis sets its key, and a new axis is one declaration."""

from __future__ import annotations

import copy
import json

import pytest

from mtvae.errors import UserError
from mtvae.report.methodology import conditions_section
from mtvae.study import axes as A
from mtvae.study.expand import expand, point_label
from mtvae.study.spec import parse_spec

BASE = {
    "name": "axes",
    "datasets": {"shapes": {"tasks": ["shape", "x", "y"],
                            "task_sets": {"one": ["shape"], "two": ["shape", "x"]}}},
    "base": {"data": {"n_train": 64, "n_val": 16, "n_test": 16, "image_size": 16},
             "model": {"latent_dim": 8, "encoder": {"arch": "mlp", "hidden": [16]}},
             "train": {"epochs": 1, "batch_size": 32}},
    "variants": {"vae": {"model": "vae"}, "mt": {"model": "mtvae"}},
    "seeds": [0],
    "metrics": ["recon"],
}


def spec_with(conditions: dict, **changes) -> dict:
    raw = copy.deepcopy(BASE)
    raw.update(conditions=conditions, **changes)
    return raw


def by_level(plan, variant: str, axis: str) -> dict:
    """``{level: (the run's config, its training id)}`` of ``variant``'s cells."""
    return {json.dumps(json.loads(c.point)[axis]): (plan.runs[c.run_id].config,
                                                    plan.runs[c.run_id].train_id)
            for c in plan.cells if c.variant == variant}


def get(config: dict, key: str):
    for part in key.split("."):
        config = config[part]
    return config


# axis, two levels, the key each sets, the values set, whether it acts only through labels
NAMED = [
    ("label_fraction", [0.5, 1.0], "data.label_fraction", [0.5, 1.0], True),
    ("label_count", [8, "all"], "data.n_labelled", [8, None], True),
    ("n_train", [64, 48], "data.n_train", [64, 48], False),
    ("beta", [1.0, 4.0], "model.beta", [1.0, 4.0], False),
    ("latent_dim", [8, 10], "model.latent_dim", [8, 10], False),
    ("tasks", ["one", "two"], "model.tasks", [["shape"], ["shape", "x"]], True),
    ("n_tasks", [1, 3], "model.tasks", [["shape"], ["shape", "x", "y"]], True),
]


@pytest.mark.parametrize(("axis", "levels", "key", "values", "labels_only"), NAMED)
def test_each_named_axis_sets_its_key_and_a_label_axis_trains_the_vae_once(
        axis, levels, key, values, labels_only):
    plan = expand(parse_spec(spec_with({axis: levels})))
    mt = by_level(plan, "mt", axis)
    assert [get(config, key) for config, _ in mt.values()] == values
    vae = by_level(plan, "vae", axis)
    shared = len({train for _, train in vae.values()}) == 1
    assert shared == labels_only  # a label-free model trains once for a label axis
    assert len({train for _, train in mt.values()}) == 2  # the MT-VAE reads its labels


def test_the_task_weight_and_weighting_axes_change_the_mtvae_alone():
    spec = parse_spec(spec_with({"task_weight": [1, 0, 0.1], "weighting": ["fixed", "dwa"]},
                                design="ofat"))
    plan = expand(spec)
    mt = [plan.runs[c.run_id].config["model"] for c in plan.cells if c.variant == "mt"]
    # task_scale_factor is recorded where it is not 1
    assert [(m.get("task_scale_factor", 1), m["weighting"]["strategy"]) for m in mt] == [
        (1, "fixed"), (0, "fixed"), (0.1, "fixed"), (1, "dwa")]
    assert len({c.run_id for c in plan.cells if c.variant == "vae"}) == 1  # unchanged by both


def test_a_task_set_a_dataset_does_not_define_leaves_its_cell_empty():
    datasets = {**BASE["datasets"], "digits": {"tasks": ["digit"], "task_sets": {"one": ["digit"]}}}
    plan = expand(parse_spec(spec_with({"tasks": ["one", "two"]}, datasets=datasets)))
    cells = {(c.dataset, json.loads(c.point)["tasks"]) for c in plan.cells}
    assert cells == {("shapes", "one"), ("shapes", "two"), ("digits", "one")}


def test_label_count_levels_are_kept_from_few_labels_to_all():
    spec = parse_spec(spec_with({"label_count": ["all", 40, 8], "beta": [4.0, 1.0]}))
    assert spec.conditions == {"label_count": [8, 40, "all"], "beta": [4.0, 1.0]}


def test_an_unknown_axis_name_is_refused_with_the_named_ones():
    with pytest.raises(UserError, match="unknown condition axis 'betta'. Did you mean 'beta'"):
        parse_spec(spec_with({"betta": [1.0, 2.0]}))
    # the label settings declared under their dotted keys are not offered as short names
    assert {"label_fraction", "label_count", "tasks", "n_tasks"} <= set(A.named_axes())
    assert "data.label_policy" in A.AXES and "data.label_policy" not in A.named_axes()


def test_a_new_axis_is_one_declaration(monkeypatch):
    """Declared once, an axis is accepted by the spec, sets its key through its own setting,
    is refused where an override sets the same key, labels its levels and is described in the
    report's methodology."""
    per_task = A.Axis("block", "model.task_dim", "latent dimensions per task, as a share of "
                      "the latent", setting=lambda level, dataset, source, where: max(
                          1, int(level * 8) // len(dataset.tasks)))
    monkeypatch.setitem(A.AXES, "block", per_task)
    spec = parse_spec(spec_with({"block": [0.5, 0.75]}))
    plan = expand(spec)
    mt = by_level(plan, "mt", "block")
    assert [config["model"]["task_dim"] for config, _ in mt.values()] == [1, 2]  # 4 // 3, 6 // 3
    assert len({c.run_id for c in plan.cells if c.variant == "vae"}) == 1  # no such option
    assert point_label(plan.cells[0].point) == "block=0.5"
    row = conditions_section(spec.model_dump(mode="json"))["table"]["rows"][0]
    assert row == ["block", "model.task_dim", "0.5, 0.75", "0.5",
                   "latent dimensions per task, as a share of the latent"]
    variants = {**BASE["variants"], "mt": {"model": "mtvae", "set": {"model.task_dim": 2}}}
    with pytest.raises(UserError, match="sets 'model.task_dim', which the condition axis "
                                        "'block' varies"):
        parse_spec(spec_with({"block": [0.5, 0.75]}, variants=variants))


def test_a_new_label_axis_lets_a_label_free_model_train_once(monkeypatch):
    """``labels_only`` on the declaration is all a study needs to share a training."""
    def lr_of(plan):
        return by_level(plan, "vae", "lr")

    spec = spec_with({"lr": [0.001, 0.002]})
    monkeypatch.setitem(A.AXES, "lr", A.Axis("lr", "train.lr", "learning rate"))
    assert len({train for _, train in lr_of(expand(parse_spec(spec))).values()}) == 2
    monkeypatch.setitem(A.AXES, "lr", A.Axis("lr", "train.lr", "learning rate",
                                             labels_only=True))
    assert "train.lr" in A.label_keys()
    assert len({train for _, train in lr_of(expand(parse_spec(spec))).values()}) == 1
