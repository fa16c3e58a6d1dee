"""Upper bounds on sizes, checked before any work starts.

An absurd size (``sample --n 100000000``, ``data.n_train=1e9``, an npz file declaring 10⁹
images, ``train.batch_size=1000000``) must end in a message, not in an allocation failure
minutes later: each request is compared with a documented bound and with the memory the
machine has available. The estimates are rough and count the dominant arrays only, so they
err low: a run they let through may still need more, and one they refuse needs at least about
what the message says:

* images: generated, or decoded from files (npz, IDX, the built-in sources) as float32 at
  ``data.image_size``, counted twice (the pool and the splits indexed out of it), plus the
  file's raw arrays (:func:`check_images_memory`);
* a training or evaluation batch: its images times the activations of the model's body
  (:func:`check_batch_memory`).
"""

from __future__ import annotations

import math
import os

from mtvae.errors import UserError

MAX_SAMPLES = 10_000  # mtvae sample --n: a 100 x 100 grid is already beyond what one can inspect
MEMORY_SHARE = 0.8  # of the available memory a single allocation may plan to use


def available_memory() -> int | None:
    """Bytes of memory available to new allocations (Linux ``MemAvailable``), or None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(needed: int, what: str, fix: str) -> None:
    """Refuse ``what`` when its ``needed`` bytes exceed the share of available memory."""
    available = available_memory()
    if available is not None and needed > MEMORY_SHARE * available:
        raise UserError(
            f"{what} needs about {_gib(needed)} of memory, but only {_gib(available)} is "
            f"available; {fix}"
        )


def _gib(n: int) -> str:
    if n >= 2**40:
        return f"{n / 2**40:,.0f} TiB"
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


# --- images decoded from a source ---------------------------------------------------------
def check_images_memory(n: int, image_shape: tuple[int, ...], what: str, fix: str,
                        raw_bytes: int = 0) -> None:
    """Refuse loading ``n`` float32 images of ``image_shape`` (plus ``raw_bytes`` read first)
    when they cannot fit: the pool and the splits copied out of it, 4 bytes per value each."""
    check_memory(raw_bytes + 2 * n * math.prod(image_shape) * 4, what, fix)


# --- activations of a batch ---------------------------------------------------------------
TRAIN_BYTES_PER_VALUE = 4 * 2 * 2  # float32; encoder and mirrored decoder; output and gradient
EVAL_BYTES_PER_VALUE = 4 * 4  # float32; no graph: a few layer-sized buffers alive at once


def activation_sizes(body, image_shape: tuple[int, int, int]) -> list[int]:
    """Values per image of the input and of each layer's output in the encoder ``body``
    (a :class:`~mtvae.nn.bodies.BodyConfig`; the decoder mirrors it): conv layers halve the
    (padded) sides, MLP layers are their widths; a code body's ``hidden`` are 3x3 convs on
    its grid."""
    from mtvae.nn.bodies import conv_padding
    from mtvae.nn.code_bodies import CodeBodyConfig

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
    from mtvae.autoconf import labelled_per_batch

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
