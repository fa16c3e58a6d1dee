"""The supervised baseline: its heads read the body's features, or a latent_dim bottleneck."""

from __future__ import annotations

import torch

from mtvae.data.dataset import DataInfo
from mtvae.data.tasks import TaskSpec
from mtvae.models.supervised import Supervised, SupervisedConfig

INFO = DataInfo(image_shape=(1, 16, 16), tasks={"digit": TaskSpec("digit", "categorical", 10)})
BODY = {"arch": "mlp", "hidden": [32]}


def test_by_default_linear_heads_read_the_body_features():
    model = Supervised(SupervisedConfig(latent_dim=4, encoder=BODY), INFO)
    x = torch.rand(5, 1, 16, 16)
    assert model.representation(x).shape == (5, 32)
    assert model.predict(x)["digit"].shape == (5,)
    linear = [m for m in model.heads["digit"].modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(32, 10)]


def test_the_bottleneck_is_a_latent_dim_wide_linear_layer():
    model = Supervised(SupervisedConfig(latent_dim=4, bottleneck=True, encoder=BODY), INFO)
    assert model.representation(torch.rand(5, 1, 16, 16)).shape == (5, 4)
    assert isinstance(model.proj, torch.nn.Linear) and model.proj.out_features == 4
