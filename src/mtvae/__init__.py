"""mtvae: multitask variational autoencoders in PyTorch.

>>> import mtvae
>>> model, config = mtvae.load("runs/demo")       # doctest: +SKIP
>>> results = mtvae.load_study("runs/quick")      # doctest: +SKIP

Heavy modules are imported lazily so ``import mtvae`` and the CLI start fast.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = [
    "load",
    "train_run",
    "resume_run",
    "resolve_config",
    "load_dataset",
    "load_study",
    "intervene",
    "__version__",
]

_LAZY = {
    "load": "mtvae.run_directory",
    "train_run": "mtvae.pipeline",
    "resume_run": "mtvae.pipeline",
    "resolve_config": "mtvae.runconfig",
    "load_dataset": "mtvae.data.sources",
    "load_study": "mtvae.analysis.results",
}


def intervene(model: Any, x: Any, task: str, value: float) -> Any:
    """Encode images ``x``, set task block ``task`` to the conditional prior for ``value``, decode.

    Needs an ``mtvae`` model trained with ``model.prior=conditional``; returns mean images.
    """
    from mtvae.errors import UserError
    from mtvae.models.capabilities import Conditional

    if not isinstance(model, Conditional):
        raise UserError(f"A '{type(model).__name__}' model has no task blocks to intervene on.")
    return model.intervene(x, task, value)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mtvae' has no attribute '{name}'")
