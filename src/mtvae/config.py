"""Run configuration: typed, validated objects, a YAML file plus ``--set key=value`` overrides.

The resolved config of a run is a plain nested dict written to ``config.yaml``; loading it back
through :func:`resolve_config` gives the same validated objects. Model sections are validated by
the config class the model registry names, so each model's options sit next to its code.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from mtvae.errors import UserError, did_you_mean, yaml_problem

# Config keys that act only through the labels a run sees. A model whose training reads no
# label (vae, vqvae) trains the same whatever they are; a study trains it once for them all.
LABEL_KEYS = (
    "data.label_fraction", "data.n_labelled", "data.label_balance", "data.label_policy",
    "data.mnar_strength", "data.val_labels", "train.labelled_per_batch", "model.tasks",
)


class StrictModel(BaseModel):
    """Base for config sections: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class DataConfig(StrictModel):
    """Which data to train on and how much of it."""

    source: str = Field("shapes", description="shapes | fashion-mnist | mnist | digits | npz:PATH")
    root: str | None = Field(None, description="directory holding the source's files")
    n_train: int | None = Field(None, ge=1, description="training-set size (default: source's)")
    n_val: int | None = Field(None, ge=1, description="validation-set size (default: source's)")
    n_test: int | None = Field(None, ge=1, description="test-set size (default: source's)")
    image_size: int = Field(
        32, ge=16, le=128,
        description="image side: shapes render at it, mnist/fashion-mnist (28x28) are zero-padded "
        "to it (28: native), digits (8x8) upsampled to it (a multiple of 8); npz keeps its own",
    )
    label_fraction: float | dict[str, float] = Field(
        1.0, description="share of training labels kept: one number, or per task {task: share}"
    )
    n_labelled: int | dict[str, int] | None = Field(
        None,
        description="training labels kept as a count instead of a share: one integer, or per "
        "task {task: count} (unnamed tasks keep all); 'all' or None: every label",
    )
    label_balance: Literal["none", "per_class"] = Field(
        "none",
        description="per_class: the kept labels of a categorical/binary task are balanced over "
        "its classes (mcar only; regression tasks: random); none: a random subset",
    )
    val_labels: Literal["policy", "all"] = Field(
        "policy",
        description="policy: validation keeps the training split's share of labels (model "
        "selection sees only those); all: every validation label",
    )
    label_policy: Literal["mcar", "disjoint", "mnar"] = Field(
        "mcar",
        description="mcar: independent per task; disjoint: at most one label per sample; "
        "mnar: the chance a label is missing depends on its value (data.mnar_strength)",
    )
    mnar_strength: float = Field(
        2.0, description="mnar: keep weights exp(-strength * score); >0 drops high labels more"
    )
    extra_tasks: list[str] = Field(
        default_factory=list,
        description="relatedness controls: random, random:K, composite:A+B (parts may be "
        "thresholded, x>0.5), each optionally named NAME=...",
    )
    nuisance: bool = Field(
        False, description="shapes: add a brightness factor that changes images but is no task"
    )
    holdout: str | None = Field(
        None,
        description="held-out region tested as split ood, e.g. shapes:square-right, class:9, "
        "shape=0&x>0.5",
    )
    seed: int = Field(0, ge=0, description="seed of the data itself (generation and splits)")

    @field_validator("extra_tasks")
    @classmethod
    def _extra_tasks_parse(cls, value: list[str]) -> list[str]:
        from mtvae.data.relatedness import parse_extra_task

        names = [parse_extra_task(spec).name for spec in value]
        if len(set(names)) < len(names):
            raise ValueError(f"extra task names must differ, got {names}; name them NAME=...")
        return value

    @field_validator("holdout")
    @classmethod
    def _holdout_parses(cls, value: str | None) -> str | None:
        from mtvae.data.generalization import parse_holdout

        if value is not None:
            parse_holdout(value)
        return value

    @field_validator("n_labelled", mode="before")
    @classmethod
    def _all_is_none(cls, value: Any) -> Any:
        """``all`` (the label-count axis' top level) means every label, like None."""
        if value == "all":
            return None
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if v != "all"} or None
        return value

    @field_validator("n_labelled")
    @classmethod
    def _counts_non_negative(cls, value: int | dict[str, int] | None) -> Any:
        values = value.values() if isinstance(value, dict) else [] if value is None else [value]
        if any(v < 0 for v in values):
            raise ValueError("label counts must be non-negative integers (or 'all')")
        return value

    @model_validator(mode="after")
    def _one_way_to_count_labels(self) -> DataConfig:
        if self.n_labelled is not None and self.label_fraction != 1.0:
            raise ValueError(
                "data.n_labelled and data.label_fraction both set how many training labels to "
                "keep; set only one (leave label_fraction at 1.0 when using n_labelled)"
            )
        if self.label_balance == "per_class" and self.label_policy != "mcar":
            raise ValueError(
                f"data.label_balance=per_class draws balanced random subsets, which only "
                f"label_policy=mcar does; got label_policy={self.label_policy}"
            )
        return self

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
    checkpoint_every: int | None = Field(
        None, ge=1, description="also checkpoint every N batches within an epoch (None: per epoch)"
    )
    nonfinite: Literal["stop", "skip"] = Field(
        "stop", description="on a NaN/inf loss: stop with a message, or skip that batch"
    )
    max_skipped: int = Field(100, ge=0, description="with nonfinite=skip: give up after this many")
    labelled_per_batch: Annotated[int, Field(ge=0)] | Literal["auto"] = Field(
        "auto",
        description="extra labelled samples appended to each training batch (0: off); auto: "
        "batch_size // 2 for models with task heads when under half the training samples "
        "carry a label, else 0",
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
    iwae_n: int = Field(200, ge=1, description="test images used for nll/iwae")
    batch_size: int = Field(500, ge=1)
    n_grid: int = Field(64, ge=1, description="images in reconstruction/sample grids")
    probe_budgets: list[int | Literal["all"]] = Field(
        default_factory=lambda: [100, 1000, "all"],
        description="labelled training points per probe (label-efficiency curve); 'all': every one",
    )
    probe_max_dims: int = Field(
        128, ge=1, description="wider representations are probed on this many principal components"
    )
    disent_n: int = Field(10000, ge=2, description="test points used by disentanglement metrics")
    disent_max_dims: int = Field(
        64, ge=1, description="skip disent for wider representations (e.g. flattened VQ code grids)"
    )
    gen_samples: int = Field(
        2000, ge=4, description="generated (and at most as many real test) images for gen/*"
    )
    kid_subsets: int = Field(100, ge=1, description="random subsets averaged by gen/kid")

    @field_validator("probe_budgets")
    @classmethod
    def _positive_budgets(cls, value: list[int | str]) -> list[int | str]:
        if not value or any(isinstance(b, int) and b < 1 for b in value):
            raise ValueError("give at least one budget; each a positive integer or 'all'")
        return list(dict.fromkeys(value))  # drop repeats, keep order


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
        raise UserError(
            f"Bad --set '{text}': the value is not valid YAML ({yaml_problem(exc)})."
        ) from None
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
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise UserError(f"Config file '{path}' is not valid YAML: {yaml_problem(exc)}.") from None
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
