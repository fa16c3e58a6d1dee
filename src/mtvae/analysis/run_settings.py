"""What a stored run's config says about how it was trained, read without building anything:
its task weight and whether its task heads learned at all."""

from __future__ import annotations

from typing import Any

WEIGHT_KEY = "model.task_scale_factor"


def setting(tree: dict, *path: str, default: Any = None) -> Any:
    """``tree[path[0]][path[1]]...``, or ``default`` where a level is missing."""
    for part in path:
        if not isinstance(tree, dict) or part not in tree:
            return default
        tree = tree[part]
    return tree


def weight_of(config: dict) -> float:
    """The run's task weight (a multiple of its task_scale; 1 when not recorded)."""
    return float(setting(config, *WEIGHT_KEY.split("."), default=1.0))


def heads_untrained(config: dict) -> bool:
    """Whether the run's task heads got no gradient (task weight 0, the VAE end of the
    trade-off front): their scores measure nothing, so no comparison reads them (the front
    reads the linear probe on the same latent there instead)."""
    return weight_of(config) == 0
