"""Run configuration: typed, validated objects, a YAML file plus ``--set key=value`` overrides.

The resolved config of a run is a plain nested dict written to ``config.yaml``; loading it back
through :func:`resolve_config` gives the same validated objects. Model sections are validated by
the config class the model registry names, so each model's options sit next to its code.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mtvae.errors import UserError, did_you_mean


class StrictModel(BaseModel):
    """Base for config sections: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(StrictModel):
    """Which data to train on and how much of it."""

    source: str = Field("shapes", description="shapes | fashion-mnist | mnist | digits | npz:PATH")
    root: str | None = Field(None, description="directory holding the source's files")
    n_train: int | None = Field(None, ge=1, description="training-set size (default: source's)")
    n_val: int | None = Field(None, ge=1, description="validation-set size (default: source's)")
    n_test: int | None = Field(None, ge=1, description="test-set size (default: source's)")
    image_size: int = Field(32, ge=16, le=128, description="image side for generated data")
    label_fraction: float | dict[str, float] = Field(
        1.0, description="share of training labels kept: one number, or per task {task: share}"
    )
    label_policy: Literal["mcar", "disjoint"] = Field(
        "mcar", description="mcar: independent per task; disjoint: at most one label per sample"
    )
    seed: int = Field(0, ge=0, description="seed of the data itself (generation and splits)")

    @field_validator("label_fraction")
    @classmethod
    def _fractions_in_range(cls, value: float | dict[str, float]) -> float | dict[str, float]:
        values = value.values() if isinstance(value, dict) else [value]
        if any(not 0.0 <= v <= 1.0 for v in values):
            raise ValueError("label fractions must lie in [0, 1]")
        return value


class TrainConfig(StrictModel):
    """Optimisation and bookkeeping for one training run."""

    epochs: int = Field(20, ge=1)
    batch_size: int = Field(128, ge=1)
    lr: float = Field(1e-3, gt=0)
    optimizer: Literal["adam", "adamw"] = "adam"
    weight_decay: float = Field(0.0, ge=0)
    grad_clip: float | None = Field(None, gt=0, description="max gradient norm (None: no clipping)")
    early_stopping: int | None = Field(
        None, ge=1, description="stop after this many epochs without validation improvement"
    )
    restore_best: bool = Field(True, description="final weights = best validation epoch")
    labelled_per_batch: int = Field(
        0, ge=0, description="extra labelled samples appended to each training batch (0: off)"
    )
    threads: int | None = Field(None, ge=1, description="torch CPU threads (None: torch default)")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool = Field(False, description="bfloat16/float16 autocast on CUDA")
    log_every: int = Field(50, ge=1, description="log a training record every N steps")
    tensorboard: bool = Field(False, description="also write TensorBoard events (needs tensorboard)")
    progress: bool = Field(True, description="show a progress bar")


class EvalConfig(StrictModel):
    """Evaluation settings."""

    iwae_k: int = Field(1000, ge=1, description="importance samples for nll/iwae")
    iwae_n: int = Field(1000, ge=1, description="test images used for nll/iwae")
    batch_size: int = Field(500, ge=1)
    n_grid: int = Field(64, ge=1, description="images in reconstruction/sample grids")


class RunConfig(StrictModel):
    """The full configuration of one run. ``model`` holds the model's own validated config."""

    seed: int = Field(0, ge=0)
    data: DataConfig = Field(default_factory=DataConfig)
    model: Any = None
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)

    @property
    def model_name(self) -> str:
        """The registry name of the model (``model.name``)."""
        return self.model.name

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as plain data (what ``config.yaml`` holds)."""
        out = self.model_dump(mode="json", exclude={"model"})
        model = self.model.model_dump(mode="json")
        out["model"] = {"name": model.pop("name"), **model}  # name first, for readers
        return {k: out[k] for k in ("seed", "data", "model", "train", "eval")}


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``a.b.c=value``; the value is read as YAML (``[a,b]`` is a list, ``3`` an int)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise UserError(f"Bad --set '{text}': expected key=value, e.g. --set train.epochs=5.")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise UserError(f"Bad --set '{text}': the value is not valid YAML ({exc}).") from None
    return [part.strip() for part in key.split(".")], value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with each ``key=value`` override applied."""
    out = copy.deepcopy(raw)
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise UserError(f"Bad --set '{text}': '{part}' is a value, not a section.")
            node = child
        node[path[-1]] = value
    return out


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file; the top level must be a mapping."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"Config file '{path}' does not exist. Pass an existing YAML file.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"Config file '{path}' is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise UserError(f"Config file '{path}' must hold a mapping of sections (seed, data, ...).")
    return data


def resolve_config(raw: dict[str, Any]) -> RunConfig:
    """Validate a raw nested dict into a :class:`RunConfig` (model section via the registry)."""
    from mtvae.models.registry import get_model_entry

    raw = copy.deepcopy(raw)
    model_raw = raw.pop("model", None) or {}
    if not isinstance(model_raw, dict):
        raise UserError("Config section 'model' must be a mapping, e.g. {name: vae}.")
    name = model_raw.get("name")
    if not name:
        raise UserError("No model chosen: pass --model NAME (see `mtvae models`).")
    entry = get_model_entry(str(name))
    problems = []  # report every bad key at once, top-level and model alike
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as exc:
        problems += validation_problems(exc, RunConfig)
    try:
        model = entry.config_cls.model_validate(model_raw)
    except ValidationError as exc:
        problems += validation_problems(exc, entry.config_cls, prefix="model")
    if problems:
        raise UserError("Invalid configuration: " + "; ".join(problems) + ".")
    config.model = model
    return config


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
            problems.append(f"'{key}': {err['msg']} (got {err.get('input')!r})")
    return problems


def _allowed_keys(root: type[BaseModel], path: list[str]) -> list[str]:
    cls: Any = root
    for part in path:
        field = getattr(cls, "model_fields", {}).get(part)
        annotation = getattr(field, "annotation", None)
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
