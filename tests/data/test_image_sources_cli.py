"""End to end through the CLI on image files: train, evaluate, sample conditionally and run a
study on celeba:DIR and folder:PATH layouts generated here; the cache serves a second run."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import yaml
from image_layouts import write_celeba, write_folder

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/helpers_runs.py

from helpers_runs import run_cli  # noqa: E402

TINY = [  # the 24-image fixtures: 16 training images, a tiny MLP, a cheap evaluation
    "data.image_size=16", "model.encoder.arch=mlp", "model.encoder.hidden=[16]",
    "model.latent_dim=6", "train.epochs=2", "train.batch_size=8", "train.progress=false",
    "eval.iwae_k=2", "eval.iwae_n=4", "eval.n_grid=4", "eval.gen_samples=8",
    "eval.kid_subsets=2", "eval.disent_max_dims=1", "eval.probe_budgets=[all]",
]


def sets(*settings: str) -> list[str]:
    return [arg for s in settings for arg in ("--set", s)]


def test_train_evaluate_and_sample_an_mtvae_on_celeba(tmp_path, capsys, decodes):
    root = write_celeba(tmp_path / "celeba")
    run = tmp_path / "run"
    train = ["train", "--model", "mtvae", "--data", f"celeba:{root}",
             "--set", "model.tasks=[Smiling,Male]", "--out", run,
             *sets(*TINY, "model.prior=conditional")]
    status, _, err = run_cli(capsys, *train)
    assert status == 0, err
    assert len(decodes) == 24  # every image decoded once
    assert "decoding images" not in err  # the progress bar only on a terminal
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["data"]["source"] == f"celeba:{root}" and config["model"]["tasks"] == ["Smiling", "Male"]

    status, out, err = run_cli(capsys, "evaluate", run)
    assert status == 0 and "task/Smiling/accuracy" in out, err
    results = json.loads((run / "results.json").read_text())
    assert {"task/Smiling/accuracy", "task/Male/accuracy", "recon/bce"} <= set(results)
    status, _, err = run_cli(capsys, "sample", run, "--n", 4, "--out", tmp_path / "smiling.png",
                             "--condition", "Smiling=1")
    assert status == 0 and (tmp_path / "smiling.png").is_file(), err
    assert len(decodes) == 24  # evaluation and sampling read the cache

    status, _, err = run_cli(capsys, *train[:-2 - 2 * (len(TINY) + 1)], "--out", tmp_path / "again",
                             *sets(*TINY))
    assert status == 0, err
    assert len(decodes) == 24  # a second run starts from the cache: nothing decoded


def test_an_unknown_attribute_exits_2_listing_the_40_before_decoding(tmp_path, capsys, decodes):
    root = write_celeba(tmp_path / "celeba")
    status, _, err = run_cli(capsys, "train", "--model", "mtvae", "--data", f"celeba:{root}",
                             "--set", "model.tasks=[Smiling,Smilling]", "--out", tmp_path / "run",
                             *sets(*TINY))
    assert status == 2
    assert "Smilling" in err and "Did you mean 'Smiling'?" in err and "Wearing_Necktie" in err
    assert not decodes and not (tmp_path / "run").exists()


def test_a_bad_image_exits_2_naming_it_and_writes_nothing(tmp_path, capsys, decodes):
    root = write_folder(tmp_path / "imgs")
    (root / "img05.jpg").write_bytes(b"\xff\xd8\xff truncated")
    argv = ["train", "--model", "vae", "--data", f"folder:{root}", "--out", tmp_path / "run",
            *sets(*TINY)]
    status, _, err = run_cli(capsys, *argv)
    assert status == 2 and "img05.jpg" in err and "data.skip_unreadable=true" in err
    assert not (tmp_path / "run").exists()
    status, _, err = run_cli(capsys, *argv, "--set", "data.skip_unreadable=true")
    assert status == 0, err


def test_a_study_spec_runs_on_a_folder_of_images(tmp_path, capsys, decodes):
    root = write_folder(tmp_path / "imgs")
    spec = {
        "name": "folder-tiny",
        "datasets": {"shapes": {"tasks": ["shape"]}},
        "base": {"data": {"image_size": 16},
                 "model": {"latent_dim": 10, "encoder": {"arch": "mlp", "hidden": [16]}},
                 "train": {"epochs": 1, "batch_size": 8},
                 "eval": {"iwae_k": 2, "iwae_n": 4, "n_grid": 4}},
        "variants": {"vae": {"model": "vae"},
                     "mt": {"model": "mtvae", "set": {"model.task_dim": 2},
                            "baselines": {"reconstruction": "vae", "representation": "vae"}}},
        "seeds": [0],
        "metrics": ["recon", "task"],
    }
    spec_file = tmp_path / "tiny.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    out = tmp_path / "study"
    status, _, err = run_cli(capsys, "study", "--spec", spec_file, "--data", f"folder:{root}",
                             "--out", out, "--workers", 1, "--threads", 1)
    assert status == 0, err
    with sqlite3.connect(out / "results.db") as db:
        rows = db.execute("SELECT status, metrics FROM runs").fetchall()
    assert len(rows) == 2 and {r[0] for r in rows} == {"done"}
    metrics = [json.loads(m) for _, m in rows]
    assert any("task/colour/accuracy" in m and "task/size/r2" in m for m in metrics)
    assert (out / "report" / "index.html").is_file()
    assert yaml.safe_load((out / "study.yaml").read_text())["datasets"] == {
        f"folder:{root}": {"set": {}, "task_sets": {}, "tasks": None}}


def test_the_quick_preset_on_celeba_gives_m2_a_binary_attribute(tmp_path, decodes):
    from mtvae.config import resolve_config
    from mtvae.data.sources import load_dataset
    from mtvae.models.registry import build_model
    from mtvae.study.expand import expand
    from mtvae.study.spec import load_preset, with_data

    root = write_celeba(tmp_path / "celeba")
    plan = expand(with_data(load_preset("quick"), f"celeba:{root}"))
    m2_runs = [run for run in plan.runs.values() if run.model == "m2"]
    assert len(m2_runs) == 2 * 8  # label counts x seeds
    five = ["Smiling", "Male", "Eyeglasses", "Young", "Wearing_Hat"]  # celeba's default tasks
    assert all(run.config["model"]["tasks"] == five for run in m2_runs)  # the digit is dropped
    config = resolve_config(next(r for r in m2_runs if r.config["data"]["n_labelled"] is None)
                            .config)
    model = build_model(config.model, load_dataset(config.data).info)
    assert model.task == "Smiling"  # the first discrete task it is given: an attribute
    assert model.tasks[model.task].task_kind.as_categorical().n_values == model.n_classes == 2


def test_a_study_with_m2_runs_on_celeba_attributes(tmp_path, capsys, decodes):
    root = write_celeba(tmp_path / "celeba")
    spec = {
        "name": "celeba-m2-tiny",
        "datasets": {"digits": {"tasks": ["digit"]}},
        "base": {"data": {"image_size": 16},
                 "model": {"latent_dim": 6, "encoder": {"arch": "mlp", "hidden": [16]}},
                 "train": {"epochs": 1, "batch_size": 8},
                 "eval": {"iwae_k": 2, "iwae_n": 4, "n_grid": 4}},
        "variants": {"vae": {"model": "vae"},
                     "m2": {"model": "m2", "set": {"model.tasks": ["digit"]}},
                     "supervised": {"model": "supervised"}},
        "hypotheses": [{"name": "heads-vs-m2", "variant": "supervised", "baseline": "m2",
                        "metric": "task/{task}/accuracy"}],
        "seeds": [0],
        "metrics": ["recon", "nll", "task"],
    }
    spec_file = tmp_path / "tiny.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    out = tmp_path / "study"
    status, _, err = run_cli(capsys, "study", "--spec", spec_file, "--data", f"celeba:{root}",
                             "--out", out, "--workers", 1, "--threads", 1)
    assert status == 0, err
    with sqlite3.connect(out / "results.db") as db:
        rows = dict(db.execute("SELECT variant, metrics FROM runs WHERE status = 'done'"))
    assert set(rows) == {"vae", "m2", "supervised"}  # every run done, M2's included
    m2 = json.loads(rows["m2"])
    assert {"task/Smiling/accuracy", "chance/Smiling/accuracy", "nll/iwae"} <= set(m2)
    assert not any(k.startswith("task/") and "Smiling" not in k for k in m2)
    assert (out / "report" / "index.html").is_file()
