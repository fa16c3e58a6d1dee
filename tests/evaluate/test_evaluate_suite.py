"""The full evaluation suite on tiny trained runs: keys, figures, skips, probes, the reference
classifier's cache, the likelihood identities and the MT-VAE leakage matrix."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

import mtvae.pipeline
from mtvae.config import DataConfig, resolve_config
from mtvae.data.labels import apply_label_policy
from mtvae.data.shapes import load_shapes
from mtvae.evaluate import reference as ref
from mtvae.evaluate.families import evaluate_probes
from mtvae.evaluate.plots import curve_terms, pca_2d
from mtvae.evaluate.representations import (
    block_dim_labels,
    blocks,
    principal_axes,
    representation,
)
from mtvae.evaluate.runner import EvalContext
from mtvae.pipeline import evaluate_run, train_run
from mtvae.run_directory import load

SIZES = {"n_train": 256, "n_val": 64, "n_test": 128, "image_size": 16}
EVAL = {"iwae_k": 4, "iwae_n": 32, "gen_samples": 256, "kid_subsets": 10,
        "probe_budgets": [50, "all"]}  # fmt: skip
DISENT = ["mig", "dci_d", "dci_c", "dci_i", "sap", "factorvae", "betavae", "modularity",
          "explicitness", "tc"]  # fmt: skip
GEN = ["fd", "kid", "precision", "recall", "n_samples", "reference_accuracy"]
REGRESSION = ["scale", "orientation", "x", "y"]


def _data():
    return load_shapes(**SIZES)


def _train(root, name, **model):
    config = resolve_config(
        {
            "data": SIZES,
            "model": {"name": name, "encoder": {"arch": "mlp", "hidden": [32]}, **model},
            "train": {"epochs": 1, "batch_size": 64, "progress": False},
            "eval": EVAL,
        }
    )
    return train_run(config, root / name, dataset=_data())


def _evaluate(run):
    lines: list[str] = []
    return evaluate_run(run, "all", log=lines.append), lines


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("suite")
    trained = {
        "vae": _train(root, "vae", latent_dim=4),
        "mtvae": _train(
            root, "mtvae", latent_dim=6, tasks=["shape", "x"], task_dim=2, prior="conditional"
        ),  # fmt: skip
        "supervised": _train(root, "supervised", latent_dim=4, tasks=["shape"]),
        "vqvae": _train(
            root,
            "vqvae",
            n_latents=4,
            quantizer={"num_codes": 16, "code_dim": 4},
            prior={"kind": "uniform"},
        ),  # fmt: skip
    }
    return {name: (run, *_evaluate(run)) for name, run in trained.items()}


def _probe_keys(budgets=("50", "all")):
    keys = ["probe/shape/accuracy", "probe/shape/balanced_accuracy",
            "probe_knn/shape/accuracy@all", "probe_knn/shape/balanced_accuracy@all"]  # fmt: skip
    for b in budgets:
        keys += [f"probe/shape/accuracy@{b}", f"probe/shape/balanced_accuracy@{b}"]
        keys += [f"probe/{t}/{m}@{b}" for t in REGRESSION for m in ("r2", "mae")]
    keys += [f"probe/{t}/{m}" for t in REGRESSION for m in ("r2", "mae")]
    keys += [f"probe_knn/{t}/{m}@all" for t in REGRESSION for m in ("r2", "mae")]
    return keys


def _assert_finite(results, keys):
    missing = [k for k in keys if k not in results]
    assert not missing, missing
    bad = [k for k in keys if not math.isfinite(results[k])]
    assert not bad, bad


def test_vae_writes_every_applicable_key_and_figure(runs):
    run, results, lines = runs["vae"]
    keys = ["recon/mse", "recon/bce", "elbo", "kl", "nll/iwae", "bits_per_dim", "rate",
            "distortion", "active_units", *_probe_keys(), *(f"disent/{k}" for k in DISENT),
            *(f"gen/{k}" for k in GEN)]  # fmt: skip
    _assert_finite(results, keys)
    assert lines == ["skipped task: VAE has no predict, tasks",
                     "skipped val: VAE has no predict, tasks", "skipped vq: VAE has no "
                     "encode_codes, decode_codes, quantizer, prior", "skipped leakage: VAE has a single latent block "
                     "(nothing can leak)"]  # fmt: skip
    assert not any(k.startswith("gen/coherence") for k in results)  # no conditional prior
    assert results["gen/n_samples"] == EVAL["gen_samples"]
    assert 0.0 <= results["gen/precision"] <= 1.0 and 0.0 <= results["gen/recall"] <= 1.0
    for name in ("reconstructions", "samples", "traversals", "embedding", "training_curves"):
        assert (run / f"figures/{name}.png").stat().st_size > 0, name


def test_likelihood_identities(runs):
    _, results, _ = runs["vae"]
    dims = 1 * SIZES["image_size"] ** 2
    assert results["bits_per_dim"] == results["nll/iwae"] / (dims * math.log(2))
    assert results["rate"] == results["kl"]
    assert results["distortion"] == pytest.approx(-results["elbo"] - results["rate"], rel=1e-6)


def test_mtvae_writes_leakage_per_block_and_task_and_coherence(runs):
    run, results, lines = runs["mtvae"]
    keys = [*_probe_keys(), *(f"disent/{k}" for k in DISENT), *(f"gen/{k}" for k in GEN),
            "gen/coherence/shape", "bits_per_dim", "task/shape/accuracy"]  # fmt: skip
    _assert_finite(results, keys)
    leakage = {k for k in results if k.startswith("leakage/")}
    assert leakage == {f"leakage/{b}/{t}" for b in ("shared", "shape", "x") for t in ("shape", "x")}
    assert 0.0 <= results["gen/coherence/shape"] <= 1.0
    assert lines == ["skipped vq: MTVAE has no encode_codes, decode_codes, quantizer, prior"]
    for name in ("leakage", "traversals", "embedding", "samples", "training_curves"):
        assert (run / f"figures/{name}.png").is_file(), name


def test_a_test_split_of_three_images_leaves_out_the_metrics_comparing_with_it(tmp_path):
    sizes = {**SIZES, "n_test": 3}  # precision/recall need a 3rd nearest neighbour among them
    config = resolve_config({
        "data": sizes,
        "model": {"name": "mtvae", "encoder": {"arch": "mlp", "hidden": [32]}, "latent_dim": 4,
                  "tasks": ["shape"], "task_dim": 2, "prior": "conditional"},
        "train": {"epochs": 1, "batch_size": 64, "progress": False},
        "eval": EVAL,
    })
    run = train_run(config, tmp_path / "mtvae", dataset=load_shapes(**sizes))
    lines: list[str] = []
    results = evaluate_run(run, "gen", log=lines.append)
    assert results["gen/n_real"] == 3 and 0.0 <= results["gen/coherence/shape"] <= 1.0
    assert not {"gen/fd", "gen/kid", "gen/precision", "gen/recall"} & set(results)
    assert lines == ["skipped gen/fd, gen/kid, gen/precision, gen/recall: the test split has 3 "
                     "image(s) and comparing samples with them needs at least 4 "
                     "(precision/recall reach each image's 3rd nearest neighbour)"]


def test_supervised_gets_probes_and_disentanglement_only(runs):
    run, results, lines = runs["supervised"]
    _assert_finite(results, [*_probe_keys(), *(f"disent/{k}" for k in DISENT)])
    skipped = {line.split(":")[0] for line in lines}
    assert skipped == {f"skipped {f}" for f in ("recon", "nll", "vq", "leakage", "gen")}
    assert (run / "figures/embedding.png").is_file()
    assert not (run / "figures/samples.png").exists()
    assert not (run / "figures/traversals.png").exists()


def test_vqvae_gets_probes_on_code_vectors_and_generation(runs):
    run, results, lines = runs["vqvae"]
    keys = ["recon/mse", "vq/perplexity", "vq/usage", *_probe_keys(),
            *(f"disent/{k}" for k in DISENT), *(f"gen/{k}" for k in GEN)]  # fmt: skip
    _assert_finite(results, keys)
    skipped = {line.split(":")[0] for line in lines}
    assert skipped == {f"skipped {f}" for f in ("nll", "task", "val", "leakage")}
    for name in ("reconstructions", "samples", "embedding", "training_curves"):
        assert (run / f"figures/{name}.png").is_file(), name
    assert not (run / "figures/traversals.png").exists()  # no Gaussian latent to traverse


def test_data_without_factors_skips_disent_with_a_reason(runs, monkeypatch):
    data = _data()
    no_factors = replace(data, test=replace(data.test, factors=None))
    monkeypatch.setattr(mtvae.pipeline, "load_dataset", lambda cfg: no_factors)
    lines: list[str] = []
    results = evaluate_run(runs["vae"][0], "disent,probe", log=lines.append)
    assert lines == ["skipped disent: dataset 'shapes' has no ground-truth factors"]
    assert "probe/shape/accuracy" in results and not any(k.startswith("disent/") for k in results)


def test_probes_use_the_runs_labels_at_nested_budgets(runs):
    model, config = load(runs["vae"][0])
    config.eval.probe_budgets = [10, 50, "all"]
    data = _data()
    apply_label_policy(data, DataConfig(label_fraction=0.5))
    results = evaluate_probes(EvalContext(model, data, config, runs["vae"][0]))
    labelled = int(data.train.masks["shape"].sum())
    assert labelled < SIZES["n_train"]
    assert [results[f"probe/shape/n_train@{b}"] for b in (10, 50, "all")] == [10, 50, labelled]
    assert results["probe/shape/accuracy"] == results["probe/shape/accuracy@all"]
    assert results["probe/x/r2"] == results["probe/x/r2@all"]
    assert results["probe_knn/shape/n_train@all"] == labelled
    # without 'all', the largest budget gives the unbudgeted keys: each score the kind gives
    config.eval.probe_budgets = [10, 50]
    results = evaluate_probes(EvalContext(model, data, config, runs["vae"][0]))
    unbudgeted = {k for k in results if k.startswith(("probe/shape/", "probe/x/")) and "@" not in k}
    assert unbudgeted == {"probe/shape/accuracy", "probe/shape/balanced_accuracy",
                          "probe/x/mae", "probe/x/r2"}
    assert all(results[k] == results[f"{k}@50"] for k in unbudgeted)


def test_wide_representations_are_probed_on_principal_components(runs):
    model, config = load(runs["vae"][0])
    assert runs["vae"][1]["probe/n_dims"] == 4  # narrow enough: read as it is
    config.eval.probe_budgets = ["all"]
    config.eval.probe_max_dims = 2
    results = evaluate_probes(EvalContext(model, _data(), config, runs["vae"][0]))
    assert results["probe/n_dims"] == 2
    _assert_finite(results, ["probe/shape/accuracy", "probe/x/r2", "probe_knn/x/r2@all"])


def test_principal_axes_find_the_dominant_directions():
    x = np.random.default_rng(0).normal(size=(500, 3)) * [0.1, 5.0, 1.0]
    mean, axes = principal_axes(x, 2)
    assert axes.shape == (3, 2)
    np.testing.assert_allclose(np.abs(axes[:, 0]), [0, 1, 0], atol=0.05)
    np.testing.assert_allclose(np.abs(axes[:, 1]), [0, 0, 1], atol=0.05)
    np.testing.assert_allclose(mean, x.mean(axis=0))


def test_reference_classifier_is_cached_by_data_fingerprint(tmp_path, monkeypatch):
    monkeypatch.setenv("MTVAE_CACHE", str(tmp_path))
    data = _data()
    first = ref.reference_classifier(data)
    assert first.trained and first.path.parent == tmp_path / "reference"
    stamp = first.path.stat().st_mtime_ns
    second = ref.reference_classifier(data)
    assert not second.trained and second.path == first.path
    assert second.path.stat().st_mtime_ns == stamp  # loaded, not rewritten
    x = data.test.x[:32]
    np.testing.assert_array_equal(first.features(x), second.features(x))
    assert second.features(x).shape == (32, ref.N_FEATURES)

    changed = _data()
    changed.train.x[0, 0, 0, 0] += 0.5
    assert ref.fingerprint(changed, "shape") != ref.fingerprint(data, "shape")
    assert ref.fingerprint(_data(), "shape") == ref.fingerprint(data, "shape")


def test_reference_training_leaves_the_global_rng_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("MTVAE_CACHE", str(tmp_path))
    data = load_shapes(n_train=64, n_val=16, n_test=16, image_size=16)
    draws = []
    for _ in range(2):  # first call trains, second loads: the global stream is the same
        torch.manual_seed(0)
        ref.reference_classifier(data)
        draws.append(torch.rand(3))
    torch.testing.assert_close(draws[0], draws[1])


def test_representation_and_block_labels(runs):
    model, _ = load(runs["mtvae"][0])
    x = _data().test.x[:5]
    z = representation(model, x, batch_size=2)
    with torch.no_grad():
        np.testing.assert_allclose(z, model.encode(x).loc.double().numpy(), atol=1e-6)
    assert list(blocks(model, 6)) == ["shared", "shape", "x"]
    assert block_dim_labels(model, 6) == ["shared[0]", "shared[1]", "shape[0]", "shape[1]",
                                          "x[0]", "x[1]"]  # fmt: skip
    vae, _ = load(runs["vae"][0])
    assert blocks(vae, 4) == {"z": slice(0, 4)}


def test_training_curves_and_pca_helpers():
    records = [
        {"kind": "train", "step": 1, "loss": 9.0},
        {"kind": "epoch", "epoch": 1, "train/loss": 3.0, "train/beta": 1.0, "val/loss": 2.5},
        {"kind": "epoch", "epoch": 2, "train/loss": 2.0, "val/loss": 2.2},
    ]
    assert curve_terms(records) == {"loss": {"epoch": [1, 2], "train": [3.0, 2.0],
                                             "val": [2.5, 2.2]}}  # fmt: skip
    points = np.random.default_rng(0).normal(size=(50, 3)) * [5.0, 1.0, 0.1]
    proj = pca_2d(points)
    assert proj.shape == (50, 2) and proj[:, 0].var() > proj[:, 1].var()
    assert pca_2d(points[:, :1]).shape == (50, 2)
