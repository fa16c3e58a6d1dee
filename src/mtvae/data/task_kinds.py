"""Task kinds: everything that depends on whether a label is a class, a 0/1 flag, a 0/1
vector or a number, in one object per kind.

A :class:`~mtvae.data.tasks.TaskSpec` names its kind (``spec.kind``, the string stored in
config files and weights metadata) and hands out the kind's object (``spec.task_kind``). The
object knows the head a task needs (``head_size``), its loss (``per_sample_loss``), how a head's
raw output becomes a prediction (``predict``) or class probabilities (``probabilities``), how
many values a label takes (``n_values``), how targets are stored (``target_dtype``), which
labels a file may hold (``check_labels``), how predictions are scored (``scores``, with
``main_score`` the one a single number reports) and what the label-policy and evaluation code
asks of it (``discrete``, ``continuous``, ``scalar``, ``class_indices``, ``label_score``,
``as_categorical``). Code elsewhere asks the object instead of comparing kind names.

Raw head outputs: logits ``(B, K)`` for categorical and multilabel tasks, one logit ``(B, 1)``
for binary tasks, and ``(B, 2)`` (mean, log-variance) or ``(B, 1)`` (mean) for regression with
Gaussian NLL or MSE.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F

KindName = Literal["categorical", "binary", "multilabel", "regression"]
RegressionLoss = Literal["gaussian_nll", "mse"]


class LabelError(ValueError):
    """Labels that do not fit their kind. The message completes a sentence whose subject is
    the labels (``"holds the value 5, ..."``): the reader of a file puts the file and the
    array in front of it."""


def check_values(values: np.ndarray, allowed, rule: str) -> None:
    """Raise :class:`LabelError` naming the first of ``values`` not in ``allowed`` and
    ``rule``, the sentence that says which values are allowed."""
    allowed = np.asarray(list(allowed))
    bad = ~np.isin(values, allowed)
    if bad.any():
        example = float(values[bad].flat[0])
        raise LabelError(f"holds the value {example:g}, outside the declared classes: {rule}.")


def _class_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import balanced_accuracy_score  # on first use: loading data needs none

    with warnings.catch_warnings():
        # Balanced accuracy is the mean recall over the classes present in y_true; a model
        # that predicts a class no target has (common on a small or unbalanced split) is
        # scored by that definition, and sklearn's warning about it only alarms the user.
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        balanced = float(balanced_accuracy_score(y_true, y_pred))
    return {"accuracy": float(np.mean(y_true == y_pred)), "balanced_accuracy": balanced}


@dataclass(frozen=True)
class TaskKind:
    """The behaviour of one kind of label; ``n_classes`` where the kind has classes."""

    n_classes: int | None = None

    name: ClassVar[str]
    needs_classes: ClassVar[bool] = False  # n_classes >= 2 must be given
    discrete: ClassVar[bool] = False  # the label is one of n_values classes
    continuous: ClassVar[bool] = False  # a real number: z-scored for heads, scored by R²
    scalar: ClassVar[bool] = True  # one value per sample (probes and leakage read these)
    class_indices: ClassVar[bool] = False  # targets are class indices 0..n_classes-1 as stored
    target_dtype: ClassVar[str] = "float32"  # numpy dtype of stored targets
    label_shape: ClassVar[str] = "one label per sample, (N,)"  # for messages about arrays
    main_score: ClassVar[str] = "accuracy"  # the key of ``scores`` one number reports

    @property
    def n_values(self) -> int | None:
        """How many values a discrete label takes; None for multilabel and regression."""
        return None

    @property
    def label_width(self) -> int:
        """Numbers per label: ``n_classes`` for a multilabel vector, else 1."""
        return 1

    def head_size(self, regression_loss: RegressionLoss) -> int:
        """Number of outputs a head needs."""
        raise NotImplementedError

    def per_sample_loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Unmasked loss per sample ``(B,)``; ``target`` must be valid everywhere."""
        raise NotImplementedError

    def predict(self, output: torch.Tensor) -> torch.Tensor:
        """Point predictions: class index, 0/1, 0/1 vector, or the regression mean."""
        raise NotImplementedError

    def probabilities(self, output: torch.Tensor) -> torch.Tensor | None:
        """q(y | z) over the ``n_values`` classes of a discrete head ``(B, n_values)``; None
        for kinds without classes."""
        return None

    def label_score(self, y: torch.Tensor) -> torch.Tensor:
        """The MNAR score ``(N,)`` in ``[0, 1]`` of each label (higher: more often missing)."""
        return y  # binary: the label itself

    def probe_labels(self, y: np.ndarray) -> np.ndarray:
        """Labels as a probe fits them: int64 classes for discrete kinds, values otherwise."""
        return y.astype(np.int64) if self.discrete else y

    def as_categorical(self) -> TaskKind | None:
        """The kind read as a categorical over its ``n_values`` classes (a binary task as 2
        classes, so a model with a softmax over classes, e.g. M2, can learn it); None for kinds
        without classes. Targets of either stay valid class indices once cast to int64."""
        return Categorical(self.n_values) if self.discrete else None

    def scores(self, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
        """How well predictions ``y_pred`` match labels ``y_true``, by name: the one scoring
        rule of a model's own heads (``task/*``), the probes and the leakage matrix."""
        raise NotImplementedError

    def check_labels(
        self, y: np.ndarray, known: np.ndarray, declared_in: str = "the declaration"
    ) -> tuple[np.ndarray, TaskKind]:
        """Labels ``y`` (``(N,)``, or ``(N, K)`` for multilabel) as stored targets of
        ``target_dtype``, and this kind with its classes resolved from the labels where
        ``n_classes`` was not given. Only the rows where ``known`` is True are checked.
        Raises :class:`LabelError` for a wrong shape or a value the kind does not take;
        ``declared_in`` names where ``n_classes`` is declared (e.g. ``"the sidecar"``)."""
        if (y.ndim == 1) != self.scalar:
            raise LabelError(f"has shape {y.shape}: a {self.name} task needs {self.label_shape}.")
        return self._checked(y, known, declared_in)

    def _checked(self, y, known, declared_in) -> tuple[np.ndarray, TaskKind]:
        """:meth:`check_labels` once the shape fits the kind."""
        raise NotImplementedError


class Categorical(TaskKind):
    """Class indices (int64) in ``[0, n_classes)``; softmax head, cross-entropy."""

    name = "categorical"
    needs_classes = True
    discrete = True
    class_indices = True
    target_dtype = "int64"

    @property
    def n_values(self) -> int | None:
        return self.n_classes

    def head_size(self, regression_loss: RegressionLoss) -> int:
        return int(self.n_classes)

    def per_sample_loss(self, output, target):
        return F.cross_entropy(output, target.long(), reduction="none")

    def predict(self, output):
        return output.argmax(1)

    def probabilities(self, output):
        return torch.softmax(output, dim=1)

    def label_score(self, y):
        return y / max((self.n_classes or 2) - 1, 1)

    def scores(self, y_true, y_pred):
        return _class_scores(y_true, y_pred)

    def _checked(self, y, known, declared_in):
        values = y[known]
        if np.any(values != np.round(values)):
            raise LabelError("holds non-integer values for a categorical task.")
        k = self.n_classes or int(values.max()) + 1
        check_values(values, range(k), f"labels must be classes 0..{k - 1}"
                     + (f" as {declared_in} declares" if self.n_classes else ""))
        if k < 2:
            raise LabelError("holds a single class; a categorical task needs at least 2 (or "
                             f"declare n_classes in {declared_in}).")
        return y.astype(np.int64), Categorical(k)


class Binary(TaskKind):
    """0/1 floats; one logit, binary cross-entropy."""

    name = "binary"
    discrete = True

    @property
    def n_values(self) -> int | None:
        return 2

    def head_size(self, regression_loss: RegressionLoss) -> int:
        return 1

    def per_sample_loss(self, output, target):
        return F.binary_cross_entropy_with_logits(output[:, 0], target.float(), reduction="none")

    def predict(self, output):
        return (output[:, 0] > 0).long()

    def probabilities(self, output):
        p = torch.sigmoid(output[:, 0])
        return torch.stack([1 - p, p], dim=1)

    def scores(self, y_true, y_pred):
        return _class_scores(y_true, y_pred)

    def _checked(self, y, known, declared_in):
        check_values(y[known], (0, 1), "binary labels must be 0 or 1")
        return y.astype(np.float32), Binary()


class Multilabel(TaskKind):
    """0/1 float vectors of length ``n_classes``; one logit per class, summed BCE."""

    name = "multilabel"
    needs_classes = True
    scalar = False
    label_shape = "(N, K)"

    @property
    def label_width(self) -> int:
        return int(self.n_classes)

    def head_size(self, regression_loss: RegressionLoss) -> int:
        return int(self.n_classes)

    def per_sample_loss(self, output, target):
        bce = F.binary_cross_entropy_with_logits(output, target.float(), reduction="none")
        return bce.sum(1)

    def predict(self, output):
        return (output > 0).long()

    def label_score(self, y):
        return y.mean(dim=1)

    def scores(self, y_true, y_pred):
        return {"accuracy": float(np.mean(y_true == y_pred))}  # the share of correct entries

    def _checked(self, y, known, declared_in):
        k = self.n_classes or y.shape[1]
        check_values(y[known], (0, 1), "multilabel entries must be 0 or 1")
        if y.shape[1] != k:
            raise LabelError(f"has {y.shape[1]} columns but {declared_in} declares {k} classes.")
        return y.astype(np.float32), Multilabel(k)


class Regression(TaskKind):
    """float32 scalars; a mean (MSE) or a mean and log-variance (Gaussian NLL)."""

    name = "regression"
    continuous = True
    main_score = "r2"

    def head_size(self, regression_loss: RegressionLoss) -> int:
        return 2 if regression_loss == "gaussian_nll" else 1

    def per_sample_loss(self, output, target):
        mean = output[:, 0]
        if output.shape[1] == 1:
            return (mean - target).square()
        log_var = output[:, 1].clamp(-10.0, 10.0)  # learned variance, kept in a sane range
        return 0.5 * (log_var + (target - mean).square() * torch.exp(-log_var)
                      + math.log(2 * math.pi))

    def predict(self, output):
        return output[:, 0]

    def label_score(self, y):
        ordered = torch.sort(y).values  # mid-ranks, so equal labels get equal scores
        low = torch.searchsorted(ordered, y, right=False)
        high = torch.searchsorted(ordered, y, right=True)
        return (low + high - 1).double() / 2 / max(len(y) - 1, 1)

    def scores(self, y_true, y_pred):
        from sklearn.metrics import r2_score  # on first use: loading data needs none

        return {
            "mae": float(np.mean(np.abs(y_true - y_pred))),
            "r2": float(r2_score(y_true, y_pred)),
        }

    def _checked(self, y, known, declared_in):
        return y.astype(np.float32), Regression()


TASK_KINDS: dict[str, type[TaskKind]] = {
    kind.name: kind for kind in (Categorical, Binary, Multilabel, Regression)
}


def task_kind(name: str, n_classes: int | None = None) -> TaskKind:
    """The kind object for ``name`` (a ValueError names the kinds there are)."""
    if name not in TASK_KINDS:
        raise ValueError(f"unknown task kind '{name}'; choose one of {', '.join(TASK_KINDS)}")
    return TASK_KINDS[name](n_classes)
