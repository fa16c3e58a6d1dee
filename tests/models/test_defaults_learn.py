"""The defaults learn the tasks: balanced task terms, z-scored regression targets, padded conv
bodies, labelled oversampling when labels are scarce, and a warning for heads at chance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtvae.autoconf import labelled_per_batch, resolve_auto
from mtvae.config import resolve_config
from mtvae.data.dataset import DataInfo, Dataset, Split, regression_stats
from mtvae.data.npz import load_npz
from mtvae.data.sources import load_dataset
from mtvae.data.task_kinds import Categorical, Regression
from mtvae.data.tasks import TaskSpec
from mtvae.evaluate.chance_warnings import at_chance, chance_warnings
from mtvae.evaluate.probes import linear_probe
from mtvae.evaluate.tasks import task_metrics
from mtvae.models.mtvae import MTVAE, MTVAEConfig
from mtvae.models.supervised import SupervisedConfig
from mtvae.models.task_heads import resolved_task_scale
from mtvae.nn.bodies import BodyConfig, conv_padding
from mtvae.objectives.task_losses import TargetScaling
from mtvae.pipeline import train_run
from mtvae.run_directory import load

MLP = {"arch": "mlp", "hidden": [64]}


def bar_images(n: int, side: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Images of one horizontal bar: its length (4-10 px, natural units) and its row (8 classes)."""
    rng = np.random.default_rng(seed)
    length = rng.uniform(4, 10, size=n)
    row = rng.integers(0, 8, size=n)
    x = np.zeros((n, side, side), dtype=np.uint8)
    for i in range(n):
        start = rng.integers(0, side - 10)
        top = 1 + row[i] * (side - 3) // 8
        x[i, top : top + 2, start : start + int(round(length[i]))] = 255
    return {"x": x, "y_length": length.astype(np.float32), "y_row": row}


def save_bars(path, n=600, side=24, seed=0, **extra):
    arrays = bar_images(n, side, seed)
    for name, fn in extra.items():
        arrays[name] = fn(arrays)
    np.savez(path, **arrays)
    return f"npz:{path}"


def run_config(model: str, source: str, **sets):
    raw = {"seed": 0, "data": {"source": source}, "model": {"name": model},
           "train": {"epochs": 3, "batch_size": 64, "progress": False}}
    for key, value in sets.items():
        section, _, name = key.partition("__")
        node = raw.setdefault(section, {})
        for part in name.split("__")[:-1]:
            node = node.setdefault(part, {})
        node[name.split("__")[-1]] = value
    return resolve_config(raw)


def train_and_score(tmp_path, name, config):
    run = train_run(config, tmp_path / name)
    model, cfg = load(run)
    return task_metrics(model, load_dataset(cfg.data).test)


# --- standardised regression targets ------------------------------------------------------
def test_target_scaling_round_trips_and_leaves_other_tasks_alone():
    tasks = {"y": TaskSpec("y", "regression"), "c": TaskSpec("c", "categorical", 3)}
    scaling = TargetScaling(tasks, {"y": (1000.0, 50.0)})
    targets = {"y": torch.tensor([950.0, 1000.0, 1100.0]), "c": torch.tensor([0, 2, 1])}
    z = scaling.standardize(targets)
    assert torch.allclose(z["y"], torch.tensor([-1.0, 0.0, 2.0]))
    assert torch.equal(z["c"], targets["c"])
    assert torch.allclose(scaling.unstandardize("y", z["y"]), targets["y"])
    assert scaling.standardize_value("y", 1050.0) == pytest.approx(1.0)
    assert set(scaling.state_dict()) == {"mean_y", "std_y"}  # saved with the weights


def test_regression_stats_use_only_labelled_training_targets():
    tasks = {"y": TaskSpec("y", "regression"), "k": TaskSpec("k", "regression")}
    targets = {"y": torch.tensor([1.0, 3.0, 1e6, float("nan")]), "k": torch.full((4,), 7.0)}
    masks = {"y": torch.tensor([True, True, False, False]), "k": torch.ones(4, dtype=torch.bool)}
    stats = regression_stats(tasks, targets, masks)
    assert stats["y"] == pytest.approx((2.0, np.sqrt(2.0)))
    assert stats["k"] == (7.0, 1.0)  # constant labels: nothing to scale


@pytest.mark.parametrize("model", ["mtvae", "supervised"])
def test_shifting_and_scaling_a_target_changes_no_metric_but_the_units(tmp_path, model):
    plain = save_bars(tmp_path / "plain.npz", side=16)
    moved = save_bars(tmp_path / "moved.npz", side=16,
                      y_length=lambda a: 1000 + 50 * a["y_length"])
    sets = {"model__encoder": MLP, "model__tasks": ["length"]}
    a = train_and_score(tmp_path, "a", run_config(model, plain, **sets))
    b = train_and_score(tmp_path, "b", run_config(model, moved, **sets))
    assert b["task/length/r2"] == pytest.approx(a["task/length/r2"], abs=1e-3)
    assert b["task/length/mae"] == pytest.approx(50 * a["task/length/mae"], rel=1e-3)


def test_linear_probe_r2_is_invariant_to_the_target_units():
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(300, 5))
    y = codes @ rng.normal(size=5) + 0.3 * rng.normal(size=300)
    a = linear_probe(codes[:200], y[:200], codes[200:], y[200:], Regression())
    b = linear_probe(codes[:200], 1e6 + 5e4 * y[:200], codes[200:], 1e6 + 5e4 * y[200:],
                     Regression())
    assert b["r2"] == pytest.approx(a["r2"], abs=1e-9)
    assert b["mae"] == pytest.approx(5e4 * a["mae"], rel=1e-6)


def test_conditional_prior_conditions_in_user_units(tmp_path):
    source = save_bars(tmp_path / "d.npz", side=16, y_length=lambda a: 100 * a["y_length"])
    config = run_config("mtvae", source, model__encoder=MLP, model__tasks=["length"],
                        model__prior="conditional", train__epochs=1)
    model, _ = load(train_run(config, tmp_path / "run"))
    prior = model.priors["length"]
    mean, std = model.scaling.mean_length, model.scaling.std_length
    assert 400 < float(mean) < 1000 and float(std) > 50  # statistics in the user's units
    z_user = model.sample_latent(4, torch.Generator().manual_seed(0), {"length": float(mean)})
    loc0, _ = prior.params(torch.zeros(4))  # the prior at z-score 0 = the mean length
    block = model.blocks["length"]
    assert z_user[:, block].mean(0).sub(loc0[0]).abs().max() < 1.0


# --- conv bodies for common sizes ---------------------------------------------------------
@pytest.mark.parametrize(("side", "pad"), [(24, 8), (28, 4), (32, 0), (40, 8), (8, 8)])
def test_auto_padding_makes_the_default_conv_body_divide_the_image(side, pad):
    body = BodyConfig()
    assert conv_padding(body, (1, side, side)) == pad
    info = DataInfo((1, side, side), {"c": TaskSpec("c", "categorical", 3)})
    model = MTVAE(MTVAEConfig(latent_dim=6, task_dim=2), info)
    x = torch.rand(2, 1, side, side)
    assert model.reconstruct(x).shape == x.shape  # padded for the convs, cropped back


def test_explicit_padding_that_does_not_divide_says_how_to_fix_it():
    info = DataInfo((1, 24, 24), {"c": TaskSpec("c", "categorical", 3)})
    with pytest.raises(ValueError, match="padding=0.*divisible by 16.*padding=auto"):
        MTVAE(MTVAEConfig(encoder=BodyConfig(padding=0)), info)


@pytest.mark.parametrize("side", [24, 28])
def test_npz_images_of_24_and_28_pixels_train_with_the_default_conv_body(tmp_path, side):
    source = save_bars(tmp_path / "d.npz", n=200, side=side)
    config = run_config("mtvae", source, train__epochs=1)
    run = train_run(config, tmp_path / "run")
    written = load(run)[1]
    assert written.model.encoder.padding == (-side) % 16  # the resolved choice is recorded
    assert np.isfinite(task_metrics(load(run)[0], load_npz(source[4:]).test)["task/length/r2"])


# --- balanced by default ------------------------------------------------------------------
def test_auto_settings_resolve_to_numbers_in_the_written_config(tmp_path):
    source = save_bars(tmp_path / "d.npz", n=200, side=24)
    config = run_config("mtvae", source, data__label_fraction=0.1)
    ds = load_dataset(config.data)
    resolved = resolve_auto(config, ds)
    assert resolved.model.task_scale == pytest.approx(57.6)  # 24 * 24 / 10
    assert resolved.model.encoder.padding == 8
    assert resolved.train.labelled_per_batch == 32  # batch 64 // 2: labels are scarce
    assert config.train.labelled_per_batch == "auto"  # the input config is left alone


AUTO_AT_24 = {  # what each model's `auto` settings stand for on 24x24 grey images
    "vae": {"encoder.padding": 8},
    "vqvae": {"encoder.padding": 0},  # two stride-2 layers divide 24
    "mtvae": {"encoder.padding": 8, "task_scale": 57.6},  # 24 * 24 / 10
    "mtvqvae": {"encoder.padding": 0, "task_scale": 57.6},
    "m2": {"encoder.padding": 8, "alpha": 57.6},
    "supervised": {"encoder.padding": 8, "task_scale": 1.0},  # nothing to balance against
}


def test_every_model_config_resolves_its_own_auto_settings(tmp_path):
    """resolve_auto names no model: each config section replaces its own `auto` settings, so
    none is left in any registered model's section."""
    from mtvae.models.registry import MODELS

    assert set(AUTO_AT_24) == set(MODELS)
    ds = load_dataset(run_config("vae", save_bars(tmp_path / "d.npz", n=40, side=24)).data)
    for name, expected in AUTO_AT_24.items():
        model = resolve_auto(run_config(name, f"npz:{tmp_path / 'd.npz'}"), ds).model
        for key, value in expected.items():
            section, _, field = key.rpartition(".")
            assert getattr(getattr(model, section) if section else model, field) == (
                pytest.approx(value)), (name, key)
        assert "auto" not in _leaves(model.model_dump()), name


def _leaves(tree):
    if isinstance(tree, dict):
        return [leaf for value in tree.values() for leaf in _leaves(value)]
    return [tree]


def test_a_config_section_with_a_new_auto_rule_needs_no_edit_of_autoconf(tmp_path):
    from typing import Literal

    from pydantic import Field

    from mtvae.models.vae import VAEConfig

    class Stretched(BodyConfig):
        stretch: int | Literal["auto"] = Field("auto", description="auto: the image width")

        def resolve_auto(self, image_shape):
            super().resolve_auto(image_shape)
            if self.stretch == "auto":
                self.stretch = image_shape[-1]

    config = run_config("vae", save_bars(tmp_path / "d.npz", n=40, side=24))
    config.model = VAEConfig(encoder=Stretched())
    resolved = resolve_auto(config, load_dataset(config.data)).model.encoder
    assert resolved.stretch == 24 and resolved.padding == 8  # its rule and its base's
    assert config.model.encoder.stretch == "auto"  # the input config is left alone


def test_labelled_oversampling_is_on_only_for_heads_with_scarce_labels():
    n = 100
    masks = {"t": torch.arange(n) < 10, "other": torch.ones(n, dtype=torch.bool)}
    split = Split(torch.zeros(n, 1, 4, 4), {"t": torch.zeros(n), "other": torch.zeros(n)}, masks)
    train = resolve_config({"model": {"name": "vae"}}).train
    mt = MTVAEConfig(tasks=["t"])
    assert labelled_per_batch(train, mt, split) == train.batch_size // 2
    assert labelled_per_batch(train, MTVAEConfig(tasks=["other"]), split) == 0  # all labelled
    assert labelled_per_batch(train, SupervisedConfig(tasks=["t"]), split) == 64  # same passes
    assert labelled_per_batch(train, resolve_config({"model": {"name": "vae"}}).model, split) == 0


def test_task_scale_auto_balances_against_the_reconstruction_only():
    assert resolved_task_scale(MTVAEConfig(), (1, 32, 32)) == pytest.approx(102.4)
    assert resolved_task_scale(MTVAEConfig(), (3, 64, 64)) == pytest.approx(3 * 64 * 64 / 10)
    assert resolved_task_scale(SupervisedConfig(), (1, 32, 32)) == 1.0
    assert resolved_task_scale(MTVAEConfig(task_scale=1), (1, 32, 32)) == 1.0  # the plain sum


def test_default_mtvae_heads_learn_mnist_within_reach_of_supervised(tmp_path):
    sets = {"data__label_fraction": 0.1, "model__tasks": ["digit", "thickness"],
            "model__encoder": {"arch": "mlp"}, "train__epochs": 8, "train__batch_size": 128}
    sup = train_and_score(tmp_path, "sup", run_config("supervised", "mnist", **sets))
    mt = train_and_score(tmp_path, "mt", run_config("mtvae", "mnist", **sets))
    plain = train_and_score(tmp_path, "plain", run_config(
        "mtvae", "mnist", **sets, model__task_scale=1, train__labelled_per_batch=0,
        model__heads_read_shared=False))
    assert mt["task/digit/accuracy"] > 0.6 and mt["task/thickness/r2"] > 0.2
    assert mt["task/digit/accuracy"] >= sup["task/digit/accuracy"] - 0.08
    assert mt["task/thickness/r2"] >= sup["task/thickness/r2"] - 0.08
    # the old defaults (the plain sum, no oversampling) are far behind: what the defaults fix
    assert plain["task/digit/accuracy"] < mt["task/digit/accuracy"] - 0.15


def test_a_raw_unit_regression_head_beats_the_mean_and_reaches_supervised(tmp_path):
    source = save_bars(tmp_path / "d.npz", n=1200, side=16)
    sets = {"model__encoder": MLP, "data__label_fraction": 0.2, "train__epochs": 12}
    sup = train_and_score(tmp_path, "sup", run_config("supervised", source, **sets))
    mt = train_and_score(tmp_path, "mt", run_config("mtvae", source, **sets))
    assert mt["task/length/r2"] > 0.4  # lengths of 4-10 px, learned in pixels
    assert mt["task/length/r2"] >= sup["task/length/r2"] - 0.2
    assert mt["task/row/accuracy"] > 0.9


# --- the chance-level warning -------------------------------------------------------------
def test_at_chance_judges_accuracy_against_the_majority_rate_with_its_noise():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, size=400)
    assert at_chance(Categorical(4), y, rng.integers(0, 4, size=400)) is not None  # random guess
    assert at_chance(Categorical(4), y, np.zeros(400, dtype=int)) is not None  # majority guess
    assert at_chance(Categorical(4), y, np.where(rng.random(400) < 0.6, y, 0)) is None
    t = rng.normal(size=400)
    assert "R²" in at_chance(Regression(), t, np.full(400, t.mean() + 0.1))
    assert at_chance(Regression(), t, t + 0.1 * rng.normal(size=400)) is None


class _Fixed:
    """A stand-in model whose heads predict what it is told."""

    def __init__(self, tasks, predictions):
        self.tasks, self.predictions = tasks, predictions

    def eval(self):
        return self

    def predict(self, x):
        return {t: torch.as_tensor(p[: len(x)]) for t, p in self.predictions.items()}


def test_chance_warning_fires_on_a_random_label_task_and_not_on_a_learnable_one():
    rng = np.random.default_rng(1)
    n = 300
    learnable, random = rng.integers(0, 3, n), rng.integers(0, 3, n)
    split = Split(torch.zeros(n, 1, 2, 2), {"shape": torch.as_tensor(learnable),
                                           "random": torch.as_tensor(random)})
    tasks = {t: TaskSpec(t, "categorical", 3) for t in ("shape", "random")}
    guess = rng.integers(0, 3, n)  # what a head that learned nothing predicts
    model = _Fixed(tasks, {"shape": learnable, "random": guess})
    lines = chance_warnings(model, split)
    assert len(lines) == 1 and "'random' head is at chance" in lines[0]
    assert "model.task_scale" in lines[0] and "train.labelled_per_batch" in lines[0]


def test_a_control_task_with_random_labels_is_at_chance_by_design_and_not_warned_about():
    rng = np.random.default_rng(2)
    n = 300
    labels = rng.integers(0, 2, n)
    split = Split(torch.zeros(n, 1, 2, 2), {"random": torch.as_tensor(labels)})
    spec = TaskSpec("random", "categorical", 2, control=True)
    model = _Fixed({"random": spec}, {"random": rng.integers(0, 2, n)})
    assert chance_warnings(model, split) != []  # without the data's task specs: warned
    assert chance_warnings(model, split, data_tasks={"random": spec}) == []


def test_training_prints_the_warning_for_a_head_at_chance(tmp_path, capsys):
    source = save_bars(tmp_path / "d.npz", n=300, side=16,
                       y_noise=lambda a: np.random.default_rng(5).integers(0, 4, len(a["x"])))
    config = run_config("mtvae", source, model__encoder=MLP, train__epochs=2)
    train_run(config, tmp_path / "run")
    err = capsys.readouterr().err
    assert "'noise' head is at chance on the validation split" in err


def test_dataset_info_carries_the_training_statistics():
    x = torch.zeros(4, 1, 2, 2)
    y = {"y": torch.tensor([2.0, 4.0, 6.0, 100.0])}
    train = Split(x, y, {"y": torch.tensor([True, True, True, False])})
    ds = Dataset("d", train, Split(x, y), Split(x, y), {"y": TaskSpec("y", "regression")})
    assert ds.info.target_stats["y"] == pytest.approx((4.0, 2.0))
