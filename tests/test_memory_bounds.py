"""Sizes a user can make absurd are refused before the work starts, with what to lower: images
decoded from files (npz, IDX) or upsampled (``data.image_size``), training / evaluation
batches (``train.batch_size``, ``eval.batch_size`` times the body's activations) and the
model's parameters with their gradients and optimizer state (``model.latent_dim``, layer sizes). Normal runs,
every preset's included, are never refused."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from helpers_runs import TINY, run_cli, train_argv
from mtvae.config import DataConfig, resolve_config
from mtvae.data.idx import write_idx
from mtvae.data.sources import check_source_memory, load_dataset
from mtvae.errors import UserError

MiB = 2**20


def refused(capsys, *argv) -> str:
    status, _, err = run_cli(capsys, *argv)
    assert status == 2, err
    assert err.startswith("mtvae: error: ") and err.strip().count("\n") == 0, err
    return err


def available(monkeypatch, n_bytes: int) -> None:
    import mtvae.limits

    monkeypatch.setattr(mtvae.limits, "available_memory", lambda: n_bytes)


# --- images decoded from files ------------------------------------------------------------
def npz_declaring(path: Path, shape: tuple[int, ...]) -> Path:
    """An .npz whose x.npy header declares ``shape`` (uint8) but holds no data: a few bytes
    that would make numpy allocate the whole array before reading it."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "|u1", "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x.npy", header.getvalue())
    return path


def test_an_npz_declaring_absurd_images_is_refused_before_it_is_read(capsys, tmp_path):
    source = npz_declaring(tmp_path / "huge.npz", (10**9, 1, 1024, 1024))  # ~4 EiB of float32
    err = refused(capsys, "train", "--model", "vae", "--data", f"npz:{source}",
                  "--out", tmp_path / "r")
    assert "huge.npz" in err and "(1000000000, 1, 1024, 1024)" in err
    assert "memory" in err and "available" in err and "store fewer or smaller images" in err
    assert not (tmp_path / "r").exists()


def test_a_compressed_npz_is_checked_by_its_declared_size_not_its_file_size(tmp_path,
                                                                             monkeypatch):
    path = tmp_path / "zeros.npz"
    np.savez_compressed(path, x=np.zeros((2000, 1, 64, 64), np.uint8),
                        y_c=np.arange(2000) % 3)
    assert path.stat().st_size < MiB  # 64 MiB of float32 images once decoded
    config = DataConfig(source=f"npz:{path}")
    load_dataset(config)  # fits the real memory
    available(monkeypatch, 16 * MiB)
    with pytest.raises(UserError, match=r"declares shape \(2000, 1, 64, 64\).*of memory"):
        load_dataset(config)


def write_idx_set(root: Path, n: int) -> Path:
    """Small IDX files in the MNIST / Fashion-MNIST layout."""
    root.mkdir(parents=True, exist_ok=True)
    images = np.zeros((n, 28, 28), np.uint8)
    images[:, 8:20, 10:18] = 255
    for prefix in ("train", "t10k"):
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))
    return root


@pytest.mark.parametrize("source", ["fashion-mnist", "mnist", "digits"])
def test_upsampling_images_beyond_the_available_memory_is_refused(tmp_path, monkeypatch,
                                                                   source):
    """digits: 1,797 images; the IDX sources: 2 x 100 images (from their headers). At 128x128
    they need 24 MiB (IDX) or 225 MiB (digits) of float32; at 32x32 16 times less."""
    root = str(write_idx_set(tmp_path / "idx", 100)) if source != "digits" else None
    budget = 100 * MiB if source == "digits" else 8 * MiB
    available(monkeypatch, budget)
    with pytest.raises(UserError, match="lower data.image_size") as refusal:
        load_dataset(DataConfig(source=source, root=root, image_size=128, n_val=20))
    assert "of memory, but only" in str(refusal.value)
    if root:
        assert root in str(refusal.value)  # which files declared so many images
    data = load_dataset(DataConfig(source=source, root=root, image_size=32, n_val=20))
    assert data.train.x.shape[-1] == 32


# --- batches ------------------------------------------------------------------------------
WIDE = ("--set", "model.encoder.arch=conv", "--set", "model.encoder.channels=[256]")


@pytest.fixture(scope="module")
def wide_run(tmp_path_factory):
    """A tiny run whose conv layer holds 256 x 8 x 8 values per 16x16 image (trained with the
    real memory: normal runs pass)."""
    from mtvae.cli import main

    run = tmp_path_factory.mktemp("wide") / "run"
    assert main([*map(str, train_argv(run)), *WIDE]) == 0
    return run


def test_a_training_batch_beyond_the_available_memory_is_refused_and_leaves_no_run(
    capsys, monkeypatch, tmp_path, wide_run
):
    import mtvae.pipeline

    available(monkeypatch, 2 * MiB)  # the 96 images fit (0.1 MiB); a batch of 16 (4 MiB) not
    # the model's 287,045 parameters (4.4 MiB to train) are tested on their own below
    monkeypatch.setattr(mtvae.pipeline, "check_model_memory", lambda *args, **kwargs: None)
    err = refused(capsys, *train_argv(tmp_path / "r"), *WIDE)
    assert "training batch of 16 images" in err and "16,384 values per image" in err
    assert "lower train.batch_size" in err and "of memory, but only 2 MiB" in err
    assert not (tmp_path / "r").exists()
    err = refused(capsys, "train", "--resume", wide_run)  # the same check on --resume
    assert "lower train.batch_size" in err


def test_an_evaluation_batch_beyond_the_available_memory_is_refused(capsys, monkeypatch,
                                                                   wide_run):
    before = (wide_run / "results.json").read_bytes()
    available(monkeypatch, 2 * MiB)  # eval.batch_size 500, capped at the 64 training images
    err = refused(capsys, "evaluate", wide_run, "--metrics", "recon")
    assert "evaluation batch of 64 images" in err and "lower eval.batch_size" in err
    assert (wide_run / "results.json").read_bytes() == before


def test_the_tiny_settings_are_not_refused(capsys, tmp_path, monkeypatch):
    """The same checks with a modest 64 MiB free let the tests' tiny run through."""
    available(monkeypatch, 64 * MiB)
    assert run_cli(capsys, "train", "--model", "vae", "--out", tmp_path / "r", *TINY)[0] == 0
    assert run_cli(capsys, "evaluate", tmp_path / "r", "--metrics", "recon")[0] == 0


# --- the model's parameters --------------------------------------------------------------
@pytest.mark.parametrize("setting", ["model.latent_dim=100000000", "model.encoder.hidden=[100000000]"])
def test_a_model_beyond_the_available_memory_is_refused_before_it_is_allocated(
    capsys, tmp_path, setting
):
    """Hundreds of GiB of weights (the real available memory): refused at once, exit 2, no
    run directory; torch never tries to allocate them."""
    err = refused(capsys, *train_argv(tmp_path / "r"), "--set", setting)
    assert "lower model.latent_dim or narrow the model's layers" in err
    assert "Training the model (" in err and "parameters, the largest '" in err
    assert "of memory, but only" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("setting", ["seed=1000000000000000000000000000000",
                                     "model.encoder.hidden=[8, 1000000000000000000000000000000]",
                                     "train.epochs=-3000000000"])
def test_integer_settings_beyond_their_documented_bound_are_refused(capsys, tmp_path, setting):
    """seeds and sizes lie within +-(2**31 - 1): 10**30 would overflow numpy's seeds, SQLite
    and torch's sizes deep inside a run."""
    err = refused(capsys, *train_argv(tmp_path / "r"), "--set", setting)
    assert f"'{setting.split('=')[0]}'" in err
    assert "integer settings lie within +-2,147,483,647" in err or "greater than" in err
    assert not (tmp_path / "r").exists()


def test_the_parameter_estimate_counts_weights_gradients_and_adam_state(monkeypatch):
    """The count is the built model's own, and training needs 16 bytes per parameter."""
    import torch

    from mtvae.batch_memory import check_model_memory, parameter_sizes
    from mtvae.models.registry import build_model

    config = resolve_config({"model": {"name": "vae", "latent_dim": 3,
                                       "encoder": {"arch": "mlp", "hidden": [8]}},
                             "data": {"image_size": 16}})
    info = load_dataset(config.data.model_copy(update={"n_train": 8, "n_val": 4,
                                                       "n_test": 4})).info
    state = torch.get_rng_state()
    sizes = parameter_sizes(config.model, info)
    assert torch.equal(torch.get_rng_state(), state)  # no random number drawn
    n = sum(p.numel() for p in build_model(config.model, info).parameters())
    assert sum(sizes.values()) == n
    available(monkeypatch, int(16 * n / 0.8) + 1)
    check_model_memory(config.model, info, training=True)  # just fits
    available(monkeypatch, int(16 * n / 0.8) - 64)
    with pytest.raises(UserError, match=f"Training the model \\({n:,} parameters"):
        check_model_memory(config.model, info, training=True)
    check_model_memory(config.model, info, training=False)  # weights alone: 4 bytes each


def test_a_run_too_large_to_load_is_refused_by_evaluate_and_resume(capsys, monkeypatch,
                                                                  wide_run):
    before = (wide_run / "results.json").read_bytes()
    available(monkeypatch, 1 * MiB)  # the data fit; the 287,045 weights (1.1 MiB) not
    err = refused(capsys, "evaluate", wide_run, "--metrics", "recon")
    assert "Loading the model (287,045 parameters" in err and "lower model.latent_dim" in err
    assert (wide_run / "results.json").read_bytes() == before
    available(monkeypatch, 2 * MiB)  # the weights fit; with gradients and Adam (4.4 MiB) not
    err = refused(capsys, "train", "--resume", wide_run)
    assert "Training the model (" in err


def users_celeba(root: Path) -> str:
    """A CelebA copy in its published layout (the celeba preset's data are the user's own)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "image_layouts", Path(__file__).parent / "data" / "image_layouts.py")
    layouts = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(layouts)
    return f"celeba:{layouts.write_celeba(root)}"


def test_every_preset_run_fits_a_machine_with_4_gib_free(monkeypatch, tmp_path):
    """Every run of every study preset passes the data and batch checks with 4 GiB
    available (Fashion-MNIST's files are checked by their headers where installed)."""
    from mtvae.batch_memory import check_batch_memory, check_model_memory
    from mtvae.study.expand import expand
    from mtvae.study.spec import load_preset, preset_names

    available(monkeypatch, 4 * 2**30)
    seen = set()
    cache: dict[str, object] = {}

    def infos(data):  # the data's image shape and tasks, from a few samples of it
        sizes = {"n_train": 200, "n_val": 100, "n_test": 100}
        if data.source.startswith("celeba:"):  # not on this machine: a small copy instead
            if "celeba" not in cache:
                cache["celeba"] = users_celeba(tmp_path / "celeba")
            sizes = {"source": cache["celeba"], "n_train": 16, "n_val": 4, "n_test": 4}
        small = data.model_copy(update={**sizes, "n_labelled": None, "label_fraction": 1.0})
        key = small.model_dump_json()
        if key not in cache:
            cache[key] = load_dataset(small).info
        return cache[key]

    for name in preset_names():
        for run in expand(load_preset(name)).runs.values():
            config = resolve_config(run.config)
            key = (config.data.model_dump_json(), config.model.model_dump_json(),
                   config.train.batch_size, config.eval.batch_size)
            if key in seen:
                continue
            seen.add(key)
            check_source_memory(config.data)
            check_model_memory(config.model, infos(config.data), training=True)
            shape = (1, config.data.image_size, config.data.image_size)
            batch = config.train.batch_size
            check_batch_memory(config.model, shape, batch + batch // 2, True, "")  # auto's most
            check_batch_memory(config.model, shape, config.eval.batch_size, False, "")
    assert len(seen) > 10
