"""``EvalConfig``: the settings of a run's evaluation."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from mtvae.base import StrictModel


class EvalConfig(StrictModel):
    """Evaluation settings."""

    iwae_k: int = Field(1000, ge=1, description="importance samples for nll/iwae")
    iwae_n: int = Field(200, ge=1, description="test images used for nll/iwae")
    batch_size: int = Field(
        500, ge=1, description="test images per forward pass while evaluating (memory only; "
        "the metrics do not depend on it)"
    )
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
