"""Training stages that follow the main training of some models, by name.

A model that needs one declares it as ``model.second_stage`` (a stage name, or None); the run
(:mod:`mtvae.pipeline`) calls the stage right after the main training, and ``mtvae train --resume
RUN_DIR --stage NAME`` runs it again on a finished run. Neither knows any model by name.
A stage is ``fn(model, dataset, config, run_dir, log, start_step) -> results``; it rewrites
``model.safetensors`` itself and returns flat keys to merge into ``results.json``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from mtvae.errors import unknown_name

# name -> "module:function", imported on first use
STAGES: dict[str, str] = {"prior": "mtvae.train.prior_stage:train_prior"}


def get_stage(name: str) -> Callable[..., dict]:
    """The stage function called ``name`` (a UserError with a suggestion when unknown)."""
    if name not in STAGES:
        raise unknown_name("training stage", name, STAGES)
    module, function = STAGES[name].split(":")
    return getattr(importlib.import_module(module), function)
