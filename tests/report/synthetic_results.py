"""Synthetic stored results for Answer tests: cells and runs built in memory, no training."""

from __future__ import annotations

import itertools
import json

import numpy as np

from mtvae.report.build import StudyData


def spec(conditions: dict, seeds: list[int], hypotheses: list | None = None,
         design: str = "product") -> dict:
    """A study spec (as stored) with vae, an MT-VAE and the supervised baseline."""
    return {"name": "synthetic", "description": "", "datasets": {"mnist": {}},
            "variants": {"vae": {"model": "vae", "baselines": {}},
                         "mt": {"model": "mtvae", "baselines": {
                             "reconstruction": "vae", "representation": "vae", "task": "sup"}},
                         "sup": {"model": "supervised", "baselines": {}}},
            "conditions": conditions, "default": {}, "design": design, "seeds": seeds,
            "alpha": 0.05, "hypotheses": hypotheses or []}


def points(conditions: dict, design: str = "product") -> list[dict]:
    """Every combination of the axes' levels, or one factor at a time around the first."""
    if design == "product":
        return [dict(zip(conditions, v, strict=True))
                for v in itertools.product(*conditions.values())]
    default = {a: v[0] for a, v in conditions.items()}
    out = [default]
    for axis, values in conditions.items():
        out += [{**default, axis: v} for v in values[1:]]
    return out


def study(spec_: dict, metrics, config=None) -> StudyData:
    """``metrics(variant, point, seed, rng) -> dict`` for every cell; the study's data.
    ``config(variant, point) -> dict``: each run's config (default: a random control task)."""
    rng = np.random.default_rng(1234)
    cells, runs = [], []
    for point in points(spec_["conditions"], spec_["design"]):
        key = json.dumps(point, separators=(",", ":"))
        for variant, v in spec_["variants"].items():
            for seed in spec_["seeds"]:
                rid = f"{variant}-{key}-{seed}"
                cells.append({"dataset": "mnist", "point": key, "variant": variant,
                              "seed": seed, "run_id": rid})
                runs.append({"run_id": rid, "model": v["model"], "variant": variant,
                             "dataset": "mnist", "seed": seed, "status": "done",
                             "config": (config(variant, point) if config else
                                        {"data": {"extra_tasks": ["random"]}}),
                             "metrics": metrics(variant, point, seed, rng)})
    return StudyData(spec_, runs, cells, [], None)
