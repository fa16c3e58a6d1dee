"""Messages that must not mislead (issue #19): no third-party advice to load unsafely, the
user's own input echoed back, no pydantic internals, nested study overrides read as keys."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from mtvae.errors import UserError
from mtvae.study.spec import parse_spec

SPEC = {"name": "t", "datasets": {"shapes": {"tasks": ["shape"]}},
        "base": {"data": {"n_train": 64, "n_val": 16, "n_test": 16, "image_size": 16}},
        "variants": {"vae": {"model": "vae"}}, "conditions": {"label_fraction": [0.5, 1.0]},
        "seeds": [0]}


def spec_with(**changes):
    spec = copy.deepcopy(SPEC)
    for key, value in changes.items():
        spec[key] = value
    return spec


def test_seeds_zero_is_reported_as_zero():
    with pytest.raises(UserError) as err:
        parse_spec(spec_with(seeds=0))
    assert "(got 0)" in str(err.value) and "got []" not in str(err.value)
    assert "Value error" not in str(err.value) and "at least 1" in str(err.value)


def test_a_nested_set_is_read_as_dotted_keys_against_the_axes():
    spec = spec_with(variants={"vae": {"model": "vae", "set": {"data": {"n_val": 300}}}})
    assert parse_spec(spec).variants["vae"].set == {"data.n_val": 300}
    spec = spec_with(variants={"vae": {"model": "vae", "set": {"data": {"label_fraction": 1}}}})
    with pytest.raises(UserError, match="sets 'data.label_fraction'"):
        parse_spec(spec)


def test_sidecar_errors_name_keys_not_pydantic_union_members(tmp_path):
    from mtvae.data.npz import load_npz

    np.savez(tmp_path / "d.npz", x=np.random.default_rng(0).random((40, 4, 4)),
             y_d=np.arange(40) % 3)
    (tmp_path / "d.yaml").write_text("tasks: {d: {kind: categorical, n_clases: 3}}\n")
    with pytest.raises(UserError) as err:
        load_npz(tmp_path / "d.npz")
    text = str(err.value)
    assert "'tasks.d.n_clases'" in text and "Did you mean 'n_classes'" in text
    assert "SidecarTask" not in text and "literal[" not in text
    (tmp_path / "d.yaml").write_text("tasks: {d: categorical}\n")  # the short form still works
    assert load_npz(tmp_path / "d.npz").tasks["d"].kind == "categorical"


def test_object_arrays_are_refused_without_numpy_s_allow_pickle_advice(tmp_path):
    from mtvae.data.npz import load_npz

    np.savez(tmp_path / "o.npz", x=np.array([{"a": 1}] * 4, dtype=object))
    with pytest.raises(UserError) as err:
        load_npz(tmp_path / "o.npz")
    assert "allow_pickle" not in str(err.value) and "pickled" in str(err.value)
