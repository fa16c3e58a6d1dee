"""Property-based fuzzing of the config parser: any input ends in a config or a UserError."""

import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mtvae.config import (
    RunConfig,
    apply_overrides,
    load_config_file,
    parse_override,
    resolve_config,
)
from mtvae.errors import UserError

KEYS = ["seed", "data.n_train", "data.label_fraction", "data.source", "model.latent_dim",
        "model.beta", "model.likelihood", "model.encoder.channels", "train.epochs",
        "train.lr", "train.batch_size", "train.grad_clip", "model.tasks", "train.nonexistent",
        "eval.iwae_k", "model", "train"]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_any_override_text_parses_or_raises_a_user_error(text):
    try:
        path, _ = parse_override(text)
    except UserError as err:
        assert "Bad --set" in str(err)
    else:
        assert path and all(isinstance(part, str) for part in path)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(KEYS), VALUES), max_size=4))
def test_any_overrides_resolve_or_raise_a_user_error(pairs):
    overrides = [f"{key}={yaml.safe_dump(value, default_flow_style=True).strip()}"
                 for key, value in pairs]
    try:
        raw = apply_overrides({"model": {"name": "vae"}}, overrides)
        config = resolve_config(raw)
    except UserError as err:
        assert str(err)  # a message, never a crash of another kind
    else:
        assert resolve_config(config.to_dict()).to_dict() == config.to_dict()


def _model_section(name: str):
    from mtvae.models.registry import get_model_entry

    fields = get_model_entry(name).config_cls.model_fields
    optional = {"likelihood": st.sampled_from(["bernoulli", "gaussian", "mse"])} \
        if "likelihood" in fields else {}
    return st.fixed_dictionaries({"name": st.just(name)}, optional=optional)


def _valid_documents():
    """Config documents that must resolve: a model of the registry and in-range settings."""
    from mtvae.models.registry import MODELS

    return st.fixed_dictionaries(
        {"model": st.sampled_from(sorted(MODELS)).flatmap(_model_section)},
        optional={
            "seed": st.integers(0, 10**6),
            "data": st.fixed_dictionaries({}, optional={
                "n_train": st.integers(1, 10**5), "image_size": st.integers(16, 128),
                "label_fraction": st.floats(0, 1), "label_policy": st.sampled_from(
                    ["mcar", "disjoint", "mnar"])}),
            "train": st.fixed_dictionaries({}, optional={
                "epochs": st.integers(1, 100), "lr": st.floats(1e-6, 1.0),
                "batch_size": st.integers(1, 1024), "optimizer": st.sampled_from(
                    ["adam", "adamw"]), "grad_clip": st.one_of(st.none(), st.floats(0.1, 10))}),
            "eval": st.fixed_dictionaries({}, optional={"iwae_k": st.integers(1, 5000)}),
        },
    )


def _leaves(document: dict, prefix: tuple = ()) -> list[tuple]:
    """Every ``(path, value)`` of a nested mapping's leaves."""
    out = []
    for key, value in document.items():
        if isinstance(value, dict) and value:
            out += _leaves(value, (*prefix, key))
        else:
            out.append(((*prefix, key), value))
    return out


@st.composite
def _mutated_documents(draw):
    """A valid document with one leaf or section replaced by, or a key added with, any value."""
    document = draw(_valid_documents())
    paths = [path for path, _ in _leaves(document)] + [(section,) for section in document]
    path = draw(st.sampled_from(paths))
    if draw(st.booleans()):  # a new key beside the leaf (usually an unknown key)
        path = (*path[:-1], draw(st.sampled_from(["nope", "lr", "n_val", "beta", "name"])))
    node = document
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = draw(VALUES)
    return document


DOCUMENTS = st.one_of(
    st.tuples(st.just("valid"), _valid_documents()),
    st.tuples(st.just("mutated"), _mutated_documents()),
    st.tuples(st.just("arbitrary"), VALUES),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DOCUMENTS)
def test_any_yaml_document_as_config_resolves_or_raises_a_user_error(kind_and_document):
    """Through the real file path: a config file holding any YAML document gives a config or a
    UserError, nothing else; every valid document resolves, to its own settings."""
    kind, document = kind_and_document
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(yaml.safe_dump(document), encoding="utf-8")
        try:
            config = resolve_config(load_config_file(path))
        except UserError as err:
            event(f"{kind}: user error")
            assert kind != "valid", err
            assert str(err).strip()
            return
    event(f"{kind}: resolved")
    assert isinstance(config, RunConfig)
    resolved = config.to_dict()
    for key_path, value in _leaves(document) if kind == "valid" else []:  # others may coerce
        if value == {}:
            continue  # an empty section: its defaults
        node = resolved
        for part in key_path:
            node = node[part]
        assert node == value, key_path
    assert resolve_config(resolved).to_dict() == resolved
