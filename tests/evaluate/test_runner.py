"""The evaluate runner: families by capability, task metrics, MT-VAE figures, conditional CLI."""

import json

import pytest

from mtvae.cli import main
from mtvae.config import resolve_config
from mtvae.data.shapes import load_shapes
from mtvae.errors import UserError
from mtvae.evaluate.runner import parse_metrics
from mtvae.pipeline import evaluate_run, train_run

TINY = {"n_train": 96, "n_val": 16, "n_test": 16, "image_size": 16}
BODY = {"arch": "mlp", "hidden": [32]}


def _train(tmp_path, model):
    config = resolve_config({
        "data": TINY,
        "model": {"encoder": BODY, **model},
        "train": {"epochs": 1, "batch_size": 32, "progress": False},
        "eval": {"iwae_k": 4, "iwae_n": 8},
    })
    return train_run(config, tmp_path / model["name"], dataset=load_shapes(96, 16, 16, 16))


def test_mtvae_evaluation_writes_task_metrics_and_conditional_figures(tmp_path):
    run = _train(tmp_path, {"name": "mtvae", "latent_dim": 6, "tasks": ["shape", "x"],
                            "prior": "conditional"})
    results = evaluate_run(run)
    for key in ["recon/mse", "nll/iwae", "task/shape/accuracy", "task/shape/balanced_accuracy",
                "task/x/mae", "task/x/r2"]:
        assert key in results
    assert 0.0 <= results["task/shape/accuracy"] <= 1.0
    stored = json.loads((run / "results.json").read_text())
    assert stored["task/x/mae"] == pytest.approx(results["task/x/mae"])
    assert "time/train_s" in stored  # training results are kept
    assert (run / "figures/intervention_shape.png").is_file()
    assert (run / "figures/conditional_shape.png").is_file()
    assert not (run / "figures/intervention_x.png").exists()  # regression: no class grid


def test_supervised_skips_generative_families_with_a_reason(tmp_path):
    run = _train(tmp_path, {"name": "supervised", "tasks": ["shape"]})
    lines = []
    results = evaluate_run(run, metrics="recon,nll,task,gen", log=lines.append)
    assert set(results) == {"task/shape/accuracy", "task/shape/balanced_accuracy",
                            "chance/shape/accuracy"}  # the task family alone ran
    assert any(line.startswith("skipped recon: Supervised has no reconstruct") for line in lines)
    assert any(line.startswith("skipped nll:") for line in lines)
    assert "skipped gen: Supervised has no sample, image_shape" in lines


def test_vae_skips_task_family(tmp_path):
    run = _train(tmp_path, {"name": "vae", "latent_dim": 4})
    lines = []
    results = evaluate_run(run, metrics="recon,task", log=lines.append)
    assert "recon/mse" in results and not any(k.startswith("task/") for k in results)
    assert lines == ["skipped task: VAE has no predict, tasks"]


def test_unknown_metric_family_is_a_user_error():
    with pytest.raises(UserError, match="Choose 'all' or a comma list"):
        parse_metrics("recon,bogus")


def test_conditional_sampling_from_the_cli(tmp_path, capsys):
    run = _train(tmp_path, {"name": "mtvae", "latent_dim": 6, "tasks": ["shape"],
                            "prior": "conditional"})
    assert main(["sample", str(run), "--n", "4", "--out", str(tmp_path / "s.png"),
                 "--condition", "shape=2"]) == 0
    assert (tmp_path / "s.png").is_file()
    for bad, message in [("shape=9", "not a class"), ("shape", "expected TASK=NUMBER"),
                         ("colour=1", "Unknown task to condition on")]:
        assert main(["sample", str(run), "--n", "4", "--out", str(tmp_path / "t.png"),
                     "--condition", bad]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "t.png").exists()


def test_val_family_scores_the_heads_on_the_validation_split(tmp_path):
    from mtvae.data.shapes import load_shapes as shapes
    from mtvae.evaluate.catalogue import is_outcome, lookup
    from mtvae.evaluate.tasks import task_metrics
    from mtvae.run_directory import load

    run = _train(tmp_path, {"name": "mtvae", "latent_dim": 6, "tasks": ["shape", "x"]})
    results = evaluate_run(run, metrics="task,val")
    val = {k: v for k, v in results.items() if k.startswith("val/")}
    assert set(val) == {"val/task/shape/accuracy", "val/task/shape/balanced_accuracy",
                        "val/task/x/mae", "val/task/x/r2"}  # no chance level: task/ keys only
    model, _ = load(run)
    expected = task_metrics(model, shapes(96, 16, 16, 16).val)
    assert val["val/task/shape/accuracy"] == pytest.approx(expected["task/shape/accuracy"])
    assert lookup("val/task/shape/accuracy").pattern == "val/task/*"
    assert not is_outcome("val/task/shape/accuracy")  # tuned on, never compared
