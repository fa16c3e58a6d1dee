"""The quantizer registry and ``model.quantizer``: kinds, keys of one kind each, what a resolved
config holds (a default VQ's is what it was before kinds existed), and clear errors."""

from __future__ import annotations

import typing

import pytest
import torch
from pydantic import ValidationError

from mtvae.config import resolve_config
from mtvae.errors import UserError
from mtvae.latent.quantization import Quantizer
from mtvae.latent.quantizers import (
    QUANTIZERS,
    QuantizerConfig,
    QuantizerKind,
    build_quantizer,
    quantizer_code_dim,
)

# model.quantizer of every run directory written before kinds existed
OLD_VQ_KEYS = ["num_codes", "code_dim", "beta", "ema", "ema_decay", "ema_eps",
               "dead_code_steps", "kmeans_init", "cosine"]


def test_every_kind_is_registered_with_its_options_among_the_config_bases():
    assert set(typing.get_args(QuantizerKind)) == set(QUANTIZERS)
    owned: list[str] = []
    for entry in QUANTIZERS.values():
        assert issubclass(entry.cls, Quantizer) and issubclass(QuantizerConfig, entry.options)
        owned += list(entry.options.model_fields)
    assert len(owned) == len(set(owned)), "a key belongs to one kind only"


@pytest.mark.parametrize("options, code_dim, n_codes", [
    ({}, 16, 128),
    ({"num_codes": 32, "code_dim": 2, "gradient": "rotation"}, 2, 32),
    ({"kind": "fsq"}, 4, 1000),
    ({"kind": "fsq", "levels": [8, 6, 5]}, 3, 240),
])
def test_built_quantizer_matches_its_config_and_the_config_round_trips(options, code_dim, n_codes):
    config = QuantizerConfig(**options)
    quantizer = build_quantizer(config)
    assert isinstance(quantizer, config.entry.cls)
    assert (quantizer.code_dim, quantizer_code_dim(config), quantizer.n_codes) == (
        code_dim, code_dim, n_codes)
    dumped = config.model_dump(mode="json")
    assert QuantizerConfig.model_validate(dumped) == config
    z = torch.randn(2, code_dim, 3)
    out = quantizer.eval()(z)
    assert torch.equal(quantizer.indices(z), out.indices)
    torch.testing.assert_close(quantizer.codes_from_indices(out.indices), out.z_q)


def test_a_resolved_config_holds_only_the_keys_of_its_kind():
    assert list(QuantizerConfig().model_dump()) == OLD_VQ_KEYS  # so old run ids stay the same
    assert QuantizerConfig(gradient="rotation").model_dump()["gradient"] == "rotation"
    assert QuantizerConfig(kind="fsq").model_dump() == {"kind": "fsq", "levels": [8, 5, 5, 5]}


@pytest.mark.parametrize("options, message", [
    ({"kind": "fsq", "gradient": "rotation"}, "kind fsq does not take gradient (a key of kind vq)"),
    ({"kind": "fsq", "num_codes": 64}, "does not take num_codes"),
    ({"levels": [8, 5]}, "kind vq does not take levels (a key of kind fsq)"),
    ({"kind": "fsq", "levels": [4, 1]}, "at least 2"),
    ({"gradient": "rotate"}, "straight_through"),
    ({"kind": "lfq"}, "'vq' or 'fsq'"),
])
def test_bad_combinations_are_refused(options, message):
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        QuantizerConfig(**options)


def test_a_bad_quantizer_in_a_run_config_is_a_user_error_naming_the_key():
    with pytest.raises(UserError, match=r"model\.quantizer.*kind fsq does not take gradient"):
        resolve_config({"model": {"name": "mtvqvae",
                                  "quantizer": {"kind": "fsq", "gradient": "rotation"}}})
