"""``DataConfig``: which data a run trains on, how much of it and which labels it keeps."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_serializer, model_validator

from mtvae.base import StrictModel

OMITTED_AT_DEFAULT = ("skip_unreadable",)


class DataConfig(StrictModel):
    """Which data to train on and how much of it."""

    source: str = Field(
        "shapes", description="a source `mtvae datasets` lists: its name (e.g. shapes, mnist), or "
        "NAME:PATH for one that reads your files (e.g. npz:PATH, folder:PATH)")
    root: str | None = Field(None, description="directory holding the source's files")
    n_train: int | None = Field(None, ge=1, description="training-set size (default: source's)")
    n_val: int | None = Field(None, ge=1, description="validation-set size (default: source's)")
    n_test: int | None = Field(None, ge=1, description="test-set size (default: source's)")
    image_size: int = Field(
        32, ge=16, le=128,
        description="image side: shapes render at it, mnist/fashion-mnist (28x28) are zero-padded "
        "to it (28: native), digits (8x8) upsampled to it (a multiple of 8), celeba and folder "
        "images resized to it (celeba's default: 64); npz keeps its own",
    )
    skip_unreadable: bool = Field(
        False, description="celeba/folder: leave out image files that cannot be decoded (their "
        "count is in the dataset's description) instead of stopping with an error naming them",
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

    @model_serializer(mode="wrap")
    def _omit_new_keys_at_default(self, handler) -> dict[str, Any]:
        """Keys added after studies existed are left out at their default: a run id hashes the
        resolved config, so existing studies keep their ids (and resume) across versions."""
        out = handler(self)
        for key in OMITTED_AT_DEFAULT:
            if key in out and getattr(self, key) == type(self).model_fields[key].default:
                del out[key]
        return out

    @model_validator(mode="before")
    @classmethod
    def _source_image_size(cls, value: Any) -> Any:
        """A source's own default side (celeba: 64) where data.image_size is not set."""
        if isinstance(value, dict) and "image_size" not in value:
            from mtvae.data.sources import SOURCES

            entry = SOURCES.get(str(value.get("source", "")).partition(":")[0])
            if entry is not None and entry.image_size is not None:
                return {**value, "image_size": entry.image_size}
        return value

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
