"""The npz:PATH source: kind inference, sidecars, masks, splits, and every bad input."""

import json

import numpy as np
import pytest
import torch

from mtvae.config import DataConfig
from mtvae.data.npz import load_npz
from mtvae.data.sources import load_dataset
from mtvae.errors import UserError

N = 40


def _save(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.fixture
def good(tmp_path):
    rng = np.random.default_rng(0)
    return dict(
        x=rng.integers(0, 256, size=(N, 8, 8), dtype=np.uint8),
        y_digit=rng.integers(0, 10, size=N),
        y_odd=rng.integers(0, 2, size=N).astype(bool),
        y_size=rng.normal(size=N),
        y_tags=rng.integers(0, 2, size=(N, 3)),
    )


def test_kinds_are_inferred_and_images_scaled(tmp_path, good):
    data = load_npz(_save(tmp_path / "d.npz", **good))
    kinds = {t: (s.kind, s.n_classes) for t, s in data.tasks.items()}
    assert kinds["digit"] == ("categorical", int(good["y_digit"].max()) + 1)
    assert kinds["odd"] == ("binary", None)
    assert kinds["size"] == ("regression", None)
    assert kinds["tags"] == ("multilabel", 3)
    assert [len(data.split(s)) for s in ("train", "val", "test")] == [32, 4, 4]
    assert data.train.x.shape[1:] == (1, 8, 8) and data.train.x.dtype == torch.float32
    assert 0.0 <= float(data.train.x.min()) and float(data.train.x.max()) <= 1.0
    everything = torch.cat([data.train.x, data.val.x, data.test.x]).flatten(1) * 255
    assert torch.allclose(everything.sum(), torch.tensor(float(good["x"].sum())), rtol=1e-5)


def test_flat_features_become_one_row_images_and_ranges_are_scaled(tmp_path):
    x = np.linspace(-5, 15, N * 6).reshape(N, 6)
    data = load_npz(_save(tmp_path / "f.npz", x=x))
    assert data.train.x.shape[1:] == (1, 1, 6)
    allx = torch.cat([data.train.x, data.val.x, data.test.x])
    assert float(allx.min()) == 0.0 and float(allx.max()) == pytest.approx(1.0)


def test_sidecar_declares_kinds_classes_and_range(tmp_path, good):
    path = _save(tmp_path / "s.npz", **good)
    (tmp_path / "s.yaml").write_text(
        "tasks:\n  digit: {kind: categorical, n_classes: 12}\n  size: regression\n"
        "x_range: [0, 510]\n"
    )
    data = load_npz(path)
    assert data.tasks["digit"].n_classes == 12
    assert float(torch.cat([data.train.x, data.val.x, data.test.x]).max()) <= 0.5
    (tmp_path / "s.yaml").unlink()
    (tmp_path / "s.json").write_text(json.dumps({"tasks": {"digit": {"kind": "regression"}}}))
    assert load_npz(path).tasks["digit"].kind == "regression"


def test_masks_mark_unknown_labels_and_split_array_is_used(tmp_path):
    y = np.arange(N, dtype=float) % 3
    y[::4] = np.nan
    split = np.array([0] * 30 + [1] * 5 + [2] * 5)
    data = load_npz(_save(tmp_path / "m.npz", x=np.ones((N, 4)), y_c=y, mask_c=~np.isnan(y),
                          split=split))
    assert [len(data.split(s)) for s in ("train", "val", "test")] == [30, 5, 5]
    assert int(data.train.masks["c"].sum()) == 30 - 8  # rows 0, 4, ..., 28 are unknown
    assert data.tasks["c"].kind == "regression"


def test_load_dataset_reads_npz_and_subsamples_training_set(tmp_path, good):
    path = _save(tmp_path / "d.npz", **good)
    data = load_dataset(DataConfig(source=f"npz:{path}", n_train=10, seed=3))
    assert len(data.train) == 10
    full = load_dataset(DataConfig(source=f"npz:{path}", seed=3))
    assert torch.equal(full.train.x[:10], data.train.x)


def _bad_cases():
    x = np.zeros((N, 4, 4), np.float32)
    y = np.zeros(N, np.int64)
    nan_x = x.copy()
    nan_x[3, 0, 0] = np.nan
    inf_x = x.copy()
    inf_x[5, 1, 1] = np.inf
    nan_y = np.zeros(N)
    nan_y[7] = np.nan
    return {
        "nan": (dict(x=nan_x), "'x' in .* holds 1 NaN and 0 infinite values \\(first at sample 3\\)"),
        "inf": (dict(x=inf_x), "'x' in .* holds 0 NaN and 1 infinite values \\(first at sample 5\\)"),
        "nan-label": (dict(x=x, y_t=nan_y), "'y_t' in .* NaN .* mask_t"),
        "1-d x": (dict(x=np.zeros(N)), "'x' in .* has shape \\(40,\\); expected"),
        "5-d x": (dict(x=np.zeros((N, 1, 1, 2, 2))), "'x' in .* has shape \\(40, 1, 1, 2, 2\\)"),
        "empty": (dict(x=np.zeros((0, 4))), "'x' in .* is empty"),
        "no x": (dict(images=x), "has no array 'x' \\(it holds: images\\)"),
        "lengths": (dict(x=x, y_t=y[:-1]), "'y_t' in .* has shape \\(39,\\) but x has 40 samples"),
        "negative": (dict(x=x, y_t=y - 1), "'y_t' in .* negative integers"),
        "unexpected": (dict(x=x, labels=y), "unexpected array\\(s\\) labels"),
        "mask without labels": (dict(x=x, mask_t=np.ones(N, bool)), "mask_t but no labels y_t"),
        "bad split": (dict(x=x, split=np.full(N, 3)), "'split' in .* value 3"),
        "strings": (dict(x=x, y_t=np.array(["a"] * N)), "'y_t' in .* dtype <U1"),
    }


@pytest.mark.parametrize("case", list(_bad_cases()))
def test_bad_arrays_are_rejected_with_file_array_and_problem(tmp_path, case):
    arrays, message = _bad_cases()[case]
    path = _save(tmp_path / "bad.npz", **arrays)
    with pytest.raises(UserError, match=message) as info:
        load_npz(path)
    assert str(path) in str(info.value)


def test_labels_outside_declared_classes(tmp_path):
    path = _save(tmp_path / "c.npz", x=np.zeros((N, 3)), y_d=np.arange(N) % 7)
    (tmp_path / "c.yaml").write_text("tasks: {d: {kind: categorical, n_classes: 5}}\n")
    with pytest.raises(UserError, match=r"'y_d' in .*c.npz' holds the value 5, outside the declared "
                                        r"classes: labels must be classes 0..4 as the sidecar"):
        load_npz(path)
    (tmp_path / "c.yaml").write_text("tasks: {d: {kind: binary}}\n")
    with pytest.raises(UserError, match="binary labels must be 0 or 1"):
        load_npz(path)
    (tmp_path / "c.yaml").write_text("tasks: {d: {kind: categorical, n_clases: 5}}\n")
    with pytest.raises(UserError, match=r"Invalid sidecar file .*c.yaml.*n_clases"):
        load_npz(path)
    (tmp_path / "c.yaml").write_text("tasks: {e: regression}\n")
    with pytest.raises(UserError, match="declares task 'e' but the file has no array y_e"):
        load_npz(path)


def test_unreadable_truncated_and_pickled_files(tmp_path):
    path = _save(tmp_path / "t.npz", x=np.zeros((N, 16)))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=r"Cannot read the npz file .*t.npz.*truncated"):
        load_npz(path)
    (tmp_path / "text.npz").write_text("not an archive")
    with pytest.raises(UserError, match="is not an npz \\(zip\\) file"):
        load_npz(tmp_path / "text.npz")
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}] * 3, dtype=object))
    with pytest.raises(UserError, match=r"obj.npz' \(array 'x'\)"):
        load_npz(tmp_path / "obj.npz")
    with pytest.raises(UserError, match="does not exist"):
        load_npz(tmp_path / "missing.npz")
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(UserError, match="is a .npy file"):
        load_npz(tmp_path / "one.npy")
