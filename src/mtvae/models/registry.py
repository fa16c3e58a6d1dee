"""The model registry: one table maps each model name to its config class and module class.

The CLI, run loading and studies look models up here; nothing else dispatches on model names.
Imports are lazy so ``mtvae --help`` and ``mtvae datasets`` stay fast.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from mtvae.errors import unknown_name


@dataclass(frozen=True)
class ModelEntry:
    """Where a model's config and class live, and one line saying what it is."""

    name: str
    module: str
    config: str
    model: str
    description: str

    @property
    def config_cls(self) -> Any:
        """The pydantic config class (imported on first use)."""
        return getattr(importlib.import_module(self.module), self.config)

    @property
    def model_cls(self) -> Any:
        """The ``nn.Module`` class (imported on first use)."""
        return getattr(importlib.import_module(self.module), self.model)


MODELS: dict[str, ModelEntry] = {
    entry.name: entry
    for entry in [
        ModelEntry(
            "vae",
            "mtvae.models.vae",
            "VAEConfig",
            "VAE",
            "Gaussian VAE / beta-VAE: ELBO with reparametrization, beta, KL warm-up, free bits",
        ),
    ]
}


def get_model_entry(name: str) -> ModelEntry:
    """Return the registry entry for ``name`` or raise a UserError with a suggestion."""
    if name not in MODELS:
        raise unknown_name("model", name, MODELS)
    return MODELS[name]


def build_model(config: Any, data_info: Any) -> Any:
    """Instantiate the model that ``config.name`` names for data described by ``data_info``."""
    return get_model_entry(config.name).model_cls(config, data_info)
