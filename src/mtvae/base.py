"""The ground floor of every config: the strict pydantic base, ``--set`` parsing, dotted config
keys (``train.epochs``: set, read, drop, and nested dicts flattened to them), YAML files.

Each config sits next to the code it configures (``DataConfig`` in :mod:`mtvae.data.config`,
``TrainConfig`` in :mod:`mtvae.train.config`, a model's options beside the model, ...); they
all derive from :class:`StrictModel`. This module imports nothing of mtvae but its errors, so
every floor may build on it. (How it differs from :mod:`mtvae.runconfig`,
:mod:`mtvae.autoconf` and :mod:`mtvae.config`: see :mod:`mtvae.config`. The name stays
``base`` for the config modules all over the package that import it.)
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from mtvae.errors import UserError, did_you_mean, not_a_file, quoted, yaml_problem
from mtvae.safe_yaml import load_yaml, read_yaml_file

# Every integer setting (seeds, sizes, counts) lies within +-MAX_INTEGER: torch, numpy's seeds
# and SQLite all hold it, where 10**30 overflows them deep inside a run.
MAX_INTEGER = 2**31 - 1


class StrictModel(BaseModel):
    """Base for config sections: unknown keys are errors, assignments are validated, and
    integers (alone or in lists) lie within +-:data:`MAX_INTEGER`."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _bounded_integers(cls, value: Any) -> Any:
        if any(abs(n) > MAX_INTEGER for n in _integers(value)):
            raise ValueError(f"integer settings lie within +-{MAX_INTEGER:,} (2**31 - 1)")
        return value

    def resolve_auto(self, image_shape: tuple[int, ...]) -> None:
        """Replace, in place, the ``auto`` settings of this section and of the sections it
        holds with their values for images of ``image_shape`` (C, H, W). A section with such
        a setting overrides this, calls ``super().resolve_auto(image_shape)`` and sets it."""
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, StrictModel):
                value.resolve_auto(image_shape)


def _integers(value: Any) -> list[int]:
    """The integers in ``value`` and in the lists, tuples and mapping values it holds."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    items = value.values() if isinstance(value, dict) else value
    if isinstance(items, list | tuple) or isinstance(value, dict):
        return [n for item in items for n in _integers(item)]
    return []


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``a.b.c=value``; the value is read as YAML (``[a,b]`` is a list, ``3`` an int)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise UserError(f"Bad --set {quoted(text)}: expected key=value, e.g. --set train.epochs=5.")
    try:
        value = load_yaml(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise UserError(
            f"Bad --set {quoted(text)}: the value is not valid YAML ({yaml_problem(exc)})."
        ) from None
    return [part.strip() for part in key.split(".")], value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with each ``key=value`` override applied."""
    out = copy.deepcopy(raw)
    for text in overrides:
        path, value = parse_override(text)
        set_path(out, path, value, what=f"Bad --set {quoted(text)}")
    return out


def set_path(tree: dict[str, Any], key: str | list[str], value: Any, what: str = "") -> None:
    """Set the dotted ``key`` (``"train.epochs"``, or its parts) of ``tree`` to a copy of
    ``value``, making the sections on the way; a UserError, starting with ``what`` (default:
    the override's name), where a part on the way is a value."""
    parts = key.split(".") if isinstance(key, str) else key
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            what = what or f"Invalid config override '{'.'.join(parts)}'"
            raise UserError(f"{what}: '{part}' is a value, not a section.")
        node = child
    node[parts[-1]] = copy.deepcopy(value)


def get_path(tree: dict[str, Any], key: str) -> Any:
    """The value at the dotted ``key`` of ``tree`` (None where a part is missing)."""
    node: Any = tree
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def drop_path(tree: dict[str, Any], key: str) -> None:
    """Remove the dotted ``key`` from ``tree``, if it is there."""
    *parents, last = key.split(".")
    node = get_path(tree, ".".join(parents)) if parents else tree
    if isinstance(node, dict):
        node.pop(last, None)


def flatten(tree: dict[str, Any], prefix: str = "", leaves: tuple[str, ...] = ()) -> dict[str, Any]:
    """``{a: {b: 1}}`` -> ``{"a.b": 1}``: nested mappings become dotted keys; lists, scalars,
    empty mappings and the mappings under a key named in ``leaves`` are values."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value and key not in leaves:
            out.update(flatten(value, f"{prefix}{key}.", leaves))
        else:
            out[f"{prefix}{key}"] = value
    return out


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file; the top level must be a mapping."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"Config file '{path}' {not_a_file(path)}. Pass an existing YAML file.")
    try:
        data = read_yaml_file(path) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise UserError(f"Config file '{path}' is not valid YAML: {yaml_problem(exc)}.") from None
    if not isinstance(data, dict):
        raise UserError(f"Config file '{path}' must hold a mapping of sections (seed, data, ...).")
    return data


def validation_problems(
    exc: ValidationError, root: type[BaseModel], prefix: str = ""
) -> list[str]:
    """Turn a pydantic error into one sentence per bad key, saying what is allowed."""
    problems = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        key = ".".join(([prefix] if prefix else []) + loc)
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(root, loc[:-1])
            hint = did_you_mean(loc[-1], allowed)
            problems.append(
                f"unknown config key '{key}'.{hint} Allowed here: {', '.join(allowed)}"
            )
        else:
            problems.append(f"'{key}': {err['msg']} (got {quoted(err.get('input'))})")
    return problems


def _allowed_keys(root: type[BaseModel], path: list[str]) -> list[str]:
    cls: Any = root
    parts = iter(path)
    for part in parts:
        field = getattr(cls, "model_fields", {}).get(part)
        annotation = getattr(field, "annotation", None)
        if get_origin(annotation) is dict:  # {name: Model}: the next part is a name
            annotation = get_args(annotation)[1]
            next(parts, None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        cls = annotation
    return sorted(getattr(cls, "model_fields", {}))


def describe_keys(cls: type[BaseModel], prefix: str = "") -> list[tuple[str, str, str]]:
    """List ``(key, default, description)`` for every field, recursing into sections."""
    rows = []
    for name, field in cls.model_fields.items():
        key = f"{prefix}{name}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows.extend(describe_keys(annotation, key + "."))
        elif name != "model":
            rows.append((key, repr(field.get_default(call_default_factory=True)), field.description or ""))
    return rows
