"""Whether a model and a training or evaluation batch fit in memory, checked before any work
starts.

A model's parameters are counted by building it on PyTorch's ``meta`` device, where tensors
have shapes but no storage, so the count is exact and nothing is allocated; training keeps
each parameter four times (weights, gradients, Adam's two moments). The activations of a batch are the images times the sizes of the model's body layers (the
decoder mirrors the encoder); training keeps them for the backward pass, evaluation only the
widest layer. Like every bound of :mod:`mtvae.limits` the estimate counts the dominant arrays
only, so it errs low. It reads the body's config and the resolved config of a run (see
:mod:`mtvae.autoconf`), so it sits above the building blocks, beside the run code.
"""

from __future__ import annotations

import torch

from mtvae.data.dataset import SPLITS
from mtvae.errors import UserError
from mtvae.limits import check_memory
from mtvae.models.registry import build_model
from mtvae.nn.bodies import conv_padding
from mtvae.nn.code_bodies import CodeBodyConfig

TRAIN_BYTES_PER_VALUE = 4 * 2 * 2  # float32; encoder and mirrored decoder; output and gradient
EVAL_BYTES_PER_VALUE = 4 * 4  # float32; no graph: a few layer-sized buffers alive at once
TRAIN_BYTES_PER_PARAMETER = 4 * 4  # float32; weights, gradients, Adam's two moments
EVAL_BYTES_PER_PARAMETER = 4  # float32; the weights alone
MODEL_FIX = ("lower model.latent_dim or narrow the model's layers (model.encoder.hidden / "
             "model.encoder.channels, and the task heads' sizes).")


def parameter_sizes(model_config, info) -> dict[str, int]:
    """Values of each parameter of the model ``model_config`` builds for data ``info``,
    counted on the ``meta`` device: no memory is allocated and no random number is drawn."""
    try:
        with torch.random.fork_rng(devices=[]), torch.device("meta"):
            model = build_model(model_config, info)
    except (RuntimeError, OverflowError) as exc:  # a size torch cannot even describe
        raise UserError(
            f"Model '{model_config.name}' cannot be built with these sizes "
            f"({str(exc).strip().splitlines()[0][:200]}); {MODEL_FIX}") from None
    return {name: p.numel() for name, p in model.named_parameters()}


def check_model_memory(model_config, info, training: bool) -> None:
    """Refuse a model whose parameters (with their gradients and optimizer state, when
    ``training``) cannot fit in memory, before any of them is allocated."""
    sizes = parameter_sizes(model_config, info)
    if not sizes:
        return
    total = sum(sizes.values())
    largest = max(sizes, key=sizes.__getitem__)
    state = ", plus their gradients and the optimizer's two moments" if training else ""
    check_memory(
        total * (TRAIN_BYTES_PER_PARAMETER if training else EVAL_BYTES_PER_PARAMETER),
        f"{'Training' if training else 'Loading'} the model ({total:,} parameters, the largest "
        f"'{largest}' with {sizes[largest]:,} values{state}; float32)", MODEL_FIX)


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
    appended to it) cannot fit in memory with its activations and their gradients.

    ``config`` is resolved (:func:`mtvae.autoconf.resolve_auto`), so
    ``train.labelled_per_batch`` is the number of labelled samples each batch gets."""
    train, n = config.train, len(dataset.train)
    extra = int(train.labelled_per_batch)  # resolved: mtvae.autoconf.resolve_auto
    also = " (and train.labelled_per_batch)" if extra else ""
    check_batch_memory(
        config.model, dataset.info.image_shape, min(train.batch_size, n) + extra, True,
        f"lower train.batch_size{also}, or narrow the model's layers (model.encoder.channels "
        "/ model.encoder.hidden).")


def check_evaluation_memory(config, dataset) -> None:
    """Refuse an evaluation whose batches (``eval.batch_size``) cannot fit in memory."""
    largest = max(len(dataset.split(s)) for s in SPLITS)
    check_batch_memory(config.model, dataset.info.image_shape,
                       min(config.eval.batch_size, largest), False, "lower eval.batch_size.")
