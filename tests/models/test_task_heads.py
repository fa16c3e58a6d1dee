"""The task-heads module: each head reads only its slices; predictions are in user units."""

import torch

from mtvae.data.tasks import TaskSpec
from mtvae.models.task_heads import TaskHeads, TaskOptions
from mtvae.objectives.task_losses import TargetScaling

TASKS = {"digit": TaskSpec("digit", "categorical", 10), "size": TaskSpec("size", "regression")}


def test_each_head_reads_only_its_slices():
    torch.manual_seed(0)
    heads = TaskHeads(TASKS, {"digit": [slice(0, 2)], "size": [slice(0, 1), slice(3, 4)]},
                      TaskOptions(), "relu")
    h = torch.randn(4, 4)
    before = heads(h)
    assert before["digit"].shape == (4, 10) and before["size"].shape == (4, 1)
    h2 = h.clone()
    h2[:, 2] += 5.0  # a column neither head reads
    assert all(torch.equal(before[t], heads(h2)[t]) for t in TASKS)
    h2[:, 3] += 5.0  # read by the size head alone
    after = heads(h2)
    assert torch.equal(before["digit"], after["digit"])
    assert not torch.equal(before["size"], after["size"])


def test_an_int_is_a_width_every_head_reads_whole_and_heads_keep_task_keys():
    heads = TaskHeads(TASKS, 6, TaskOptions(regression_loss="gaussian_nll"), "relu")
    assert list(heads) == ["digit", "size"]  # state-dict keys heads.<task>.net...
    assert heads(torch.zeros(2, 6))["size"].shape == (2, 2)  # mean and log-variance


def test_predictions_are_classes_and_regression_means_in_the_user_s_units():
    heads = TaskHeads(TASKS, 3, TaskOptions(), "relu")
    scaling = TargetScaling(TASKS, {"size": (10.0, 2.0)})
    outputs = {"digit": torch.eye(10)[[3]], "size": torch.tensor([[1.5]])}
    predictions = heads.predictions(outputs, scaling)
    assert predictions["digit"].tolist() == [3]
    assert predictions["size"].tolist() == [13.0]  # 10 + 2 * 1.5
