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

import re
from dataclasses import replace
from fnmatch import fnmatch
from functools import cache

from mtvae.evaluate.metric import Metric, info, outcome

__all__ = ["Metric", "entries", "info", "lookup", "outcome"]

FAMILY_ORDER = ("reconstruction", "generation", "representation", "task")  # outcome kinds
GROUP_ORDER = (*FAMILY_ORDER, "codebook")  # and descriptive groups, for tables
# The outcome kinds a model's generative objective (its loss less its label terms) trains for:
# a comparison on them needs that objective converged, not only the whole loss
# (mtvae.analysis.convergence).
GENERATIVE_FAMILIES = ("reconstruction", "generation")
OOD_PREFIX = "ood/"


# Keys written by the trainer (mtvae.pipeline), not by an evaluation family.
TRAINING = (
    info("time/*", "s", "wall time of a training stage"),
    info("train/generative_converged", "", "whether the generative objective (the loss less "
         "its task and adversary terms) converged by the same rule as the whole objective"),
    info("train/generative_gap", "", "the generative objective (validation, per sample) at "
         "the kept epoch minus its best of the run: what selecting on the whole objective "
         "gave up of it"),
    info("train/*", "", "training bookkeeping (epochs, steps) and the convergence record "
         "(train/converged, train/epochs_trained, train/best_epoch)"),
    info("val/task/*", "", "a task head's score on the validation split (metric family "
         "`val`): what a study tunes a setting on, e.g. the best task weight of a front"),
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


# The smallest effect of interest of an outcome, by its unit (a hypothesis may declare its own
# with ``margin``): a difference smaller than this is not worth a claim, so an interval inside
# ±this reads "equivalent". Fractions (accuracies) and R²: one point; nats per image: one nat;
# per-pixel and per-value losses: a thousandth. Outcomes without a natural unit (FD, KID,
# disentanglement scores, target units) have none: they are never called equivalent unless a
# hypothesis says how much matters.
SMALLEST_EFFECT = {"fraction": 0.01, "nats per image": 1.0, "nats per pixel": 0.001,
                   "bits per value": 0.001, "per pixel": 0.001}
_R2 = re.compile(r"(^|/)r2(@|$)")


def smallest_effect(key: str) -> float | None:
    """The default smallest effect of interest of outcome ``key`` (None: none declared)."""
    metric = lookup(key)
    if metric is None or metric.kind != "outcome":
        return None
    if _R2.search(key):
        return 0.01
    return SMALLEST_EFFECT.get(metric.unit)
