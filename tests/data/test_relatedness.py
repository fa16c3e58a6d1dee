"""Relatedness controls: random tasks carry no image information, composites are exact,
the nuisance factor changes images without being a task."""

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from sklearn.linear_model import RidgeClassifier

from mtvae.config import DataConfig
from mtvae.data.relatedness import BRIGHTNESS, parse_extra_task
from mtvae.data.sources import load_dataset
from mtvae.errors import UserError


def _probe_accuracy(data, task):
    probe = RidgeClassifier(alpha=10.0)  # a linear probe on the pixels
    probe.fit(data.train.x.flatten(1).numpy(), data.train.targets[task].numpy())
    return probe.score(data.test.x.flatten(1).numpy(), data.test.targets[task].numpy())


def test_random_task_is_independent_of_the_images():
    data = load_dataset(DataConfig(source="digits", image_size=16, n_test=400,
                                   extra_tasks=["random", "r5=random:5"]))
    assert data.tasks["random"].n_classes == 2 and data.tasks["r5"].n_classes == 5
    assert data.tasks["random"].control and data.tasks["r5"].control  # marked as controls
    assert not data.tasks["parity"].control
    # the same probe learns a real task from pixels, but scores at chance on random labels
    assert _probe_accuracy(data, "parity") > 0.8
    assert abs(_probe_accuracy(data, "random") - 0.5) < 0.08  # 400 test labels: sd 0.025
    assert abs(_probe_accuracy(data, "r5") - 0.2) < 0.07
    counts = torch.bincount(data.train.targets["r5"], minlength=5)
    assert counts.min() > 0.15 * len(data.train)  # uniform over the classes


def test_random_labels_are_seeded_and_stable_under_n_train():
    full = load_dataset(DataConfig(source="digits", extra_tasks=["random:3"]))
    small = load_dataset(DataConfig(source="digits", extra_tasks=["random:3"], n_train=100))
    assert torch.equal(full.train.targets["random"][:100], small.train.targets["random"])
    other = load_dataset(DataConfig(source="digits", extra_tasks=["random:3"], seed=1))
    assert not torch.equal(other.test.targets["random"], full.test.targets["random"])


def test_composite_tasks_are_exact_functions_of_their_parts():
    data = load_dataset(DataConfig(n_train=300, n_val=50, n_test=50, image_size=16, nuisance=True,
                                   extra_tasks=["composite:shape+x>0.5", "xy=composite:x+y",
                                                "sb=composite:shape+brightness"]))
    t, f = data.train.targets, data.train.factors
    assert data.tasks["composite"].n_classes == 6
    assert torch.equal(t["composite"], 2 * t["shape"] + (t["x"] > 0.5).long())
    assert data.tasks["xy"].kind == "regression"
    assert torch.allclose(t["xy"], (t["x"] + t["y"]) / 2)
    assert data.tasks["sb"].n_classes == 3 * len(BRIGHTNESS)  # a part that is only a factor
    assert torch.equal(t["sb"], len(BRIGHTNESS) * t["shape"] + f[:, -1])


def test_bad_composites_and_syntax_are_rejected():
    with pytest.raises(UserError, match=r"regression part\(s\) x need a threshold"):
        load_dataset(DataConfig(n_train=50, n_val=10, n_test=10, extra_tasks=["composite:shape+x"]))
    with pytest.raises(UserError, match="Did you mean 'shape'"):
        load_dataset(DataConfig(n_train=50, n_val=10, n_test=10, extra_tasks=["composite:shap+x>0"]))
    with pytest.raises(UserError, match="would replace the existing task 'shape'"):
        load_dataset(DataConfig(n_train=50, n_val=10, n_test=10, extra_tasks=["shape=random"]))
    for bad in ("randm", "random:1", "composite:x", "composite:x+", "a=b=random"):
        with pytest.raises(ValidationError, match="extra task|random task"):
            DataConfig(extra_tasks=[bad])
    with pytest.raises(ValidationError, match="must differ"):
        DataConfig(extra_tasks=["random", "random:3"])
    assert parse_extra_task("c=composite:a>0.5+b").parts == (("a", 0.5), ("b", None))


def test_nuisance_changes_images_but_is_no_task():
    kw = dict(n_train=200, n_val=20, n_test=20, image_size=16)
    plain = load_dataset(DataConfig(**kw))
    data = load_dataset(DataConfig(nuisance=True, **kw))
    assert data.factor_names[-1] == "brightness" and data.factor_sizes[-1] == len(BRIGHTNESS)
    assert "brightness" not in data.tasks and set(data.tasks) == set(plain.tasks)
    level = data.train.factors[:, -1]
    assert len(torch.unique(level)) == len(BRIGHTNESS)
    scale = torch.tensor(BRIGHTNESS)[level].view(-1, 1, 1, 1)
    assert torch.allclose(data.train.x, plain.train.x * scale)
    assert torch.equal(data.train.factors[:, :-1], plain.train.factors)
    dim = data.train.x.flatten(1).amax(1)
    assert np.corrcoef(dim.numpy(), level.numpy())[0, 1] > 0.9  # it does vary the images
    with pytest.raises(UserError, match="has no factors"):
        load_dataset(DataConfig(source="digits", nuisance=True))
