"""Task kinds: each kind's head size, loss, predictions, probabilities and value count."""

import math

import numpy as np
import pytest
import torch

from mtvae.data.task_kinds import TASK_KINDS, LabelError, check_values, task_kind
from mtvae.data.tasks import TaskSpec

DIGIT = TaskSpec("digit", "categorical", 10)
ODD = TaskSpec("odd", "binary")
TAGS = TaskSpec("tags", "multilabel", 3)
SIZE = TaskSpec("size", "regression")


def test_discrete_tasks_count_their_values():
    assert [t.discrete for t in (DIGIT, ODD, TAGS, SIZE)] == [True, True, False, False]
    assert [t.n_values for t in (DIGIT, ODD, TAGS, SIZE)] == [10, 2, None, None]


def test_discrete_kinds_read_as_categorical_over_their_values():
    as_classes = [t.task_kind.as_categorical() for t in (DIGIT, ODD, TAGS, SIZE)]
    assert as_classes[0] == DIGIT.task_kind  # a categorical task is itself
    assert as_classes[1].n_values == 2 and as_classes[1].head_size("mse") == 2
    assert as_classes[2:] == [None, None]
    # a 0/1 float target is a class index: the same cross-entropy as on int64 classes
    logits = torch.tensor([[0.3, -1.2], [2.0, 0.5]])
    floats, ints = torch.tensor([1.0, 0.0]), torch.tensor([1, 0])
    assert torch.equal(as_classes[1].per_sample_loss(logits, floats),
                       torch.nn.functional.cross_entropy(logits, ints, reduction="none"))


def test_head_sizes_follow_the_kind_and_the_regression_loss():
    sizes = [t.task_kind.head_size("mse") for t in (DIGIT, ODD, TAGS, SIZE)]
    assert sizes == [10, 1, 3, 1]
    assert SIZE.task_kind.head_size("gaussian_nll") == 2


def test_losses_have_known_values():
    logits = torch.tensor([[0.0, 0.0]])
    assert TaskSpec("c", "categorical", 2).task_kind.per_sample_loss(
        logits, torch.tensor([1])).item() == pytest.approx(math.log(2))
    assert ODD.task_kind.per_sample_loss(torch.zeros(1, 1), torch.ones(1)).item() == (
        pytest.approx(math.log(2)))
    assert TAGS.task_kind.per_sample_loss(torch.zeros(1, 3), torch.ones(1, 3)).item() == (
        pytest.approx(3 * math.log(2)))  # summed over the labels
    assert SIZE.task_kind.per_sample_loss(torch.tensor([[1.0]]), torch.tensor([3.0])).item() == 4
    nll = SIZE.task_kind.per_sample_loss(torch.tensor([[0.0, 0.0]]), torch.tensor([0.0])).item()
    assert nll == pytest.approx(0.5 * math.log(2 * math.pi))  # N(0, 1) at its mean


def test_predictions_per_kind():
    assert DIGIT.task_kind.predict(torch.tensor([[0.1, 2.0, -1.0] + [0.0] * 7])).tolist() == [1]
    assert ODD.task_kind.predict(torch.tensor([[-0.5], [0.5]])).tolist() == [0, 1]
    assert TAGS.task_kind.predict(torch.tensor([[1.0, -1.0, 2.0]])).tolist() == [[1, 0, 1]]
    assert SIZE.task_kind.predict(torch.tensor([[2.5, -3.0]])).tolist() == [2.5]


@pytest.mark.parametrize("task", [DIGIT, ODD])
def test_class_probabilities_of_a_discrete_head_sum_to_one(task):
    output = torch.randn(5, task.task_kind.head_size("mse"))
    probs = task.task_kind.probabilities(output)
    assert probs.shape == (5, task.n_values)
    assert torch.allclose(probs.sum(1), torch.ones(5))


def test_binary_probabilities_are_the_sigmoid_and_its_complement():
    output = torch.tensor([[0.0], [2.0]])
    probs = ODD.task_kind.probabilities(output)
    assert torch.allclose(probs[:, 1], torch.sigmoid(output[:, 0]))


@pytest.mark.parametrize("task", [TAGS, SIZE])
def test_other_heads_have_no_class_probabilities(task):
    assert task.task_kind.probabilities(torch.zeros(2, task.task_kind.head_size("mse"))) is None


def test_label_scores_lie_in_the_unit_interval_and_keep_the_order():
    assert DIGIT.task_kind.label_score(torch.tensor([0.0, 9.0])).tolist() == [0.0, 1.0]
    assert TAGS.task_kind.label_score(torch.tensor([[1.0, 0.0, 0.0]])).tolist() == [
        pytest.approx(1 / 3)]
    scores = SIZE.task_kind.label_score(torch.tensor([5.0, -1.0, 5.0, 2.0], dtype=torch.double))
    assert scores.tolist() == [pytest.approx(5 / 6), 0.0, pytest.approx(5 / 6), pytest.approx(1 / 3)]


def test_targets_and_probe_labels_have_the_kind_s_dtype():
    assert DIGIT.task_kind.target_dtype == "int64"
    assert ODD.task_kind.probe_labels(np.array([0.0, 1.0])).dtype == np.int64
    assert SIZE.task_kind.probe_labels(np.array([0.5])).dtype == np.float64


def test_every_kind_is_registered_and_an_unknown_one_is_named():
    assert set(TASK_KINDS) == {"categorical", "binary", "multilabel", "regression"}
    with pytest.raises(ValueError, match="unknown task kind 'ordinal'.*categorical"):
        task_kind("ordinal")
    with pytest.raises(ValueError, match="needs n_classes"):
        TaskSpec("tags", "multilabel")


def test_scores_have_known_values_per_kind():
    y_true, y_pred = np.array([0, 0, 0, 1]), np.array([0, 0, 1, 1])
    for kind in (DIGIT.task_kind, ODD.task_kind):  # discrete: accuracy and the class average
        assert kind.scores(y_true, y_pred) == {"accuracy": 0.75,
                                               "balanced_accuracy": pytest.approx(5 / 6)}
    # a predicted class no target has: balanced accuracy averages the recall of the true
    # classes (0: 1/2, 1: 1/1), and silently (a warning is an error here)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert DIGIT.task_kind.scores(np.array([0, 0, 1]), np.array([0, 2, 1])) == {
            "accuracy": pytest.approx(2 / 3), "balanced_accuracy": pytest.approx(3 / 4)}
    tags = TAGS.task_kind.scores(np.array([[1, 0, 1], [0, 0, 1]]), np.array([[1, 1, 1], [0, 0, 1]]))
    assert tags == {"accuracy": pytest.approx(5 / 6)}  # the share of correct entries
    size = SIZE.task_kind.scores(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))
    assert size == {"mae": pytest.approx(1 / 3), "r2": pytest.approx(1 - 1 / 2)}  # 1 - SSE/SST


def test_the_main_score_is_a_key_of_the_scores():
    y = np.array([0, 1, 1, 0])
    assert [t.task_kind.main_score for t in (DIGIT, ODD, TAGS, SIZE)] == [
        "accuracy", "accuracy", "accuracy", "r2"]
    for task in (DIGIT, ODD, SIZE):
        assert task.task_kind.main_score in task.task_kind.scores(y, y)


def test_only_categorical_targets_are_class_indices():
    assert [t.task_kind.class_indices for t in (DIGIT, ODD, TAGS, SIZE)] == [
        True, False, False, False]


def test_check_labels_casts_to_the_kind_s_dtype_and_resolves_the_classes():
    known = np.array([True, True, True, False])
    y, kind = task_kind("categorical").check_labels(np.array([0.0, 2.0, 1.0, 7.5]), known)
    assert y.dtype == np.int64 and kind == task_kind("categorical", 3)  # max + 1 of the known
    y, kind = task_kind("categorical", 5).check_labels(np.array([0, 2, 1, 0]), known)
    assert kind.n_classes == 5  # the declared classes, though class 4 is not seen
    y, kind = task_kind("binary", 2).check_labels(np.array([1, 0, 1, 9]), known)
    assert y.dtype == np.float32 and y.tolist() == [1, 0, 1, 9] and kind == task_kind("binary")
    y, kind = task_kind("multilabel").check_labels(np.array([[0, 1], [1, 1], [0, 0], [5, 5]]),
                                                   known)
    assert y.dtype == np.float32 and kind == task_kind("multilabel", 2)  # K from the columns
    y, kind = task_kind("regression").check_labels(np.array([-3, 1e6, 0.5, 2]), known)
    assert y.dtype == np.float32 and kind == task_kind("regression")


@pytest.mark.parametrize(("name", "n_classes", "y", "message"), [
    ("binary", None, [[0, 1], [1, 0]],
     r"has shape \(2, 2\): a binary task needs one label per sample, \(N,\)\."),
    ("multilabel", 2, [0, 1], r"has shape \(2,\): a multilabel task needs \(N, K\)\."),
    ("binary", None, [0, 2], "holds the value 2, outside the declared classes: binary labels "
                             "must be 0 or 1."),
    ("multilabel", None, [[0, 3], [1, 0]], "value 3, .*multilabel entries must be 0 or 1."),
    ("multilabel", 3, [[0, 1], [1, 0]], "has 2 columns but the sidecar declares 3 classes."),
    ("categorical", None, [0.5, 1], "holds non-integer values for a categorical task."),
    ("categorical", 3, [0, 3], r"value 3, .*labels must be classes 0\.\.2 as the sidecar declares"),
    ("categorical", None, [-1, 1], r"value -1, .*labels must be classes 0\.\.1\.$"),
    ("categorical", None, [0, 0], "holds a single class; a categorical task needs at least 2 "
                                  r"\(or declare n_classes in the sidecar\)\."),
])
def test_check_labels_says_what_is_wrong(name, n_classes, y, message):
    y = np.array(y)
    with pytest.raises(LabelError, match=message):
        task_kind(name, n_classes).check_labels(y, np.ones(len(y), bool), "the sidecar")


def test_check_values_names_the_first_value_outside_and_the_rule():
    check_values(np.array([0, 1, 2]), range(3), "any rule")  # all allowed: no error
    with pytest.raises(LabelError, match=r"^holds the value 7, outside the declared classes: "
                                         r"use 0 or 1\.$"):
        check_values(np.array([0, 7, 9]), (0, 1), "use 0 or 1")
