"""What a metric key means: :class:`Metric` and its two kinds, declared beside the code.

Every module that computes metrics declares its keys with :func:`outcome` and :func:`info`;
:mod:`mtvae.evaluate.catalogue` gathers those declarations and looks keys up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Metric:
    """One metric key pattern and what it means."""

    pattern: str
    family: str | None
    direction: Literal["higher", "lower"] | None
    kind: Literal["outcome", "info"]
    unit: str
    definition: str

    @property
    def is_outcome(self) -> bool:
        """Whether variants are ever compared on this metric."""
        return self.kind == "outcome"

    @property
    def higher_is_better(self) -> bool:
        """True unless lower is better (info metrics: True, never used)."""
        return self.direction != "lower"


def outcome(pattern: str, family: str, direction: Literal["higher", "lower"], unit: str,
            definition: str) -> Metric:
    """An outcome metric: compared between variants, ``direction`` is better."""
    return Metric(pattern, family, direction, "outcome", unit, definition)


def info(pattern: str, unit: str, definition: str, family: str | None = None) -> Metric:
    """An info metric (a count, size, setting or diagnostic): shown, never compared. With a
    ``family`` it is a descriptive column of the result tables; without, bookkeeping."""
    return Metric(pattern, family, None, "info", unit, definition)
