"""The model registry: one table maps each model name to its config class and module class.

The CLI, run loading and studies look models up here; nothing else dispatches on model names.
Imports are lazy so ``mtvae --help`` and ``mtvae datasets`` stay fast.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from mtvae.errors import UserError, unknown_name

NAME_DESCRIPTION = "registry name of the model (`mtvae models` lists them)"  # every model.name


@dataclass(frozen=True)
class ModelEntry:
    """Where a model's config and class live, and one line saying what it is."""

    name: str
    module: str
    config: str
    model: str
    description: str
    reads_labels: bool = True  # False: training never reads a label (label settings do not matter)
    # Rough training cost per image and epoch next to the supervised baseline's (1.0), which
    # only orders a study's runs longest first: a decoder about doubles a step, a VQ model adds
    # its prior stage, and M2 decodes every class for an unlabelled image (issue #25 measured
    # an M2 run at 3-6x a supervised one).
    relative_cost: float = 2.0
    # The metric families on which this model is the reference a variant is measured against
    # when the study names none for it (the trade-off front's VAE + probe and its supervised
    # network).
    reference_for: tuple[str, ...] = ()

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
            reads_labels=False,
            reference_for=("reconstruction",),
        ),
        ModelEntry(
            "vqvae",
            "mtvae.models.vqvae",
            "VQVAEConfig",
            "VQVAE",
            "VQ-VAE: codebook with straight-through or rotation-trick gradient, EMA, dead-code "
            "restart, k-means init, or FSQ; PixelCNN prior fitted in a second stage",
            reads_labels=False,
            relative_cost=2.5,
        ),
        ModelEntry(
            "mtvae",
            "mtvae.models.mtvae",
            "MTVAEConfig",
            "MTVAE",
            "multitask VAE: shared/partitioned latent blocks, task heads, missing labels, "
            "conditional priors, inhibition, task weighting",
        ),
        ModelEntry(
            "mtvqvae",
            "mtvae.models.mtvqvae",
            "MTVQVAEConfig",
            "MTVQVAE",
            "multitask VQ-VAE: task heads on the quantised code grid, missing labels, weighting; "
            "PixelCNN prior fitted in a second stage",
            relative_cost=2.5,
        ),
        ModelEntry(
            "m2",
            "mtvae.models.m2",
            "M2Config",
            "M2",
            "semi-supervised VAE M2 (Kingma et al. 2014): q(y|x), q(z|x,y), p(x|y,z), y "
            "marginalised when unlabelled, alpha-weighted classifier; one categorical task",
            relative_cost=5.0,
        ),
        ModelEntry(
            "supervised",
            "mtvae.models.supervised",
            "SupervisedConfig",
            "Supervised",
            "baseline: the same encoder and task heads, no decoder, no KL",
            relative_cost=1.0,
            reference_for=("task",),
        ),
    ]
}


def get_model_entry(name: str) -> ModelEntry:
    """Return the registry entry for ``name`` or raise a UserError with a suggestion."""
    if name not in MODELS:
        raise unknown_name("model", name, MODELS)
    return MODELS[name]


def build_model(config: Any, data_info: Any) -> Any:
    """Instantiate the model that ``config.name`` names for data described by ``data_info``.

    A model raises ValueError when its config cannot fit the data (e.g. a conv body whose
    strides do not divide the image side); that is the user's to fix, so it becomes a UserError.
    """
    cls = get_model_entry(config.name).model_cls
    try:
        return cls(config, data_info)
    except ValueError as exc:
        raise UserError(
            f"Model '{config.name}' does not fit images {tuple(data_info.image_shape)}: {exc}."
        ) from None
