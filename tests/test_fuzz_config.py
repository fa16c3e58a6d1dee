"""Property-based fuzzing of the config parser: any input ends in a config or a UserError."""

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mtvae.config import apply_overrides, parse_override, resolve_config
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


@settings(max_examples=200, deadline=None)
@given(VALUES)
def test_any_yaml_document_as_config_resolves_or_raises_a_user_error(document):
    try:
        resolve_config(document if isinstance(document, dict) else {"model": document})
    except UserError:
        pass
