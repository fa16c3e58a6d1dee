"""The tasks a study learns on new data, and the check that its models can hold them.

A source may declare default tasks (CelebA: five of its 40 attributes) that a study naming none
learns; an MT-VAE whose latent cannot hold one block per task is refused when the study is
planned (or before ``mtvae train`` decodes anything), with the fixes, instead of failing run by
run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from image_layouts import write_celeba, write_folder

from mtvae.data.celeba import DEFAULT_ATTRIBUTES
from mtvae.data.config import DataConfig
from mtvae.data.sources import load_dataset
from mtvae.errors import UserError
from mtvae.models.capacity import task_capacity_problem
from mtvae.models.registry import build_model
from mtvae.runconfig import resolve_config
from mtvae.study.spec import load_preset, parse_spec, with_data

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/helpers_runs.py

from helpers_runs import run_cli  # noqa: E402

FIVE = list(DEFAULT_ATTRIBUTES)


def wide_folder(root: Path, extra: int = 5) -> Path:
    """``write_folder``'s 12 images and 4 label columns plus ``extra`` binary columns
    ``flag0``.. (9 tasks by default: 18 dimensions of MT-VAE task blocks)."""
    write_folder(root, n=12)
    table = root / "labels.csv"
    header, *rows = table.read_text().splitlines()
    header += "".join(f",flag{j}" for j in range(extra))
    rows = [row + "".join(f",{(i + j) % 2}" for j in range(extra)) for i, row in enumerate(rows)]
    table.write_text("\n".join([header, *rows]) + "\n")
    return root


def test_the_celeba_preset_learns_the_celeba_sources_default_attributes():
    preset = load_preset("celeba", expand=False)
    (dataset,) = preset.datasets.values()
    assert FIVE == ["Smiling", "Male", "Eyeglasses", "Young", "Wearing_Hat"]
    assert dataset.tasks == FIVE and dataset.task_sets["all"] == FIVE


def test_a_celeba_dataset_naming_no_tasks_gets_the_default_and_named_tasks_are_kept():
    spec = {"name": "s", "variants": {"mt": {"model": "mtvae"}}, "seeds": [0]}
    for datasets in (["celeba:/faces"], {"celeba:/faces": None}, {"celeba:/faces": {}}):
        parsed = parse_spec({**spec, "datasets": datasets}, expand=False)
        assert parsed.datasets["celeba:/faces"].tasks == FIVE
    named = parse_spec({**spec, "datasets": {"celeba:/faces": {"tasks": ["Bald"]}}}, expand=False)
    assert named.datasets["celeba:/faces"].tasks == ["Bald"]
    other = parse_spec({**spec, "datasets": ["npz:/a.npz", "shapes"]}, expand=False)
    assert all(d.tasks is None for d in other.datasets.values())  # no default: every task


def test_the_quick_preset_on_celeba_learns_the_five_attributes_and_every_model_builds(
        tmp_path, decodes):
    # Red before the default: the MT-VAE runs learned all 40 attributes and their build raised
    # "model.latent_dim=10 is too small for 40 task blocks" (each run failed in the study).
    root = write_celeba(tmp_path / "celeba")
    spec = with_data(load_preset("quick"), f"celeba:{root}")
    runs = list(spec.plan().runs.values())
    learns = {(r.model, tuple(r.config["model"].get("tasks") or ())) for r in runs}
    assert {(m, tuple(FIVE)) for m in ("mtvae", "supervised", "m2")} <= learns
    assert {m for m, tasks in learns if tasks != tuple(FIVE)} <= {"vqvae"}  # no task option
    data = load_dataset(DataConfig(source=f"celeba:{root}", image_size=28))
    assert len(data.info.tasks) == 40
    for run in runs:  # 48 runs, one per cell; each model builds on the data
        model = build_model(resolve_config(run.config).model, data.info)
        if run.model in ("mtvae", "supervised"):
            assert list(model.tasks) == FIVE
        if run.model == "m2":
            assert model.task == "Smiling"  # the first of the five, as two classes


def test_a_folder_table_with_many_columns_is_refused_when_the_study_is_planned(
        tmp_path, capsys, decodes):
    # Red before the check: the study started, and each of its 12 MT-VAE runs failed at build.
    root = wide_folder(tmp_path / "cells")
    out = tmp_path / "study"
    status, _, err = run_cli(capsys, "study", "--preset", "quick", "--data", f"folder:{root}",
                             "--out", out, "--workers", 1, "--threads", 1)
    assert status == 2
    message = " ".join(err.split())
    for part in ("variant 'mtvae'", "would learn 9 tasks", f"every task of folder:{root}",
                 "model.latent_dim=10 holds at most 5 task blocks of model.task_dim=2",
                 "raise model.latent_dim to at least 18",
                 f"`datasets: {{folder:{root}: {{tasks: [kind, count, size]}}}}`, and run it "
                 "with --spec"):
        assert part in message, message
    assert not out.exists() and decodes == []  # nothing written, no image decoded


def test_naming_the_tasks_in_a_spec_or_widening_the_latent_lets_the_study_plan(tmp_path,
                                                                               monkeypatch):
    root = wide_folder(tmp_path / "cells")
    quick = load_preset("quick", expand=False).model_dump(mode="json")
    named = {**quick, "datasets": {f"folder:{root}": {"tasks": ["kind", "flag0", "flag1"]}}}
    named["variants"]["m2"]["set"].pop("model.tasks")
    named["variants"].pop("single")  # the MT-VAE on MNIST's digit alone
    named["hypotheses"] = [h for h in named["hypotheses"] if h["baseline"] != "single"]
    plan = parse_spec(named).plan()
    assert {tuple(r.config["model"]["tasks"]) for r in plan.runs.values()
            if r.model == "mtvae"} == {("kind", "flag0", "flag1")}
    monkeypatch.chdir(tmp_path)  # --data naming the spec's folder (a relative path) keeps them
    relative = {**named, "datasets": {"folder:cells": named["datasets"][f"folder:{root}"]}}
    kept = with_data(parse_spec(relative, expand=False), "folder:cells")
    assert kept.datasets == {f"folder:{root}": parse_spec(named).datasets[f"folder:{root}"]}
    widened = load_preset("quick", expand=False).model_dump(mode="json")
    widened["base"]["model"]["latent_dim"] = 18  # 9 blocks of 2 (10 is refused, above)
    spec = with_data(parse_spec(widened, expand=False), f"folder:{root}")
    assert all(r.config["model"].get("tasks") is None for r in spec.plan().runs.values())


def test_mtvae_train_refuses_too_many_tasks_before_decoding_or_making_the_run(
        tmp_path, capsys, decodes):
    celeba = write_celeba(tmp_path / "celeba")
    out = tmp_path / "run"
    status, _, err = run_cli(capsys, "train", "--model", "mtvae", "--data", f"celeba:{celeba}",
                             "--out", out)
    message = " ".join(err.split())
    assert status == 2 and not out.exists() and decodes == []
    assert (f"model 'mtvae' would learn 40 tasks (every task of celeba:{celeba}), but "
            "model.latent_dim=10 holds at most 5 task blocks of model.task_dim=2, not 40; "
            "raise model.latent_dim to at least 80") in message, message
    assert "--set 'model.tasks=[Smiling,Male,Eyeglasses,Young,Wearing_Hat]'" in message
    status, _, err = run_cli(capsys, "train", "--model", "mtvae", "--data", f"celeba:{celeba}",
                             "--out", out, "--set", f"model.tasks={FIVE + ['Bald']}".replace("'", ""))
    assert status == 2 and "would learn 6 tasks (named in model.tasks)" in " ".join(err.split())


def test_an_npz_with_many_tasks_is_refused_when_the_study_is_planned(tmp_path):
    path = tmp_path / "many.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.random((20, 8, 8), dtype=np.float32),
             **{f"y_t{j}": rng.integers(0, 2, 20) for j in range(6)})
    with pytest.raises(UserError, match=r"variant 'mtvae' on npz:.*would learn 6 tasks"):
        with_data(load_preset("quick"), f"npz:{path}")


@pytest.mark.parametrize(("n_tasks", "fits"), [(5, True), (6, False)])
def test_the_plan_check_and_the_models_build_agree_at_the_limit(tmp_path, n_tasks, fits):
    path = tmp_path / "tasks.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.random((20, 8, 8), dtype=np.float32),
             **{f"y_t{j}": rng.integers(0, 2, 20) for j in range(n_tasks)})
    config = resolve_config({"data": {"source": f"npz:{path}"},
                             "model": {"name": "mtvae", "latent_dim": 10, "task_dim": 2,
                                       "encoder": {"arch": "mlp", "hidden": [8]}}})
    info = load_dataset(config.data).info
    assert (task_capacity_problem(config.model, config.data) is None) == fits
    if fits:
        assert len(build_model(config.model, info).tasks) == n_tasks
    else:
        with pytest.raises(UserError, match="holds at most 5 task blocks"):
            build_model(config.model, info)
    for unbounded in ({"name": "mtvae", "layout": "shared"}, {"name": "mtvqvae"},
                      {"name": "supervised"}, {"name": "vae"}):
        model = resolve_config({"data": {"source": f"npz:{path}"}, "model": unbounded}).model
        assert task_capacity_problem(model, config.data) is None


def test_too_many_named_tasks_are_refused_with_a_few_of_them_as_the_example(tmp_path):
    spec = {"name": "s", "datasets": {"mnist": {"tasks": ["digit", "parity", "thickness",
                                                          "slant", "width", "height"]}},
            "base": {"model": {"latent_dim": 10}}, "variants": {"mt": {"model": "mtvae"}},
            "seeds": [0]}
    with pytest.raises(UserError) as err:
        parse_spec(spec)
    message = str(err.value)
    assert "variant 'mt' on mnist: model 'mtvae' would learn 6 tasks (named in model.tasks)" \
        in message and "`datasets: {mnist: {tasks: [digit, parity, thickness]}}`" in message
