"""Model capabilities: every registered model declares what it can do, and nothing else."""

import pytest
import torch

from mtvae.data.shapes import load_shapes
from mtvae.models import capabilities as cap
from mtvae.models.registry import MODELS, build_model
from mtvae.runconfig import resolve_config

ALL = (cap.Reconstructs, cap.Generative, cap.GaussianLatentModel, cap.Coded, cap.Represents,
       cap.Multitask, cap.Conditional, cap.Blocked, cap.TaskWeighted, cap.EpochStatistics,
       cap.Staged)
EXPECTED = {
    "vae": {"Reconstructs", "Generative", "GaussianLatentModel"},
    "vqvae": {"Reconstructs", "Generative", "Coded", "Represents", "EpochStatistics", "Staged"},
    "mtvae": {"Reconstructs", "Generative", "GaussianLatentModel", "Multitask", "Conditional",
              "Blocked", "TaskWeighted"},
    "mtvqvae": {"Reconstructs", "Generative", "Coded", "Represents", "Multitask",
                "TaskWeighted", "EpochStatistics", "Staged"},
    "m2": {"Reconstructs", "Generative", "GaussianLatentModel", "Multitask", "Conditional",
           "Blocked", "TaskWeighted"},
    "supervised": {"Represents", "Multitask", "TaskWeighted"},
}


@pytest.fixture(scope="module")
def data():
    return load_shapes(n_train=32, n_val=16, n_test=16, image_size=16)


def _model(name, data, **options):
    config = resolve_config({"model": {"name": name, "encoder": {"arch": "mlp", "hidden": [16]},
                                       **options}})
    torch.manual_seed(0)
    return build_model(config.model, data.info)


def test_the_table_covers_every_registered_model():
    assert set(EXPECTED) == set(MODELS)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_model_has_exactly_its_capabilities(name, data):
    model = _model(name, data)
    assert {c.__name__ for c in ALL if isinstance(model, c)} == EXPECTED[name]


def test_members_and_missing_name_what_a_model_lacks(data):
    assert cap.members(cap.Conditional) == ["predict", "tasks", "conditional_tasks", "sample",
                                            "intervene"]
    vae = _model("vae", data)
    assert cap.missing(vae, cap.Reconstructs, cap.Multitask) == ["predict", "tasks"]
    assert cap.missing(_model("mtvae", data), cap.Multitask, cap.Generative) == []


def test_conditional_tasks_are_the_conditional_prior_blocks(data):
    assert _model("mtvae", data).conditional_tasks == []  # standard prior: nothing to fix
    conditional = _model("mtvae", data, prior="conditional", latent_dim=12)
    assert conditional.conditional_tasks == list(conditional.tasks)
    m2 = _model("m2", data, tasks=["shape"])
    assert m2.conditional_tasks == ["shape"]
