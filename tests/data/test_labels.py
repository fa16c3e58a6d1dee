"""Label policies: requested fractions, the disjoint property, seeding, bad input."""

import pytest
import torch

from mtvae.config import DataConfig
from mtvae.data.labels import label_masks, select_labels, task_fractions
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


# --- label counts (data.n_labelled), class balance, validation labels ---------------------


def _digits(**data):
    return load_dataset(DataConfig(source="digits", image_size=16, **data))


def test_label_fraction_masks_are_those_of_the_original_mcar_draw():
    """Counts and validation labels are new; the training masks of a share did not change."""
    data = load_dataset(DataConfig(n_train=300, n_val=20, n_test=20, image_size=16,
                                   label_fraction={"shape": 0.1, "x": 0.5}))
    gen = torch.Generator().manual_seed(10_007 * 0 + 17)  # the draw as it always was
    for task, share in (("orientation", 1.0), ("scale", 1.0), ("shape", 0.1), ("x", 0.5), ("y", 1.0)):
        expected = torch.zeros(300, dtype=torch.bool)
        expected[torch.randperm(300, generator=gen)[: round(share * 300)]] = True
        assert torch.equal(data.train.masks[task], expected), task


def test_n_labelled_per_class_is_balanced_nested_and_exact():
    few = _digits(n_labelled=30, label_balance="per_class")
    many = _digits(n_labelled=100, label_balance="per_class")
    for data, per_class in ((few, 3), (many, 10)):
        mask = data.train.masks["digit"]
        counts = torch.bincount(data.train.targets["digit"][mask], minlength=10)
        assert counts.tolist() == [per_class] * 10
        parity = data.train.targets["parity"][data.train.masks["parity"]].long()
        assert torch.bincount(parity).tolist() == [per_class * 5] * 2  # binary: per class too
    assert bool((few.train.masks["digit"] <= many.train.masks["digit"]).all())  # nested
    assert few.test.masks["digit"].all()


def test_n_labelled_without_balance_is_random_and_per_task_counts_leave_others_alone():
    data = _digits(n_labelled={"digit": 50})
    assert int(data.train.masks["digit"].sum()) == 50
    assert data.train.masks["parity"].all()
    counts = torch.bincount(data.train.targets["digit"][data.train.masks["digit"]], minlength=10)
    assert counts.tolist() != [5] * 10  # a random draw, not a balanced one


def test_per_class_falls_back_to_random_for_regression_tasks():
    data = load_dataset(DataConfig(n_train=200, n_val=20, n_test=20, image_size=16,
                                   n_labelled=40, label_balance="per_class"))
    shape = data.train.targets["shape"][data.train.masks["shape"]]
    assert int(data.train.masks["scale"].sum()) == 40
    assert sorted(torch.bincount(shape).tolist()) == [13, 13, 14]


def test_round_robin_gives_a_short_class_share_to_the_others():
    classes = torch.tensor([0] * 2 + [1] * 50 + [2] * 50)
    available = {"t": torch.ones(len(classes), dtype=torch.bool)}
    keep = select_labels(available, {"t": 30}, "mcar", torch.Generator().manual_seed(0),
                         classes={"t": classes})["t"]
    assert torch.bincount(classes[keep]).tolist() == [2, 14, 14]


def test_n_labelled_all_means_every_label():
    assert DataConfig(n_labelled="all").n_labelled is None
    assert DataConfig(n_labelled={"digit": "all"}).n_labelled is None
    assert _digits(n_labelled="all").train.masks["digit"].all()


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"n_labelled": 100, "label_fraction": 0.1}, "set only one"),
        ({"n_labelled": 100, "label_balance": "per_class", "label_policy": "mnar"},
         "only label_policy=mcar"),
        ({"n_labelled": -1}, "non-negative"),
    ],
)
def test_contradictory_label_settings_are_user_errors(data, match):
    from mtvae.config import resolve_config

    with pytest.raises(UserError, match=match):
        resolve_config({"data": data, "model": {"name": "vae"}})


def test_more_labels_than_the_data_has_is_a_user_error():
    with pytest.raises(UserError, match=r"n_labelled asks for 5000 labels of task 'digit'.*at most 1397"):
        _digits(n_labelled={"digit": 5000})


def test_validation_keeps_the_training_share_of_labels_by_default():
    share = _digits(label_fraction=0.1)
    assert int(share.train.masks["digit"].sum()) == round(0.1 * 1397)
    assert int(share.val.masks["digit"].sum()) == round(0.1 * 200)
    counted = _digits(n_labelled=100, label_balance="per_class")
    assert int(counted.val.masks["digit"].sum()) == round(100 / 1397 * 200)  # 14
    val_classes = counted.val.targets["digit"][counted.val.masks["digit"]]
    assert int(torch.bincount(val_classes, minlength=10).min()) == 1  # balanced too
    assert _digits(n_labelled=100, val_labels="all").val.masks["digit"].all()
    assert int(_digits(n_labelled=1).val.masks["digit"].sum()) == 1  # never none
    assert share.test.masks["digit"].all()


def test_validation_labels_are_a_separate_seeded_draw():
    one, two = _digits(label_fraction=0.5), _digits(label_fraction=0.5)
    assert torch.equal(one.val.masks["digit"], two.val.masks["digit"])
    other = _digits(label_fraction=0.5, seed=1)
    assert not torch.equal(one.val.masks["digit"], other.val.masks["digit"])  # seed matters
    train_prefix = one.train.masks["digit"][:200]
    assert not torch.equal(one.val.masks["digit"], train_prefix)
