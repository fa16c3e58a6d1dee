"""The quantizer registry: ``model.quantizer.kind`` -> the quantizer class and its options.

``model.quantizer`` is one flat section, :class:`QuantizerConfig`: ``kind`` picks the
quantizer, and each kind's options class contributes its own keys (``num_codes``, ``ema``, ...
for ``vq``; ``levels`` for ``fsq``). Setting a key of another kind is an error, and a resolved
config holds only the chosen kind's keys.

Adding a quantizer: write ``latent/<kind>.py`` with an options class (a
:class:`~mtvae.base.StrictModel`) and a :class:`~mtvae.latent.quantization.Quantizer`
subclass built as ``Class(options)``; then add its entry to :data:`QUANTIZERS`. The kinds
``model.quantizer.kind`` accepts, its description and the bases of :class:`QuantizerConfig`
(so its keys) are read from the entries (CONTRIBUTING.md, "Adding a quantizer").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, model_serializer, model_validator

from mtvae.base import StrictModel
from mtvae.latent.fsq import FiniteScalarQuantizer, FSQOptions
from mtvae.latent.quantization import Quantizer
from mtvae.latent.vq import VectorQuantizer, VQOptions


@dataclass(frozen=True)
class QuantizerEntry:
    """A quantizer kind: its class, the options class that holds its keys, one line on it
    (``mtvae models``, the docs) and a few words for the description of ``kind``."""

    cls: type[Quantizer]
    options: type[StrictModel]
    description: str
    short: str


QUANTIZERS: dict[str, QuantizerEntry] = {
    "vq": QuantizerEntry(
        VectorQuantizer, VQOptions,
        "nearest of num_codes learned codes (van den Oord et al. 2017): codebook loss or EMA, "
        "dead-code restart, k-means init; straight-through or rotation-trick gradient",
        "a learned codebook",
    ),
    "fsq": QuantizerEntry(
        FiniteScalarQuantizer, FSQOptions,
        "finite scalar quantization (Mentzer et al. 2024): each dimension bounded and rounded "
        "to its levels; an implicit grid of prod(levels) codes, no codebook loss",
        "finite scalar quantization",
    ),
}

QuantizerKind = Literal[tuple(QUANTIZERS)]  # type: ignore[valid-type]  # the registered kinds
DEFAULT_KIND = "vq"
KIND_DESCRIPTION = (
    "the quantizer: " + " or ".join(f"{kind} ({e.short})" for kind, e in QUANTIZERS.items())
    + "; the other keys of model.quantizer belong to one kind each"
)


# The bases are every kind's options, the first kind's keys first in field order (pydantic
# orders fields from the last base to the first).
class QuantizerConfig(*reversed([e.options for e in QUANTIZERS.values()])):  # type: ignore[misc]
    """``model.quantizer``: the quantizer ``kind`` and the options of every kind."""

    kind: QuantizerKind = Field(DEFAULT_KIND, description=KIND_DESCRIPTION)

    @property
    def entry(self) -> QuantizerEntry:
        """The registry entry of ``kind``."""
        return QUANTIZERS[self.kind]

    @model_validator(mode="after")
    def _only_keys_of_the_kind(self) -> QuantizerConfig:
        foreign = sorted(self.model_fields_set - set(self.entry.options.model_fields) - {"kind"})
        if foreign:
            listed = ", ".join(f"{key} (a key of kind {_owner(key)})" for key in foreign)
            raise ValueError(
                f"a quantizer of kind {self.kind} does not take {listed}; remove it, or set "
                "model.quantizer.kind to the kind it belongs to"
            )
        return self

    @model_serializer(mode="wrap")
    def _keys_of_the_kind(self, handler: Any) -> dict[str, Any]:
        """Only the chosen kind's keys; ``kind`` and later keys only where not at defaults.

        So the resolved config of a run that uses none of them is what it was before they
        existed, and its run id (a hash of that config) does not change.
        """
        data = handler(self)
        options = self.entry.options
        out = {} if self.kind == DEFAULT_KIND else {"kind": self.kind}
        for key in options.model_fields:
            later = key in getattr(options, "LATER_KEYS", ())
            if not (later and getattr(self, key) == options.model_fields[key].default):
                out[key] = data[key]
        return out


def _owner(key: str) -> str:
    """The kind whose options hold ``key``."""
    return next(kind for kind, e in QUANTIZERS.items() if key in e.options.model_fields)


def quantizer_code_dim(config: QuantizerConfig) -> int:
    """Code dimension of the quantizer ``config`` describes, without building it."""
    return config.entry.cls.code_dim_of(config)


def describe_quantizer(options: dict[str, Any]) -> str:
    """One line on the quantizer of a resolved ``model.quantizer`` section (for reports)."""
    config = QuantizerConfig.model_validate(options)
    return config.entry.cls.describe(config)


def build_quantizer(config: QuantizerConfig) -> Quantizer:
    """The quantizer ``config.kind`` names, built from ``config``."""
    return config.entry.cls(config)
