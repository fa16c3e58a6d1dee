"""The configuration of one run: its sections, validated together, and how a raw dict becomes one.

The resolved config of a run is a plain nested dict written to ``config.yaml``; loading it back
through :func:`resolve_config` gives the same validated objects. Model sections are validated by
the config class the model registry names, so each model's options sit next to its code; the
other sections sit next to theirs (:mod:`mtvae.data.config`, :mod:`mtvae.train.config`,
:mod:`mtvae.evaluate.config`). A config validated here may still say ``auto``;
:mod:`mtvae.autoconf` resolves it against the data (the four config modules: :mod:`mtvae.config`).
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import Field, ValidationError

from mtvae.base import StrictModel, validation_problems
from mtvae.data.config import DataConfig
from mtvae.errors import UserError
from mtvae.evaluate.config import EvalConfig
from mtvae.models.registry import get_model_entry
from mtvae.train.config import TrainConfig


class RunConfig(StrictModel):
    """The full configuration of one run. ``model`` holds the model's own validated config."""

    seed: int = Field(
        0, ge=0, description="seed of the model's initialisation, the batch order and every "
        "random draw of training and evaluation (data.seed seeds the data itself)"
    )
    data: DataConfig = Field(default_factory=DataConfig, description="the data (data.*)")
    model: Any = Field(
        None, description="the model's own options, validated by the config class the model "
        "registry names for model.name (see `mtvae config --model NAME`)"
    )
    train: TrainConfig = Field(default_factory=TrainConfig, description="training (train.*)")
    eval: EvalConfig = Field(default_factory=EvalConfig, description="evaluation (eval.*)")

    @property
    def model_name(self) -> str:
        """The registry name of the model (``model.name``)."""
        return self.model.name

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as plain data (what ``config.yaml`` holds)."""
        out = self.model_dump(mode="json", exclude={"model"})
        model = self.model.model_dump(mode="json")
        out["model"] = {"name": model.pop("name"), **model}  # name first, for readers
        return {k: out[k] for k in ("seed", "data", "model", "train", "eval")}


def resolve_config(raw: dict[str, Any]) -> RunConfig:
    """Validate a raw nested dict into a :class:`RunConfig` (model section via the registry)."""
    raw = copy.deepcopy(raw)
    model_raw = raw.pop("model", None) or {}
    if not isinstance(model_raw, dict):
        raise UserError("Config section 'model' must be a mapping, e.g. {name: vae}.")
    name = model_raw.get("name")
    if not name:
        raise UserError("No model chosen: pass --model NAME (see `mtvae models`).")
    entry = get_model_entry(str(name))
    problems = []  # report every bad key at once, top-level and model alike
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as exc:
        problems += validation_problems(exc, RunConfig)
    try:
        model = entry.config_cls.model_validate(model_raw)
    except ValidationError as exc:
        problems += validation_problems(exc, entry.config_cls, prefix="model")
    if problems:
        raise UserError("Invalid configuration: " + "; ".join(problems) + ".")
    config.model = model
    return config
