"""Task kinds: value counts and class probabilities of discrete heads."""

import pytest
import torch

from mtvae.data.tasks import TaskSpec
from mtvae.objectives.task_losses import class_probabilities, head_size

DIGIT = TaskSpec("digit", "categorical", 10)
ODD = TaskSpec("odd", "binary")
TAGS = TaskSpec("tags", "multilabel", 3)
SIZE = TaskSpec("size", "regression")


def test_discrete_tasks_count_their_values():
    assert [t.discrete for t in (DIGIT, ODD, TAGS, SIZE)] == [True, True, False, False]
    assert [t.n_values for t in (DIGIT, ODD, TAGS, SIZE)] == [10, 2, None, None]


@pytest.mark.parametrize("task", [DIGIT, ODD])
def test_class_probabilities_of_a_discrete_head_sum_to_one(task):
    output = torch.randn(5, head_size(task, "mse"))
    probs = class_probabilities(task, output)
    assert probs.shape == (5, task.n_values)
    assert torch.allclose(probs.sum(1), torch.ones(5))


def test_binary_probabilities_are_the_sigmoid_and_its_complement():
    output = torch.tensor([[0.0], [2.0]])
    probs = class_probabilities(ODD, output)
    assert torch.allclose(probs[:, 1], torch.sigmoid(output[:, 0]))


@pytest.mark.parametrize("task", [TAGS, SIZE])
def test_other_heads_have_no_class_probabilities(task):
    assert class_probabilities(task, torch.zeros(2, head_size(task, "mse"))) is None
