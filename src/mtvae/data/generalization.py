"""Generalization splits: hold a region of the data out of training and test on it.

``data.holdout`` names the region as a conjunction of conditions on tasks or ground-truth
factors, ``TERM&TERM...``; a term is ``NAME OP VALUE`` with ``OP`` one of ``= : != > >= < <=``
(``:`` means ``=``, so ``class:9`` holds out Fashion-MNIST's class 9). Task terms compare the
task's target (a class index, 0/1, or the regression value), factor terms the factor's level.
Named regions:

* ``shapes:square-right`` (or ``square-right``): squares in the right half of the image,
  ``shape=0&x>0.5``: squares are seen only on the left, the other shapes everywhere.

Samples in the region are removed from train and val; those of the test split move to a new
split ``ood`` (out of distribution), on which ``mtvae evaluate`` reports ``ood/...`` metrics
next to the in-distribution test metrics.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

import torch

from mtvae.data.dataset import SPLITS, Dataset, Split
from mtvae.errors import UserError, did_you_mean

ALIASES = {"square-right": "shape=0&x>0.5", "shapes:square-right": "shape=0&x>0.5"}
_OPS = {"=": operator.eq, ":": operator.eq, "!=": operator.ne, ">": operator.gt,
        ">=": operator.ge, "<": operator.lt, "<=": operator.le}
_TERM = re.compile(
    r"(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)\s*(?P<op>!=|>=|<=|=|:|>|<)\s*"
    r"(?P<value>-?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)"
)


@dataclass(frozen=True)
class Holdout:
    """A parsed ``data.holdout``: terms ``(name, op, value)``, all of which must hold."""

    spec: str
    terms: tuple[tuple[str, str, float], ...]


def parse_holdout(spec: str) -> Holdout:
    """Parse a holdout spec (or a named region); a ValueError says what the syntax is."""
    text = ALIASES.get(spec.strip(), spec.strip())
    terms = []
    for part in text.split("&"):
        match = _TERM.fullmatch(part.strip())
        if match is None:
            raise ValueError(
                f"bad holdout '{spec}': expected terms NAME OP VALUE joined by &, e.g. class:9 or "
                f"shape=0&x>0.5 (OP one of = : != > >= < <=), or a named region: "
                f"{', '.join(sorted(ALIASES))}"
            )
        terms.append((match["name"], match["op"], float(match["value"])))
    return Holdout(spec, tuple(terms))


def holdout_mask(split: Split, dataset: Dataset, holdout: Holdout) -> torch.Tensor:
    """``(N,)`` bool: True for the samples of ``split`` inside the held-out region."""
    inside = torch.ones(len(split), dtype=torch.bool)
    for name, op, value in holdout.terms:
        inside &= _OPS[op](_values(split, dataset, name, holdout.spec), value)
    return inside


def apply_holdout(dataset: Dataset, holdout: Holdout) -> None:
    """Drop the region from train and val, move the test split's part of it to ``ood``."""
    for name in SPLITS:
        split = dataset.split(name)
        inside = holdout_mask(split, dataset, holdout)
        kept = split.subset(torch.nonzero(~inside).squeeze(1))
        if len(kept) == 0:
            raise UserError(f"data.holdout '{holdout.spec}' covers every {name} sample of "
                            f"'{dataset.name}'; hold out a smaller region.")
        if name == "test":
            dataset.ood = split.subset(torch.nonzero(inside).squeeze(1))
            if len(dataset.ood) == 0:
                raise UserError(f"data.holdout '{holdout.spec}' matches no test sample of "
                                f"'{dataset.name}', so there is nothing to test on; check the "
                                "values (e.g. class:9 for a class, x>0.5 for a regression).")
        setattr(dataset, name, kept)
    dataset.description += f"; held out {holdout.spec} (ood: {len(dataset.ood)} test samples)"


def _values(split: Split, dataset: Dataset, name: str, spec: str) -> torch.Tensor:
    if name in split.targets:
        if not dataset.tasks[name].task_kind.scalar:
            raise UserError(f"data.holdout '{spec}': multilabel task '{name}' cannot be compared.")
        return split.targets[name].double()
    if name in dataset.factor_names and split.factors is not None:
        return split.factors[:, dataset.factor_names.index(name)].double()
    choices = sorted(set(dataset.tasks) | set(dataset.factor_names))
    raise UserError(f"data.holdout '{spec}': '{name}' is neither a task nor a factor of "
                    f"'{dataset.name}'.{did_you_mean(name, choices)} Available: {', '.join(choices)}.")
