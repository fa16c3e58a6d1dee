"""Study specs: validation with clear messages, presets, deterministic expansion into runs."""

from __future__ import annotations

import copy

import pytest

from mtvae.cli import main
from mtvae.errors import UserError
from mtvae.study.expand import condition_points, expand, point_label, run_id, train_id
from mtvae.study.spec import load_preset, parse_spec, preset_names, with_data

BASE = {
    "name": "tiny",
    "datasets": {"shapes": {"tasks": ["shape", "x"]}},
    "base": {"data": {"n_train": 64, "n_val": 16, "n_test": 16, "image_size": 16},
             "model": {"latent_dim": 6, "encoder": {"arch": "mlp", "hidden": [16]}},
             "train": {"epochs": 1, "batch_size": 32}},
    "variants": {
        "vae": {"model": "vae"},
        "mt": {"model": "mtvae", "set": {"model.layout": "shared"},
               "baselines": {"reconstruction": "vae", "task": "sup"}},
        "sup": {"model": "supervised"},
    },
    "conditions": {"label_fraction": [0.5, 1.0], "beta": [1.0, 4.0]},
    "seeds": [0, 1],
    "metrics": ["recon", "task"],
}


def spec_with(**changes):
    raw = copy.deepcopy(BASE)
    raw.update(changes)
    return raw


def test_presets_validate_and_quick_is_the_promised_grid():
    assert {"quick", "standard", "full"} <= set(preset_names())
    for name in preset_names():
        spec = load_preset(name)  # every run config of every preset resolves
        assert spec.name == name
    quick = load_preset("quick")
    plan = expand(quick)
    assert list(quick.datasets) == ["mnist"] and len(quick.seeds) == 8  # claims replicate
    assert quick.conditions == {"label_count": [100, "all"]}  # scarce and plentiful labels
    assert len(plan.runs) == 80  # 5 variants x 2 label counts x 8 seeds
    assert {r.model for r in plan.runs.values()} == {"vae", "mtvae", "supervised", "m2"}
    trainings = {train_id(r.config) for r in plan.runs.values()}
    assert len(trainings) == 4 * 2 * 8 + 8  # the VAE trains once per seed
    single = [h for h in quick.hypotheses if h.baseline == "single"]
    assert [h.metric for h in single] == ["task/digit/accuracy"]  # multitask vs single-task
    assert {"gen", "probe", "task"} <= set(quick.metrics)


def test_product_and_ofat_expansion_counts():
    product = parse_spec(BASE)
    assert len(condition_points(product)) == 4
    plan = expand(product)
    assert len(plan.cells) == 3 * 4 * 2
    # beta does not touch the supervised baseline: its cells share runs instead of retraining
    assert len(plan.runs) == 2 * (2 * 4 + 2)
    ofat = parse_spec(spec_with(design="ofat", default={"label_fraction": 1.0}))
    points = condition_points(ofat)
    assert [point_label(p) for p in points] == [
        "label_fraction=1, beta=1", "label_fraction=0.5, beta=1", "label_fraction=1, beta=4"]
    assert len(expand(ofat).cells) == 3 * 3 * 2


def test_crossed_axes_vary_together_in_an_ofat_design():
    conditions = {"label_fraction": [0.5, 1.0], "beta": [1.0, 4.0], "task_weight": [1, 0, 3]}
    spec = parse_spec(spec_with(design="ofat", conditions=conditions,
                                crossed=[["label_fraction", "task_weight"]]))
    points = [point_label(p) for p in condition_points(spec)]
    assert points == [
        "label_fraction=0.5, beta=1, task_weight=1",  # the centre
        "label_fraction=0.5, beta=1, task_weight=0", "label_fraction=0.5, beta=1, task_weight=3",
        "label_fraction=1, beta=1, task_weight=1", "label_fraction=1, beta=1, task_weight=0",
        "label_fraction=1, beta=1, task_weight=3",  # the crossed pair: all 2 x 3 combinations
        "label_fraction=0.5, beta=4, task_weight=1"]
    assert "crossed" not in parse_spec(BASE).model_dump(mode="json")  # old specs dump as before
    for bad, message in [([["beta"]], "two or more axes"),
                         ([["beta", "betta"]], "'betta', which is not a condition axis"),
                         ([["beta", "task_weight"], ["beta", "label_fraction"]], "two groups")]:
        with pytest.raises(UserError, match=message):
            parse_spec(spec_with(design="ofat", conditions=conditions, crossed=bad))
    with pytest.raises(UserError, match="product design already crosses"):
        parse_spec(spec_with(conditions=conditions, crossed=[["beta", "task_weight"]]))


def test_run_ids_are_deterministic_hashes_of_the_resolved_config():
    first, second = expand(parse_spec(BASE)), expand(parse_spec(BASE))
    assert list(first.runs) == list(second.runs)
    for rid, run in first.runs.items():
        assert len(rid) == 12 and run_id(run.config) == rid
        assert run.config["train"]["progress"] is False
    reordered = spec_with(variants=dict(reversed(list(BASE["variants"].items()))))
    assert set(expand(parse_spec(reordered)).runs) == set(first.runs)  # names do not matter
    changed = copy.deepcopy(BASE)
    changed["base"]["train"]["lr"] = 0.01
    assert not set(expand(parse_spec(changed)).runs) & set(first.runs)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"variants": {"vae": {"modle": "vae"}}}, "unknown key 'variants.vae.modle'. Did you mean 'model'?"),
        ({"variants": {"vae": {"model": "vea"}}}, "unknown model 'vea'. Did you mean 'vae'?"),
        ({"conditions": {"label_fractoin": [0.1]}}, "Did you mean 'label_fraction'?"),
        ({"metrics": ["recon", "tsak"]}, "unknown metric family 'tsak'. Did you mean 'task'?"),
        ({"datasets": ["shapse"]}, "unknown data source 'shapse'. Did you mean 'shapes'?"),
        ({"variants": {"a": {"model": "vae", "baselines": {"task": "b"}}}},
         "baseline for task must be another variant, got 'b'"),
        ({"variants": {"a": {"model": "vae", "baselines": {"recon": "a"}}}}, "variants.a.baselines.recon"),
        ({"variants": {"a": {"model": "vae", "set": {"model.beta": 2}}}},
         "variant 'a' sets 'model.beta', which the condition axis 'beta' varies"),
        ({"conditions": {"weighting": ["fixed", "dwa"]}, "variants": {"a": {"model": "vae"}}},
         "the condition axis 'model.weighting.strategy' (weighting) changes no variant"),
        ({"variants": {"a": {"model": "vae", "set": {"train.epochs": 0}}}},
         "variant 'a' on shapes"),
        ({"variants": {"a": {"model": "vae", "set": {"seed": 3}}}}, "which the study's seeds set"),
        ({"seeds": [1, 1]}, "seeds must be distinct"),
        ({"default": {"beta": 2.0}}, "default beta=2.0 is not one of the axis' values"),
        ({"name": ""}, "'name'"),
    ],
)
def test_spec_errors_say_what_is_wrong(change, needle):
    with pytest.raises(UserError, match="Invalid study spec") as info:
        parse_spec(spec_with(**change))
    assert needle in str(info.value)


def test_duplicate_variants_are_rejected():
    raw = spec_with(variants={"a": {"model": "vae"}, "b": {"model": "vae"}})
    with pytest.raises(UserError, match="variants 'a' and 'b' give the same run config"):
        parse_spec(raw)


def test_data_override_takes_tasks_from_the_new_data():
    spec = parse_spec(spec_with(datasets={"shapes": {"tasks": ["shape"],
                                                     "task_sets": {"one": ["shape"]}}},
                                conditions={"tasks": ["one"]}))
    other = with_data(spec, "digits")
    assert list(other.datasets) == ["digits"] and other.datasets["digits"].tasks is None
    assert "tasks" not in other.conditions
    assert "n_train" not in other.base["data"]  # the new source's own split sizes
    run = next(iter(expand(other).runs.values()))
    assert run.config["data"]["source"] == "digits" and run.config["model"]["tasks"] is None


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--preset", "quik"], "Unknown study preset 'quik'. Did you mean 'quick'?"),
        (["--address", "ray://x:10001"], "--address and --gpus-per-run apply to --backend ray"),
        (["--workers", "0"], "--workers must be at least 1"),
        (["--spec", "missing.yaml"], "does not exist"),
    ],
)
def test_cli_user_errors_exit_2(tmp_path, capsys, argv, needle):
    status = main(["study", *argv, "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert status == 2 and needle in err and "Traceback" not in err


def test_cli_refuses_a_study_dir_holding_another_spec(tmp_path, capsys):
    out = tmp_path / "s"
    out.mkdir()
    (out / "study.yaml").write_text("name: other\n")
    assert main(["study", "--preset", "quick", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "holds a different study" in err and "study.yaml" in err
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "file.txt").write_text("x")
    assert main(["study", "--out", str(tmp_path / "junk")]) == 2
    assert "is not a study directory" in capsys.readouterr().err


def test_label_count_axis_sets_n_labelled_and_runs_from_few_labels_to_all():
    raw = spec_with(conditions={"label_count": ["all", 40, 8]},
                    base={**BASE["base"], "data": {**BASE["base"]["data"], "label_balance": "per_class"}})
    spec = parse_spec(raw)
    assert spec.conditions["label_count"] == [8, 40, "all"]
    plan = expand(spec)
    by_point = {}
    for cell in plan.cells:
        by_point.setdefault(cell.point, plan.runs[cell.run_id].config["data"]["n_labelled"])
    assert list(by_point.values()) == [8, 40, None]


def test_label_count_and_label_fraction_together_is_a_clear_error():
    raw = spec_with(conditions={"label_count": [8, 40]},
                    base={**BASE["base"], "data": {**BASE["base"]["data"], "label_fraction": 0.5}})
    with pytest.raises(UserError, match="set only one"):
        parse_spec(raw)


def test_hypotheses_are_validated():
    good = {"name": "heads", "variant": "mt", "baseline": "vae",
            "metric": "task/{task}/accuracy", "baseline_metric": "probe/{task}/accuracy"}
    spec = parse_spec(spec_with(hypotheses=[good, {**good, "name": "ni", "test":
                                                   "noninferiority", "margin": 0.02}]))
    assert [h.test for h in spec.hypotheses] == ["superiority", "noninferiority"]
    bad = {
        "is not a variant": {**good, "baseline": "vea"},
        "not an outcome metric": {**good, "metric": "probe/n_dims"},
        "needs a margin > 0": {**good, "test": "noninferiority"},
        "both 'mt'": {**good, "baseline": "mt"},
    }
    for needle, hypothesis in bad.items():
        with pytest.raises(UserError, match=needle):
            parse_spec(spec_with(hypotheses=[hypothesis]))
    with pytest.raises(UserError, match="declared twice"):
        parse_spec(spec_with(hypotheses=[good, good]))


def test_other_image_data_drops_the_variants_task_lists_and_keeps_an_absolute_path(tmp_path,
                                                                                   monkeypatch):
    monkeypatch.chdir(tmp_path)
    quick = with_data(load_preset("quick"), "celeba:faces")
    source = f"celeba:{tmp_path / 'faces'}"
    five = ["Smiling", "Male", "Eyeglasses", "Young", "Wearing_Hat"]  # celeba's default tasks
    assert list(quick.datasets) == [source] and quick.datasets[source].tasks == five
    assert "model.tasks" not in quick.variants["m2"].set  # m2's [digit]: celeba's tasks apply
    run = next(r for r in expand(quick).runs.values() if r.model == "mtvae")
    assert run.config["data"]["source"] == source and run.config["model"]["tasks"] == five


def test_the_celeba_preset_keeps_its_attributes_on_your_copy():
    preset = load_preset("celeba")
    plan = expand(preset)
    assert (len(plan.cells), len(plan.runs)) == (75, 69)  # docs/guides/studies.md
    assert len({train_id(r.config) for r in plan.runs.values()}) == 51
    mine = with_data(preset, "celeba:/data/celeba")
    assert list(mine.datasets) == ["celeba:/data/celeba"]
    assert mine.datasets["celeba:/data/celeba"] == preset.datasets["celeba:~/data/celeba"]
    assert mine.conditions == preset.conditions
    npz = with_data(parse_spec(spec_with(datasets={"npz:/a.npz": {"tasks": ["t"]}})), "npz:/b.npz")
    assert npz.datasets["npz:/b.npz"].tasks is None  # another npz file has its own tasks


def test_other_data_drops_the_hypotheses_and_crossings_of_the_task_set_axis():
    """The standard preset's multitask-vs-single-task hypothesis reads its baseline at the
    `single` task set, which other data does not have: it goes with the axis."""
    standard = load_preset("standard", expand=False)
    other = with_data(standard, "digits")
    assert "tasks" not in other.conditions
    assert "multitask-vs-single-task" not in [h.name for h in other.hypotheses]
    assert len(other.hypotheses) == len(standard.hypotheses) - 1
    crossed = spec_with(datasets={"shapes": {"tasks": ["shape"], "task_sets": {"one": ["shape"]}}},
                        conditions={"tasks": ["one"], "beta": [1.0, 4.0],
                                    "label_fraction": [0.5, 1.0]},
                        design="ofat", crossed=[["tasks", "beta", "label_fraction"]])
    assert with_data(parse_spec(crossed), "digits").crossed == [["beta", "label_fraction"]]
    crossed["crossed"] = [["tasks", "beta"]]
    assert with_data(parse_spec(crossed), "digits").crossed == []
