"""Whether a training or evaluation batch fits in memory, checked before any work starts.

The activations of a batch are the images times the sizes of the model's body layers (the
decoder mirrors the encoder); training keeps them for the backward pass, evaluation only the
widest layer. Like every bound of :mod:`mtvae.limits` the estimate counts the dominant arrays
only, so it errs low. It reads the body's config and what ``train.labelled_per_batch: auto``
adds, so it sits above the building blocks and :mod:`mtvae.autoconf`, beside the run code.
"""

from __future__ import annotations

from mtvae.autoconf import labelled_per_batch
from mtvae.limits import check_memory
from mtvae.nn.bodies import conv_padding
from mtvae.nn.code_bodies import CodeBodyConfig

TRAIN_BYTES_PER_VALUE = 4 * 2 * 2  # float32; encoder and mirrored decoder; output and gradient
EVAL_BYTES_PER_VALUE = 4 * 4  # float32; no graph: a few layer-sized buffers alive at once


def activation_sizes(body, image_shape: tuple[int, int, int]) -> list[int]:
    """Values per image of the input and of each layer's output in the encoder ``body``
    (a :class:`~mtvae.nn.bodies.BodyConfig`; the decoder mirrors it): conv layers halve the
    (padded) sides, MLP layers are their widths; a code body's ``hidden`` are 3x3 convs on
    its grid."""

    c, h, w = image_shape
    if body.arch != "conv":
        return [c * h * w, *body.hidden]
    pad = conv_padding(body, image_shape)
    h, w = h + pad, w + pad
    sizes = [c * h * w]
    for channels in body.channels:
        h, w = max(1, h // 2), max(1, w // 2)
        sizes.append(channels * h * w)
    if isinstance(body, CodeBodyConfig):
        return sizes + [channels * h * w for channels in body.hidden]
    return sizes + list(body.hidden)


def check_batch_memory(model_config, image_shape: tuple[int, int, int], batch: int,
                       training: bool, fix: str) -> None:
    """Refuse a batch of ``batch`` images whose activations in the body of ``model_config``
    (its ``encoder``) cannot fit; models without a body are not checked."""
    body = getattr(model_config, "encoder", None)
    if body is None or batch < 1:
        return
    sizes = activation_sizes(body, tuple(image_shape))
    per_value = TRAIN_BYTES_PER_VALUE if training else EVAL_BYTES_PER_VALUE
    needed = batch * (sum(sizes) if training else max(sizes)) * per_value
    kind = "training" if training else "evaluation"
    c, h, w = image_shape
    check_memory(needed, f"A {kind} batch of {batch:,} images of {c}x{h}x{w} (the model's "
                 f"widest layer holds {max(sizes):,} values per image)", fix)


def check_training_memory(config, dataset) -> None:
    """Refuse a run whose training batch (``train.batch_size`` plus the labelled samples
    appended to it) cannot fit in memory with its activations and their gradients."""
    train, n = config.train, len(dataset.train)
    extra = labelled_per_batch(train, config.model, dataset.train)
    also = " (and train.labelled_per_batch)" if extra else ""
    check_batch_memory(
        config.model, dataset.info.image_shape, min(train.batch_size, n) + extra, True,
        f"lower train.batch_size{also}, or narrow the model's layers (model.encoder.channels "
        "/ model.encoder.hidden).")


def check_evaluation_memory(config, dataset) -> None:
    """Refuse an evaluation whose batches (``eval.batch_size``) cannot fit in memory."""
    largest = max(len(dataset.split(s)) for s in ("train", "val", "test"))
    check_batch_memory(config.model, dataset.info.image_shape,
                       min(config.eval.batch_size, largest), False, "lower eval.batch_size.")
