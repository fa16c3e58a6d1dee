"""Run configuration, gathered in one place for users and the documentation.

Every name here lives next to the code it configures and is only re-exported:
:mod:`mtvae.base` (the strict pydantic base, ``--set`` overrides, YAML files),
:mod:`mtvae.data.config` (``DataConfig``), :mod:`mtvae.train.config` (``TrainConfig``),
:mod:`mtvae.evaluate.config` (``EvalConfig``) and :mod:`mtvae.runconfig` (``RunConfig`` and
:func:`resolve_config`, which validates the model section with the class the registry names).
Code inside mtvae imports from those modules, never from this one.

The four top-level config modules, from the ground floor up, and how they differ:

- :mod:`mtvae.base`: what every config class is built from (:class:`StrictModel`, ``--set``
  parsing, YAML files); it knows no config section, so every floor may use it.
- :mod:`mtvae.runconfig`: one run's config, its sections validated together
  (:class:`RunConfig`, :func:`resolve_config`); ``auto`` values are still ``auto`` there.
- :mod:`mtvae.autoconf`: each ``auto`` replaced by its number for the data a run trains on
  (:func:`~mtvae.autoconf.resolve_auto`), the config ``config.yaml`` records.
- :mod:`mtvae.config` (this module): those names gathered for users; nothing in mtvae imports it.
"""

from __future__ import annotations

from mtvae.base import (
    StrictModel,
    apply_overrides,
    describe_keys,
    load_config_file,
    parse_override,
    validation_problems,
)
from mtvae.data.config import DataConfig
from mtvae.evaluate.config import EvalConfig
from mtvae.runconfig import RunConfig, resolve_config
from mtvae.train.config import TrainConfig

__all__ = [
    "DataConfig",
    "EvalConfig",
    "RunConfig",
    "StrictModel",
    "TrainConfig",
    "apply_overrides",
    "describe_keys",
    "load_config_file",
    "parse_override",
    "resolve_config",
    "validation_problems",
]
