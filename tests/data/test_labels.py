"""Label policies: requested fractions, the disjoint property, seeding, bad input."""

import pytest
import torch

from mtvae.config import DataConfig
from mtvae.data.labels import label_masks, task_fractions
from mtvae.data.sources import load_dataset
from mtvae.errors import UserError


def test_mcar_keeps_exact_fractions_independently_per_task():
    masks = label_masks(1000, {"a": 0.1, "b": 0.1, "c": 0.5}, "mcar", seed=0)
    assert {t: int(m.sum()) for t, m in masks.items()} == {"a": 100, "b": 100, "c": 500}
    assert not torch.equal(masks["a"], masks["b"])
    # independent draws: the overlap of a and c is close to 10% of c's 500
    assert 25 <= int((masks["a"] & masks["c"]).sum()) <= 75


def test_disjoint_labels_each_sample_for_at_most_one_task():
    masks = label_masks(1000, {"a": 0.3, "b": 0.3, "c": 0.4}, "disjoint", seed=1)
    stacked = torch.stack(list(masks.values())).sum(0)
    assert int(stacked.max()) == 1 and int(stacked.sum()) == 1000
    assert {t: int(m.sum()) for t, m in masks.items()} == {"a": 300, "b": 300, "c": 400}


def test_disjoint_fractions_must_fit():
    with pytest.raises(UserError, match="add up to at most 1"):
        label_masks(10, {"a": 0.6, "b": 0.6}, "disjoint", seed=0)


def test_masks_are_seeded():
    one = label_masks(100, {"a": 0.5}, "mcar", seed=3)["a"]
    assert torch.equal(one, label_masks(100, {"a": 0.5}, "mcar", seed=3)["a"])
    assert not torch.equal(one, label_masks(100, {"a": 0.5}, "mcar", seed=4)["a"])


def test_per_task_fractions_default_to_all_and_reject_unknown_tasks():
    assert task_fractions({"a": 0.1}, ["a", "b"]) == {"a": 0.1, "b": 1.0}
    with pytest.raises(UserError, match="Did you mean 'shape'"):
        task_fractions({"shap": 0.1}, ["shape", "x"])


def test_load_dataset_applies_the_policy_to_training_labels_only():
    cfg = DataConfig(n_train=400, n_val=20, n_test=20, image_size=16,
                     label_fraction={"shape": 0.25}, label_policy="mcar")
    data = load_dataset(cfg)
    assert int(data.train.masks["shape"].sum()) == 100
    assert data.train.masks["x"].all() and data.test.masks["shape"].all()


def test_label_fraction_out_of_range_is_rejected():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        DataConfig(label_fraction={"shape": 1.5})
