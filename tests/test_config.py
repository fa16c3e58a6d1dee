"""Config parsing, overrides and validation messages."""

import pytest
import yaml

from mtvae.config import apply_overrides, load_config_file, parse_override, resolve_config
from mtvae.errors import UserError


def test_override_values_are_read_as_yaml():
    assert parse_override("model.tasks=[shape,scale]") == (["model", "tasks"], ["shape", "scale"])
    assert parse_override("train.epochs=3") == (["train", "epochs"], 3)
    assert parse_override("train.grad_clip=null") == (["train", "grad_clip"], None)


def test_overrides_build_nested_sections_without_touching_input():
    raw = {"train": {"epochs": 2}}
    out = apply_overrides(raw, ["train.lr=0.01", "data.n_train=100"])
    assert out == {"train": {"epochs": 2, "lr": 0.01}, "data": {"n_train": 100}}
    assert raw == {"train": {"epochs": 2}}


@pytest.mark.parametrize("bad", ["train.epochs", "=3", "train.epochs=[1,"])
def test_malformed_override_is_a_user_error(bad):
    with pytest.raises(UserError, match="Bad --set"):
        parse_override(bad)


def test_override_into_a_value_is_rejected():
    with pytest.raises(UserError, match="is a value, not a section"):
        apply_overrides({"seed": 1}, ["seed.x=2"])


def test_resolved_config_round_trips_through_yaml():
    config = resolve_config({"model": {"name": "vae", "beta": 4}, "train": {"lr": "1e-3"}})
    assert config.model.beta == 4.0 and config.train.lr == pytest.approx(1e-3)
    again = resolve_config(yaml.safe_load(yaml.safe_dump(config.to_dict())))
    assert again.to_dict() == config.to_dict()
    assert list(config.to_dict()) == ["seed", "data", "model", "train", "eval"]


def test_unknown_key_suggests_the_closest_and_lists_allowed():
    with pytest.raises(UserError) as err:
        resolve_config({"model": {"name": "vae", "latnet_dim": 3}})
    message = str(err.value)
    assert "unknown config key 'model.latnet_dim'" in message
    assert "Did you mean 'latent_dim'" in message and "beta" in message


def test_unknown_nested_key_lists_that_sections_keys():
    with pytest.raises(UserError) as err:
        resolve_config({"model": {"name": "vae", "encoder": {"arhc": "mlp"}}})
    assert "model.encoder.arhc" in str(err.value) and "Did you mean 'arch'" in str(err.value)


def test_every_bad_value_is_reported_at_once():
    with pytest.raises(UserError) as err:
        resolve_config({"model": {"name": "vae", "latent_dim": 0}, "train": {"epochs": "many"}})
    assert "'model.latent_dim'" in str(err.value) and "'train.epochs'" in str(err.value)


def test_missing_or_unknown_model_name():
    with pytest.raises(UserError, match="No model chosen"):
        resolve_config({})
    with pytest.raises(UserError, match="Did you mean 'vae'"):
        resolve_config({"model": {"name": "vea"}})


def test_config_file_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_config_file(tmp_path / "nope.yaml")
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(UserError, match="must hold a mapping"):
        load_config_file(listing)
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: [1,\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_config_file(broken)


@pytest.mark.parametrize("value", [".inf", ".nan", "-.inf"])
def test_non_finite_numbers_are_rejected(value):
    from mtvae.config import apply_overrides

    with pytest.raises(UserError, match="finite number"):
        resolve_config(apply_overrides({"model": {"name": "vae"}}, [f"train.lr={value}"]))


def _fields_without_description(cls, prefix: str = "") -> list[str]:
    """Every field of ``cls`` and of its nested config sections that has no description."""
    from pydantic import BaseModel

    missing = []
    for name, field in cls.model_fields.items():
        key = f"{prefix}{name}"
        if not (field.description or "").strip():
            missing.append(key)
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            missing += _fields_without_description(field.annotation, key + ".")
    return missing


def test_every_config_field_has_a_description():
    """The docs' config reference and `mtvae config` are generated from the descriptions."""
    from mtvae.models.registry import MODELS
    from mtvae.runconfig import RunConfig
    from mtvae.study import spec

    sections = [(RunConfig, "")]
    sections += [(entry.config_cls, "model.") for entry in MODELS.values()]
    sections += [(cls, f"{cls.__name__}:") for cls in
                 (spec.StudySpec, spec.DatasetSpec, spec.VariantSpec, spec.HypothesisSpec)]
    missing = [key for cls, prefix in sections for key in _fields_without_description(cls, prefix)]
    assert missing == []
