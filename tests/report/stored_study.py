"""A synthetic study directory: a results.db written directly, no training (the report tests' fixtures are registered in conftest.py)."""

from __future__ import annotations

import copy
import io
import json
import time

import numpy as np
import pytest

from mtvae.study.expand import expand
from mtvae.study.spec import parse_spec
from mtvae.study.store import Store

HOSTILE_NAME = "<script>alert('study')</script> & co"
HOSTILE_VARIANT = "mt<b>bold</b>"

SPEC = {
    "name": HOSTILE_NAME,
    "description": "A synthetic study <i>for tests</i>.",
    "datasets": {"shapes": {"tasks": ["shape", "x"]}},
    "base": {"data": {"n_train": 64, "n_val": 16, "n_test": 16, "image_size": 16},
             "model": {"latent_dim": 6, "encoder": {"arch": "mlp", "hidden": [16]}}},
    "variants": {
        "vae": {"model": "vae"},
        HOSTILE_VARIANT: {"model": "mtvae", "baselines": {"reconstruction": "vae",
                                                          "representation": "vae",
                                                          "task": "sup"}},
        "sup": {"model": "supervised"},
    },
    "conditions": {"label_fraction": [0.1, 1.0]},
    "seeds": [0, 1, 2],
    "metrics": ["recon", "nll", "task"],
}


def png(seed: int) -> bytes:
    from matplotlib import pyplot as plt

    buffer = io.BytesIO()
    plt.imsave(buffer, np.random.default_rng(seed).random((20, 20)), format="png", cmap="gray")
    return buffer.getvalue()


def fake_metrics(model: str, fraction: float, seed: int) -> dict[str, float]:
    rng = np.random.default_rng([seed, len(model)])  # each model its own seed noise
    noise = lambda: float(rng.normal(0, 0.01))  # noqa: E731
    out: dict[str, float] = {"time/train_s": 1.0 + seed, "chance/shape/accuracy": 0.34}
    if model != "supervised":
        out |= {"recon/mse": (0.02 if model == "mtvae" else 0.03) + noise(),
                "nll/iwae": 60 + noise(), "nll/iwae_k": 100, "kl": 5.0,
                "probe/shape/accuracy": 0.6 + 0.2 * fraction + noise(), "probe/n_dims": 6,
                "ood/recon/mse": (0.04 if model == "mtvae" else 0.05) + noise()}
    if model != "vae":
        out |= {"task/shape/accuracy": 0.5 + 0.3 * fraction + noise(),
                "task/x/mae": 0.1 + noise() ** 2}
    if model == "mtvae":
        out |= {"leakage/shared/shape": 0.4, "leakage/shared/x": 0.2, "leakage/shape/shape": 0.9,
                "leakage/shape/x": 0.1, "leakage/x/shape": 0.35, "leakage/x/x": 0.95}
    return out


@pytest.fixture
def hostile():
    """The study and variant names the synthetic study uses (HTML that must be escaped)."""
    return HOSTILE_NAME, HOSTILE_VARIANT


@pytest.fixture
def synthetic_study(tmp_path):
    """A study directory with only study.yaml and results.db (no runs/ folder)."""
    return write_study(tmp_path / "study", SPEC)


@pytest.fixture
def make_study(tmp_path):
    """``make_study(name, variant, description)``: the synthetic study under other names (the
    study's, its description and the MT-VAE variant's)."""
    def make(name: str, variant: str, description: str, folder: str = "named"):
        raw = copy.deepcopy(SPEC) | {"name": name, "description": description}
        raw["variants"] = {variant if v == HOSTILE_VARIANT else v: dict(s)
                           for v, s in raw["variants"].items()}
        return write_study(tmp_path / folder, raw)

    return make


def borderline_metrics(model: str, fraction: float, seed: int) -> dict[str, float]:
    """Small effects next to the noise: many cells whose unadjusted 95% interval excludes 0
    while the simultaneous one does not."""
    rng = np.random.default_rng([seed, len(model), int(fraction * 1000)])
    effect = 0.012 if model == "mtvae" else 0.0
    out = {"chance/shape/accuracy": 0.34}
    if model != "supervised":
        out |= {"nll/iwae": 60 - 10 * effect + float(rng.normal(0, 0.1)),
                "probe/shape/accuracy": 0.7 + float(rng.normal(0, 0.01))}
    if model != "vae":
        out |= {"task/shape/accuracy": 0.7 + effect + float(rng.normal(0, 0.01))}
    return out


@pytest.fixture
def borderline_study(tmp_path):
    """The synthetic study at six label fractions with effects next to the noise."""
    raw = copy.deepcopy(SPEC) | {"conditions": {"label_fraction": [0.1, 0.2, 0.3, 0.5, 0.7,
                                                                  1.0]}}
    return write_study(tmp_path / "borderline", raw, borderline_metrics)


SINGLE_SETS = {"related": ["shape", "x"], "single": ["shape"]}


def single_task_metrics(run, metrics: dict) -> dict:
    """The MT-VAE's shape head 0.048, 0.05, 0.052 (seeds 0, 1, 2) better with both tasks than
    alone."""
    if run.model == "mtvae" and len(run.config["model"]["tasks"]) > 1:
        metrics["task/shape/accuracy"] += 0.05 + 0.002 * (run.seed - 1)
    return metrics


@pytest.fixture
def single_task_study(tmp_path):
    """The synthetic study with a tasks axis whose ``single`` level learns shape alone."""
    raw = copy.deepcopy(SPEC) | {"conditions": {"label_fraction": [0.1, 1.0],
                                                "tasks": ["related", "single"]}}
    raw["datasets"]["shapes"]["task_sets"] = SINGLE_SETS
    return write_study(tmp_path / "single", raw, adjust=single_task_metrics)


def write_study(out, raw: dict, metrics=fake_metrics, adjust=None):
    """Write study ``raw`` (a spec dict) into the new folder ``out``: its results.db only;
    ``metrics(model, label_fraction, seed)`` gives each run's metrics, ``adjust(run, metrics)``
    (when given) changes them by the run's config."""
    spec = parse_spec(raw)
    plan = expand(spec)
    out.mkdir()
    store = Store(out / "results.db")
    store.set_meta("spec", spec.model_dump(mode="json"))
    store.add_plan(plan.runs.values(), plan.cells)
    for rid, run in plan.runs.items():
        store.mark_running(rid)
        fraction = run.config["data"]["label_fraction"]
        curve = [{"epoch": e, "train/loss": 10 / e + run.seed, "val/loss": 11 / e}
                 for e in (1, 2, 3)]
        artifacts = {"curve": ("json", json.dumps(curve).encode())}
        if run.seed == 0 and run.model != "supervised":
            artifacts |= {"figure:reconstructions": ("png", png(1)), "figure:samples":
                          ("png", png(2)), "figure:traversals": ("png", png(3))}
        store.record({"run_id": rid, "status": "done", "wall_s": 2.0, "train_s": 1.0,
                      "eval_s": 0.5, "metrics": (adjust or (lambda _, m: m))(
                          run, metrics(run.model, fraction, run.seed)),
                      "artifacts": artifacts})
    store.set_meta("sessions", [{"started": time.time(), "workers": 2, "threads": 1,
                                 "backend": "local", "runs": len(plan.runs), "wall_s": 30.0,
                                 "hardware": {"cpu": "test CPU", "cores": 2, "gpu": None,
                                              "python": "3.11", "torch": "2", "mtvae": "0.1",
                                              "platform": "test"}}])
    store.close()
    return out
