"""A run whose task heads got no gradient (task weight 0) gives no head scores to compare."""

from __future__ import annotations

import json

from mtvae.analysis.run_settings import heads_untrained, weight_of
from mtvae.analysis.stats import results_frame


def _run(run_id: str, factor: float | None) -> dict:
    model = {"name": "mtvae"} | ({} if factor is None else {"task_scale_factor": factor})
    return {"run_id": run_id, "status": "done", "model": "mtvae", "config": {"model": model},
            "metrics": {"task/digit/accuracy": 0.1, "ood/task/digit/accuracy": 0.1,
                        "probe/digit/accuracy": 0.8, "nll/iwae": 100.0}}


def test_the_weight_is_read_from_the_config_and_only_zero_leaves_the_heads_untrained():
    assert weight_of({}) == 1.0 and not heads_untrained({})  # not recorded: the default 1x
    assert weight_of({"model": {"task_scale_factor": 0.1}}) == 0.1
    assert heads_untrained({"model": {"task_scale_factor": 0}})
    assert not heads_untrained({"model": {"task_scale_factor": 0.1}})


def test_head_scores_of_a_run_at_weight_zero_are_left_out_and_everything_else_kept():
    cells = [{"dataset": "d", "point": json.dumps({"task_weight": w}), "variant": "mt",
              "seed": 0, "run_id": f"r{w}"} for w in (0, 1)]
    frame = results_frame(cells, [_run("r0", 0.0), _run("r1", 1.0)])
    at_zero = set(frame.loc[frame["run_id"] == "r0", "metric"])
    at_one = set(frame.loc[frame["run_id"] == "r1", "metric"])
    assert at_zero == {"probe/digit/accuracy", "nll/iwae"}  # the heads measured nothing
    assert at_one == at_zero | {"task/digit/accuracy", "ood/task/digit/accuracy"}
