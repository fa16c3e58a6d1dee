"""Thin wrappers from an evaluation context to the pure metric functions.

Why one module of over 400 lines: it is the registry of every metric family (``METRICS``,
their ``requires``/``check``/``ood`` declarations) beside the wrappers it registers, so that
adding a family is one entry next to its function.

One function per metric family (``probe``, ``disent``, ``leakage``, ``gen``, ``figures``): it
reads representations or samples from the model, calls the array functions of
:mod:`~mtvae.evaluate.probes`, :mod:`~mtvae.evaluate.disentanglement` and
:mod:`~mtvae.evaluate.generation`, and returns flat ``results.json`` keys. The ``needs_*``
checks say why a family does not apply to a run (None when it does).

Probe protocol: probes are fitted on the frozen representations of the *training* split,
restricted to the samples whose label the run saw (its label mask, so a run trained with 10%
of the labels is probed with those same labels), and scored on the test split. Budgets take
nested subsets of those labelled points (one of each class first), seeded by the run's seed.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from mtvae.evaluate import disentanglement as dis
from mtvae.evaluate import generation as gen
from mtvae.evaluate import plots
from mtvae.evaluate.figures import save_grid
from mtvae.evaluate.interventions import discrete_conditional_tasks
from mtvae.evaluate.metric import info, outcome
from mtvae.evaluate.probes import knn_probe, leakage_matrix, linear_probe
from mtvae.evaluate.reference import reference_classifier, reference_task
from mtvae.evaluate.representations import (
    block_dim_labels,
    blocks,
    principal_axes,
    representation,
    representation_kind,
)
from mtvae.evaluate.tasks import chance_accuracy
from mtvae.models.capabilities import Blocked, GaussianLatentModel, Generative, Multitask

if TYPE_CHECKING:
    from mtvae.evaluate.context import EvalContext

EMBEDDING_POINTS = 2000
TRAVERSAL_VALUES = np.linspace(-3.0, 3.0, 9)
TRAVERSAL_MAX_DIMS = 32

_LINEAR = "linear probe on the frozen representation, fitted on the run's labelled training points"
_BUDGET = " (at most <budget> of them: a label-efficiency curve)"
_KNN = "k-nearest-neighbour probe (k = 5) on the frozen representation, all labelled training points"

METRICS = (
    # probes (evaluate_probes)
    info("probe/n_dims", "dims", "width of the representation the probes read (a setting of "
         "the model, not an outcome)", "representation"),
    info("probe/*/n_train*", "points", "labelled training points a probe was fitted on"),
    outcome("probe/*/mae@*", "representation", "lower", "target units",
            f"{_LINEAR}{_BUDGET}: test mean absolute error"),
    outcome("probe/*/r2@*", "representation", "higher", "", f"{_LINEAR}{_BUDGET}: test R²"),
    outcome("probe/*/balanced_accuracy@*", "representation", "higher", "fraction",
            f"{_LINEAR}{_BUDGET}: test accuracy averaged over classes"),
    outcome("probe/*/accuracy@*", "representation", "higher", "fraction",
            f"{_LINEAR}{_BUDGET}: test accuracy"),
    outcome("probe/*/mae", "representation", "lower", "target units",
            f"{_LINEAR}: test mean absolute error"),
    outcome("probe/*/r2", "representation", "higher", "", f"{_LINEAR}: test R²"),
    outcome("probe/*/balanced_accuracy", "representation", "higher", "fraction",
            f"{_LINEAR}: test accuracy averaged over classes"),
    outcome("probe/*/accuracy", "representation", "higher", "fraction",
            f"{_LINEAR}: test accuracy"),
    info("probe_knn/*/n_train*", "points", "labelled training points of a k-NN probe"),
    outcome("probe_knn/*/mae*", "representation", "lower", "target units",
            f"{_KNN}: test mean absolute error"),
    outcome("probe_knn/*/r2*", "representation", "higher", "", f"{_KNN}: test R²"),
    outcome("probe_knn/*/balanced_accuracy*", "representation", "higher", "fraction",
            f"{_KNN}: test accuracy averaged over classes"),
    outcome("probe_knn/*/accuracy*", "representation", "higher", "fraction",
            f"{_KNN}: test accuracy"),
    # disentanglement (evaluate_disentanglement)
    info("disent/n_points", "points", "test points the disentanglement metrics use"),
    info("disent/*_train", "", "a disentanglement predictor's score on its own fitting points"),
    info("disent/*active_dims", "dims", "dimensions the FactorVAE score found active"),
    outcome("disent/mig", "representation", "higher", "", "mutual information gap (Chen et al. "
            "2018)"),
    outcome("disent/dci_d", "representation", "higher", "",
            "DCI disentanglement (Eastwood & Williams 2018)"),
    outcome("disent/dci_c", "representation", "higher", "",
            "DCI completeness (Eastwood & Williams 2018)"),
    outcome("disent/dci_i", "representation", "higher", "fraction",
            "DCI informativeness: factor prediction accuracy"),
    outcome("disent/sap", "representation", "higher", "",
            "separated attribute predictability (Kumar et al. 2018)"),
    outcome("disent/factorvae", "representation", "higher", "fraction",
            "FactorVAE score (Kim & Mnih 2018)"),
    outcome("disent/betavae", "representation", "higher", "fraction",
            "β-VAE score (Higgins et al. 2017)"),
    outcome("disent/modularity", "representation", "higher", "",
            "modularity (Ridgeway & Mozer 2018)"),
    outcome("disent/explicitness", "representation", "higher", "",
            "explicitness: ROC-AUC of factor prediction (Ridgeway & Mozer 2018)"),
    outcome("disent/tc", "representation", "lower", "nats",
            "total correlation of a Gaussian fitted to the codes (lower is more factorised)"),
    # leakage (evaluate_leakage): descriptive, the diagonal should be high, the rest low
    info("leakage/*", "", "linear-probe score (accuracy or R²) of a task (last part) from a "
         "latent block (middle part)", "representation"),
    # generation (evaluate_generation)
    info("gen/n_*", "images", "samples / test images the generation metrics use"),
    info("gen/reference_*", "fraction", "test accuracy of the reference classifier whose "
         "features the generation metrics use (the instrument, not the model)"),
    outcome("gen/fd", "generation", "lower", "",
            "Fréchet distance between reference-classifier features of samples and test images"),
    outcome("gen/kid", "generation", "lower", "",
            "kernel distance (KID) between reference features of samples and test images"),
    outcome("gen/precision", "generation", "higher", "fraction",
            "share of samples inside the test images' feature manifold (Kynkäänniemi et al. "
            "2019)"),
    outcome("gen/recall", "generation", "higher", "fraction",
            "share of test images inside the samples' feature manifold"),
    outcome("gen/coherence/*", "generation", "higher", "fraction",
            "share of samples conditioned on a class that the reference classifier assigns to it"),
)


def split_representation(ctx: EvalContext, split: str) -> np.ndarray:
    """Representation ``(N, d)`` of a split's images, computed once per evaluation."""
    key = ("representation", split)
    if key not in ctx.cache:
        x = ctx.data.split(split).x
        ctx.cache[key] = representation(ctx.model, x, ctx.config.eval.batch_size)
    return ctx.cache[key]


def probe_features(ctx: EvalContext) -> tuple[np.ndarray, np.ndarray]:
    """Train and test representations for the probes. Wider than ``eval.probe_max_dims`` (a
    VQ-VAE's flattened code grid), both are projected on that many principal components of
    the training representation: a linear map, so the probe stays linear, at a cost that no
    longer grows with the width."""
    train, test = split_representation(ctx, "train"), split_representation(ctx, "test")
    k = ctx.config.eval.probe_max_dims
    if train.shape[1] > k:
        mean, axes = principal_axes(train, k)
        train, test = (train - mean) @ axes, (test - mean) @ axes
    return train, test


@contextmanager
def quiet_fits():
    """Silence sklearn's per-fit warnings (a class absent from a small test half, a probe
    stopping at its iteration cap): the scores stay defined, and one warning per fitted
    model would bury the evaluation table."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        yield


# ----------------------------------------------------------------------------- applicability


def needs_representation(ctx: EvalContext) -> str | None:
    """A model with neither ``representation``, ``encode`` nor codes has nothing to probe."""
    if representation_kind(ctx.model) is None:
        return f"{type(ctx.model).__name__} has no representation, encode or encode_codes"
    return None


def needs_probe_tasks(ctx: EvalContext) -> str | None:
    """Probes need a model representation and at least one probe-able task."""
    if not any(t.task_kind.scalar for t in ctx.data.tasks.values()):  # multilabel: unprobed
        return f"dataset '{ctx.data.name}' has no categorical, binary or regression task"
    return needs_representation(ctx)


def needs_factors(ctx: EvalContext) -> str | None:
    """Disentanglement needs ground-truth factors and a narrow enough representation."""
    if ctx.data.test.factors is None:
        return f"dataset '{ctx.data.name}' has no ground-truth factors"
    reason = needs_representation(ctx)
    if reason:
        return reason
    width = representation(ctx.model, ctx.data.test.x[:1]).shape[1]
    if width > ctx.config.eval.disent_max_dims:
        return (
            f"the representation has {width} dims, more than eval.disent_max_dims="
            f"{ctx.config.eval.disent_max_dims} (per-dimension metrics need a latent vector)"
        )
    return None


def needs_blocks(ctx: EvalContext) -> str | None:
    """Leakage needs a latent split into more than one block, and enough test samples that
    carry every task's label for its probes' 70/30 split."""
    if not isinstance(ctx.model, Blocked) or len(ctx.model.blocks) < 2:
        return f"{type(ctx.model).__name__} has a single latent block (nothing can leak)"
    n = int(_leakage_rows(ctx).sum())
    if n < MIN_LEAKAGE_ROWS:  # e.g. a label table with many empty cells, or a tiny test split
        return (f"only {n} test sample(s) carry every task's label; the leakage probes need "
                f"at least {MIN_LEAKAGE_ROWS}")
    return needs_representation(ctx)


def needs_reference_task(ctx: EvalContext) -> str | None:
    """Generation metrics need a categorical task to train the reference classifier on."""
    if reference_task(ctx.data) is None:
        return f"dataset '{ctx.data.name}' has no categorical task for a reference classifier"
    return None


# ----------------------------------------------------------------------------- probes


def _probe_data(ctx: EvalContext, task: str, features: tuple[np.ndarray, np.ndarray]):
    """(train codes, train y) on the run's labelled training points; (test codes, test y)."""
    kind = ctx.data.tasks[task].task_kind
    out = []
    for split, codes in zip(("train", "test"), features, strict=True):
        part = ctx.data.split(split)
        mask = part.masks[task].numpy()
        y = part.targets[task].numpy()[mask]
        out += [codes[mask], kind.probe_labels(y)]
    return out


@quiet_fits()
def evaluate_probes(ctx: EvalContext) -> dict[str, float]:
    """``probe/<task>/<metric>@<budget>``, the unbudgeted alias, ``probe_knn/...@all`` and
    ``probe/n_dims`` (the width the probes read)."""
    budgets = ctx.config.eval.probe_budgets
    top = "all" if "all" in budgets else max(budgets)  # gives the contract's unbudgeted keys
    features = probe_features(ctx)
    results: dict[str, float] = {"probe/n_dims": features[0].shape[1]}
    for task, spec in ctx.data.tasks.items():
        if not spec.task_kind.scalar:
            continue
        train_z, train_y, test_z, test_y = _probe_data(ctx, task, features)
        if len(train_y) < 2 or len(test_y) == 0:
            continue  # too few labels to fit (e.g. data.label_fraction 0 for this task)
        for budget in budgets:
            size = None if budget == "all" else budget
            scores = linear_probe(
                train_z, train_y, test_z, test_y, spec.task_kind, size, ctx.config.seed
            )
            for key, value in scores.items():
                results[f"probe/{task}/{key}@{budget}"] = value
                if budget == top and key != "n_train":  # every score the kind gives
                    results[f"probe/{task}/{key}"] = value
        scores = knn_probe(train_z, train_y, test_z, test_y, spec.task_kind, None,
                           ctx.config.seed)
        for key, value in scores.items():
            results[f"probe_knn/{task}/{key}@all"] = value
        if spec.discrete:
            results[f"chance/{task}/accuracy"] = chance_accuracy(test_y)
    return results


# ----------------------------------------------------------------------------- disentanglement


@quiet_fits()
def evaluate_disentanglement(ctx: EvalContext) -> dict[str, float]:
    """``disent/*`` on the test split's representation and factors (first ``eval.disent_n``).

    Metrics that fit a predictor (DCI, SAP, modularity/explicitness) use the first half of the
    points to fit and the second half to score; the others use all points.
    """
    n = min(ctx.config.eval.disent_n, len(ctx.data.test))
    codes = split_representation(ctx, "test")[:n]
    factors = ctx.data.test.factors[:n].numpy()
    half = n // 2
    halves = (codes[:half], factors[:half], codes[half:], factors[half:])
    seed = ctx.config.seed
    scores = {
        **dis.mig(codes, factors),
        **dis.dci(*halves, seed=seed),
        **dis.sap(*halves),
        **dis.factorvae_score(codes, factors, rng=seed),
        **dis.betavae_score(codes, factors, rng=seed),
        **dis.modularity_explicitness(*halves),
        **dis.gaussian_total_correlation(codes),
    }
    keys = ("mig", "dci_d", "dci_c", "dci_i", "sap", "factorvae", "betavae", "modularity",
            "explicitness", "tc")  # fmt: skip
    return {**{f"disent/{k}": scores[k] for k in keys}, "disent/n_points": n}


# ----------------------------------------------------------------------------- leakage


MIN_LEAKAGE_ROWS = 10  # fully labelled test samples: a 70/30 probe split needs a few each side


def _leakage_tasks(ctx: EvalContext) -> dict:
    tasks = (ctx.model.tasks if isinstance(ctx.model, Multitask) else None) or ctx.data.tasks
    return {t: spec for t, spec in tasks.items() if spec.task_kind.scalar}


def _leakage_rows(ctx: EvalContext) -> np.ndarray:
    """The test samples labelled for every task the leakage probes predict."""
    rows = np.ones(len(ctx.data.test), dtype=bool)
    for task in _leakage_tasks(ctx):
        rows &= ctx.data.test.masks[task].numpy()
    return rows


@quiet_fits()
def leakage_scores(ctx: EvalContext) -> dict[str, dict[str, float]]:
    """``{block: {task: score}}`` on the test split (rows labelled for every task); a random
    70/30 split of them fits and scores each linear probe (accuracy or R^2)."""
    tasks, test, rows = _leakage_tasks(ctx), ctx.data.test, _leakage_rows(ctx)
    codes = split_representation(ctx, "test")[rows]
    block_codes = {name: codes[:, s] for name, s in blocks(ctx.model, codes.shape[1]).items()}
    targets = {t: (test.targets[t].numpy()[rows], spec.task_kind) for t, spec in tasks.items()}
    return leakage_matrix(block_codes, targets, rng=ctx.config.seed)


def evaluate_leakage(ctx: EvalContext) -> dict[str, float]:
    """``leakage/<block>/<task>`` and ``figures/leakage.png``."""
    matrix = leakage_scores(ctx)
    if ctx.draws("leakage"):
        plots.leakage_figure(matrix, ctx.figures / "leakage.png")
    return {f"leakage/{b}/{t}": v for b, row in matrix.items() for t, v in row.items()}


# ----------------------------------------------------------------------------- generation


@torch.no_grad()
def draw_samples(model, n: int, batch_size: int, seed: int, condition=None) -> torch.Tensor:
    """``n`` samples in batches from one seeded generator (``condition`` only when given)."""
    generator = torch.Generator().manual_seed(seed)
    extra = {"condition": condition} if condition else {}
    parts = [
        model.sample(min(batch_size, n - start), generator=generator, **extra).cpu()
        for start in range(0, n, batch_size)
    ]
    return torch.cat(parts)


PR_K = 3  # precision/recall: each point's manifold ball reaches its 3rd nearest neighbour


def evaluate_generation(ctx: EvalContext) -> dict[str, float]:
    """FD, KID, precision/recall (k=3) in the reference classifier's features; coherence.

    The four metrics that compare samples with test images need more than ``PR_K`` test images
    (a k-th nearest neighbour among the others); with fewer they are left out with a line to
    the log, and the rest (coherence, the reference accuracy) are still reported.
    """
    cfg, seed = ctx.config.eval, ctx.config.seed
    ref = reference_classifier(ctx.data)
    n = cfg.gen_samples
    test = ctx.data.test.x[:n]
    results = {
        "gen/n_samples": n,
        "gen/n_real": len(test),
        "gen/reference_accuracy": ref.accuracy(ctx.data.test),
    }
    if len(test) > PR_K:
        real = ref.features(test, cfg.batch_size)
        fake = ref.features(draw_samples(ctx.model, n, cfg.batch_size, seed), cfg.batch_size)
        kid = gen.kernel_distance(real, fake, n_subsets=cfg.kid_subsets, rng=seed)
        results |= {
            "gen/fd": gen.frechet_distance(real, fake)["frechet_distance"],
            "gen/kid": kid["kid"],
            **{f"gen/{k}": v for k, v in gen.precision_recall(real, fake, k=PR_K).items()},
        }
    else:  # e.g. a folder of images whose split leaves a handful for testing
        ctx.log(f"skipped gen/fd, gen/kid, gen/precision, gen/recall: the test split has "
                f"{len(test)} image(s) and comparing samples with them needs at least "
                f"{PR_K + 1} (precision/recall reach each image's {PR_K}rd nearest neighbour)")
    if ref.task in discrete_conditional_tasks(ctx.model):
        results[f"gen/coherence/{ref.task}"] = _coherence(ctx, ref)
    return results


def _coherence(ctx: EvalContext, ref) -> float:
    """Share of samples conditioned on each class that the reference classifier assigns to it."""
    cfg, k = ctx.config.eval, ctx.model.tasks[ref.task].n_values
    per_class = max(1, cfg.gen_samples // k)
    predicted, conditioned = [], []
    for value in range(k):
        x = draw_samples(ctx.model, per_class, cfg.batch_size, ctx.config.seed + value,
                         {ref.task: value})  # fmt: skip
        predicted.append(ref.predict(x, cfg.batch_size))
        conditioned.append(np.full(per_class, value))
    return gen.coherence(np.concatenate(predicted), np.concatenate(conditioned))["coherence"]


# ----------------------------------------------------------------------------- figures


def evaluate_figures(ctx: EvalContext) -> dict[str, float]:
    """Write every figure that applies to the model (and is not skipped); no metric keys."""
    model = ctx.model
    if isinstance(model, Generative) and ctx.draws("samples"):
        grid = draw_samples(
            model, ctx.config.eval.n_grid, ctx.config.eval.batch_size, ctx.config.seed
        )
        save_grid(grid, ctx.figures / "samples.png")
    if isinstance(model, GaussianLatentModel) and ctx.draws("traversals"):
        traversal_plot(ctx)
    if representation_kind(model) is not None and ctx.data.tasks and ctx.draws("embedding"):
        embedding_plot(ctx)
    curves = plots.curve_terms(_log_records(ctx)) if ctx.draws("training_curves") else {}
    if curves:
        plots.training_curves_figure(curves, ctx.figures / "training_curves.png")
    return {}


@torch.no_grad()
def traversal_plot(ctx: EvalContext) -> None:
    """``traversals.png``: each latent dim of the first test image's posterior mean set to
    -3..3 in turn (rows labelled per MT-VAE block), decoded to mean images."""
    model = ctx.model
    mean = model.encode(ctx.data.test.x[:1]).loc[0]  # (Z,)
    dims = min(len(mean), TRAVERSAL_MAX_DIMS)
    values = torch.as_tensor(TRAVERSAL_VALUES, dtype=mean.dtype)
    z = mean.repeat(dims * len(values), 1)  # (dims * V, Z), row-major over (dim, value)
    z[torch.arange(len(z)), torch.arange(dims).repeat_interleave(len(values))] = values.repeat(dims)
    images = model.likelihood.mean(model.decode(z)).cpu().numpy()
    labels = block_dim_labels(model, len(mean))[:dims]
    plots.traversal_figure(images, labels, TRAVERSAL_VALUES, ctx.figures / "traversals.png")


def embedding_plot(ctx: EvalContext) -> None:
    """``embedding.png``: PCA of the test representation, one panel per task's labels."""
    codes = split_representation(ctx, "test")[:EMBEDDING_POINTS]
    test = ctx.data.test
    labels = {}
    for task, spec in ctx.data.tasks.items():
        if spec.task_kind.scalar:
            y = test.targets[task][: len(codes)].numpy().astype(np.float64)
            y[~test.masks[task][: len(codes)].numpy()] = np.nan  # unlabelled: not coloured
            labels[task] = (y, spec.task_kind)
    plots.embedding_figure(plots.pca_2d(codes), labels, ctx.figures / "embedding.png")


def _log_records(ctx: EvalContext) -> list[dict]:
    path = ctx.run_dir / "log.jsonl"
    return plots.read_log(path) if path.is_file() else []
