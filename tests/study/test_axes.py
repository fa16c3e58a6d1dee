"""Condition axes as ordered quantities."""

from __future__ import annotations

import json

from mtvae.analysis.trends import categorical_axes, numeric_axes
from mtvae.study import axes as A


def test_numeric_levels_sort_numerically_with_all_last():
    assert A.ordered([0.1, 0.01, 0.3, 1.0]) == [0.01, 0.1, 0.3, 1.0]
    assert A.ordered([1000, "all", 100, 300]) == [100, 300, 1000, "all"]
    assert A.ordered(["related", "with-random"]) == ["related", "with-random"]  # as given
    assert not A.is_numeric(["all"]) and not A.is_numeric([True, False])


def test_log_scale_beyond_a_tenfold_span_and_all_one_step_past_the_largest():
    assert A.log_scale([0.01, 1.0]) and not A.log_scale([100, 1000]) and not A.log_scale([0, 5])
    assert A.log_scale([100, 1000, "all"])  # all: more than the largest count
    place = A.positions([30, 100, 1000, "all"])
    assert place[30] < place[100] < place[1000] < place["all"]
    assert place[1000] - place[100] == 1.0  # one decade
    linear = A.positions([1.0, 2.0, 4.0])
    assert linear == {1.0: 1.0, 2.0: 2.0, 4.0: 4.0}


def test_points_sort_axis_by_axis_in_numeric_order():
    spec = {"conditions": {"label_fraction": [0.1, 0.01, 1.0], "tasks": ["a", "b"]},
            "default": {}}
    points = [json.dumps(p, separators=(",", ":")) for p in (
        {"label_fraction": 0.1, "tasks": "b"}, {"label_fraction": 1.0, "tasks": "a"},
        {"label_fraction": 0.1, "tasks": "a"}, {"label_fraction": 0.01, "tasks": "a"})]
    order = [json.loads(p) for p in A.sorted_points(points, spec)]
    assert order == [{"label_fraction": 0.01, "tasks": "a"}, {"label_fraction": 0.1, "tasks": "a"},
                     {"label_fraction": 1.0, "tasks": "a"}, {"label_fraction": 0.1, "tasks": "b"}]
    assert numeric_axes(spec) == ["label_fraction"] and categorical_axes(spec) == ["tasks"]


def test_a_zero_level_has_a_log_position_one_step_below_the_smallest_positive_level():
    weights = [0, 0.1, 0.3, 1, 3, 10]
    assert A.log_scale(weights) and A.log_scale([0, 1, 10])  # 0 extends a 10x span
    assert not A.log_scale([0, 1, 5]) and not A.log_scale([-1, 1, 100])
    place = A.positions(weights)
    # positive levels at their log10; mean spacing half a decade, so 0 one decade below 0.1
    assert place[10] == 1.0 and place[1] == 0.0 and place[0.1] == -1.0
    assert place[0] == -2.0 and sorted(place, key=place.get) == weights
    assert A.positions([0, 1, 10]) == {0: -1.0, 1: 0.0, 10: 1.0}
    assert A.positions([0, 1, 5]) == {0: 0.0, 1: 1.0, 5: 5.0}  # linear: 0 at its value
