"""Settings that say ``auto``, resolved against the data before a run trains.

A default that suits 32x32 shapes with every label can fail a user's 24x24 images with 1% of
them, so a few defaults depend on the data: how much the task losses weigh
(``model.task_scale``, M2's ``model.alpha``), how many labelled samples each batch gets
(``train.labelled_per_batch``), how much a conv body pads the images
(``model.encoder.padding``) and whether training autocasts to bfloat16 (``train.amp``: on
where the device computes it natively). :func:`resolve_auto`
replaces each ``auto`` with its value, and that config is what ``config.yaml`` records, so a
reader sees the numbers the run used and a resume uses them again. The model section's rules
live beside the code they configure, in each config section's ``resolve_auto`` (see
:meth:`mtvae.base.StrictModel.resolve_auto`), so this module names no model: it applies them
and resolves the training section's settings, which depend on the model and the device.
(It takes a :class:`RunConfig` validated by :mod:`mtvae.runconfig`; the four config modules:
:mod:`mtvae.config`.)
"""

from __future__ import annotations

from mtvae.data.dataset import Dataset, Split
from mtvae.data.loader import labelled_index
from mtvae.models.registry import get_model_entry
from mtvae.runconfig import RunConfig
from mtvae.train.config import TrainConfig
from mtvae.train.precision import resolve_amp
from mtvae.train.trainer import resolve_device

# Below this share of labelled training samples a model with task heads gets labelled
# oversampling by default: a plain batch then holds a handful of labels, and the heads see
# each once per epoch while the reconstruction sees every image.
SCARCE_LABELS = 0.5
OVERSAMPLE_SHARE = 2  # auto appends batch_size // 2 labelled samples to each batch


def model_tasks(model_config) -> list[str] | None:
    """The tasks a model config names (None: all of the data's)."""
    return getattr(model_config, "tasks", None)


def labelled_per_batch(train: TrainConfig, model_config, split: Split) -> int:
    """What ``train.labelled_per_batch`` means for this model and training split.

    Always 0 for a model whose training reads no label (a VAE, a VQ-VAE): it would only see
    some images twice, and its training would then depend on the labels.
    """
    if not get_model_entry(model_config.name).reads_labels or len(split) == 0:
        return 0
    if train.labelled_per_batch != "auto":
        return int(train.labelled_per_batch)
    share = len(labelled_index(split, model_tasks(model_config))) / len(split)
    return max(1, train.batch_size // OVERSAMPLE_SHARE) if share < SCARCE_LABELS else 0


def resolve_auto(config: RunConfig, dataset: Dataset) -> RunConfig:
    """A copy of ``config`` with every ``auto`` above replaced by its value for ``dataset``."""
    resolved = config.model_copy(deep=True)
    model = resolved.model
    model.resolve_auto(tuple(dataset.train.x.shape[1:]))  # each section's own rules
    resolved.train.labelled_per_batch = labelled_per_batch(config.train, model, dataset.train)
    resolved.train.amp = resolve_amp(config.train.amp, resolve_device(config.train.device))
    return resolved
