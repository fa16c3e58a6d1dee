"""The metric catalogue: what every ``results.json`` key means, declared once.

Each module that computes metrics declares its key patterns beside the code, as a ``METRICS``
tuple of :class:`~mtvae.evaluate.metric.Metric` (``recon/*`` in :mod:`~mtvae.evaluate.reconstruction`, ``task/*`` in
:mod:`~mtvae.evaluate.tasks`, ``probe/*``, ``disent/*``, ``gen/*`` in
:mod:`~mtvae.evaluate.families`, ...). This module gathers them; evaluation, the study
statistics and the report all read :func:`lookup`:

* ``family`` — reconstruction, generation, representation, task (the research question's four
  outcome kinds), or a descriptive group (``codebook``); None for bookkeeping.
* ``direction`` — ``higher`` or ``lower`` is better (None for info metrics).
* ``kind`` — ``outcome`` (a property of the model that may be compared between variants) or
  ``info`` (a count, a size, a setting or a diagnostic: shown, never compared).
* ``unit`` and a one-line ``definition``.

Within one module's tuple the first matching pattern wins, and the modules' key prefixes are
disjoint. ``ood/<key>`` (the same metric on a held-out split) inherits ``<key>``'s entry.
"""

from __future__ import annotations

from dataclasses import replace
from fnmatch import fnmatch
from functools import cache

from mtvae.evaluate.metric import Metric, info, outcome

__all__ = ["Metric", "entries", "info", "lookup", "outcome"]

FAMILY_ORDER = ("reconstruction", "generation", "representation", "task")  # outcome kinds
GROUP_ORDER = (*FAMILY_ORDER, "codebook")  # and descriptive groups, for tables
OOD_PREFIX = "ood/"


# Keys written by the trainer (mtvae.runs), not by an evaluation family.
TRAINING = (
    info("time/*", "s", "wall time of a training stage"),
    info("train/*", "", "training bookkeeping (epochs, steps) and the convergence record "
         "(train/converged, train/epochs_trained, train/best_epoch)"),
    info("val/*", "", "validation bookkeeping (best loss and its epoch)"),
)


@cache
def entries() -> tuple[Metric, ...]:
    """Every declared pattern, module by module (imported here to keep this module light)."""
    from mtvae.evaluate import codebook, families, likelihood, reconstruction, tasks

    return (*reconstruction.METRICS, *likelihood.METRICS, *tasks.METRICS, *codebook.METRICS,
            *families.METRICS, *TRAINING)


@cache
def lookup(key: str) -> Metric | None:
    """The catalogue entry of a metric key (None: undeclared, treated as info)."""
    if key.startswith(OOD_PREFIX):
        inner = lookup(key[len(OOD_PREFIX):])
        if inner is None:
            return None
        return replace(inner, pattern=OOD_PREFIX + inner.pattern,
                       definition=f"on the held-out (ood) split: {inner.definition}")
    return next((m for m in entries() if fnmatch(key, m.pattern)), None)


def is_outcome(key: str) -> bool:
    """Whether ``key`` is an outcome (the only metrics ever compared)."""
    metric = lookup(key)
    return metric is not None and metric.is_outcome


def family(key: str) -> str | None:
    """The key's family (outcome kind or descriptive group); None for bookkeeping."""
    metric = lookup(key)
    return metric.family if metric else None


def higher_is_better(key: str) -> bool:
    """Whether a higher value of ``key`` is better."""
    metric = lookup(key)
    return metric.higher_is_better if metric else True


def definition(key: str) -> str:
    """The one-line definition of ``key`` ('' when undeclared)."""
    metric = lookup(key)
    return metric.definition if metric else ""


def direction_word(key: str) -> str:
    """``higher`` / ``lower`` for outcomes, ``—`` for info metrics."""
    metric = lookup(key)
    return metric.direction if metric and metric.direction else "—"
