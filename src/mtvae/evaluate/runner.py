"""Evaluate a trained model in memory: compute metric families and write their figures.

Each metric family says which model capabilities it needs (``requires``, protocols of
:mod:`mtvae.models.capabilities`) and, optionally, a ``check`` on the model and data
(ground-truth factors, a categorical task, several latent blocks); families that do not apply
are skipped with a one-line reason rather than an error. A family with an ``ood`` function is
also evaluated on a held-out region (``data.holdout``), under ``ood/<key>``.
:func:`mtvae.pipeline.evaluate_run` loads
a run directory (or takes a run just trained, in memory), calls :func:`evaluate_model` and
merges the metrics into ``results.json``. (A study's runs are handed to processes by
:mod:`mtvae.study.workers`; this module evaluates one model.)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import torch

from mtvae.data.dataset import Dataset, Split
from mtvae.errors import UserError, WriteError
from mtvae.evaluate import families as fam
from mtvae.evaluate.catalogue import lookup
from mtvae.evaluate.codebook import evaluate_codebook
from mtvae.evaluate.context import EvalContext
from mtvae.evaluate.figures import figure_failures_deferred, reconstruction_pairs, save_grid
from mtvae.evaluate.interventions import (
    conditional_samples_figure,
    discrete_conditional_tasks,
    intervention_figure,
)
from mtvae.evaluate.likelihood import evaluate_likelihood
from mtvae.evaluate.reconstruction import reconstruction_metrics
from mtvae.evaluate.tasks import task_metrics
from mtvae.models.capabilities import (
    Coded,
    GaussianLatentModel,
    Generative,
    Multitask,
    Reconstructs,
    missing,
)


@dataclass(frozen=True)
class MetricFamily:
    """A named group of metrics, the model capabilities it needs, and how to compute it."""

    name: str
    requires: tuple[type, ...]  # protocols of mtvae.models.capabilities
    compute: Callable[[EvalContext], dict]
    description: str
    check: Callable[[EvalContext], str | None] | None = None  # model/data need: reason or None
    # its metrics on the held-out region (data.holdout's ood split), stored as ood/<key>;
    # None: the family is not evaluated there
    ood: Callable[[EvalContext, Split], dict] | None = None


def _recon_on(ctx: EvalContext, split: Split) -> dict:
    return reconstruction_metrics(ctx.model, split.x, ctx.config.eval.batch_size)


def _recon(ctx: EvalContext) -> dict:
    results = _recon_on(ctx, ctx.data.test)
    n = min(ctx.config.eval.n_grid // 2, len(ctx.data.test))
    x = ctx.data.test.x[:n]
    pairs = reconstruction_pairs(x, ctx.model.reconstruct(x))
    save_grid(pairs, ctx.figures / "reconstructions.png", ncol=16)
    return results


def _task(ctx: EvalContext) -> dict:
    for task in discrete_conditional_tasks(ctx.model):
        x = ctx.data.test.x[:8]
        intervention_figure(ctx.model, x, task, ctx.figures / f"intervention_{task}.png")
        conditional_samples_figure(ctx.model, task, ctx.figures / f"conditional_{task}.png")
    return task_metrics(ctx.model, ctx.data.test, ctx.config.eval.batch_size)


def _task_on_held_out(ctx: EvalContext, split: Split) -> dict:
    with warnings.catch_warnings():  # a held-out class is often the only class present
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        return task_metrics(ctx.model, split, ctx.config.eval.batch_size)


def _val(ctx: EvalContext) -> dict:
    """The heads on the validation split's labelled samples (``val/task/<t>/<metric>``): what a
    study tunes a setting on (the best task weight of a front), so the test split reports it."""
    split = ctx.data.val
    labelled = [t for t, mask in split.masks.items() if bool(mask.any())]
    results = task_metrics(ctx.model, split, ctx.config.eval.batch_size, only=labelled)
    return {f"val/{key}": value for key, value in results.items() if key.startswith("task/")}


METRIC_FAMILIES: dict[str, MetricFamily] = {
    family.name: family
    for family in [
        MetricFamily("recon", (Reconstructs,), _recon, "reconstruction error", ood=_recon_on),
        MetricFamily(
            "nll", (GaussianLatentModel,), evaluate_likelihood, "ELBO, IWAE, KL"
        ),
        MetricFamily("task", (Multitask,), _task, "the model's own task heads",
                     ood=_task_on_held_out),
        MetricFamily("val", (Multitask,), _val,
                     "the task heads on the validation split, to tune a setting on"),
        MetricFamily(
            "vq",
            (Coded, Generative),
            evaluate_codebook,
            "codebook usage, VQ likelihood bounds, samples from the prior",
        ),
        MetricFamily(
            "probe", (), fam.evaluate_probes,
            "linear and k-NN probes on the frozen representation, at label budgets",
            check=fam.needs_probe_tasks,
        ),
        MetricFamily(
            "disent", (), fam.evaluate_disentanglement,
            "MIG, DCI, SAP, FactorVAE, beta-VAE, modularity, explicitness, TC",
            check=fam.needs_factors,
        ),
        MetricFamily(
            "leakage", (), fam.evaluate_leakage,
            "how well each latent block predicts each task, and its heat map",
            check=fam.needs_blocks,
        ),
        MetricFamily(
            "gen", (Generative,), fam.evaluate_generation,
            "FD, KID, precision/recall and coherence in a reference classifier's features",
            check=fam.needs_reference_task,
        ),
        MetricFamily(
            "figures", (), fam.evaluate_figures,
            "samples, latent traversals, 2-D embedding, training curves",
        ),
    ]
}


def parse_metrics(text: str | Collection[str] | None) -> list[str]:
    """``all``, a comma list of family names (the CLI's) or the names themselves (a study's
    tuple) -> validated list of names."""
    if text is None or text == "all":
        return list(METRIC_FAMILIES)
    names = [part.strip() for part in (text.split(",") if isinstance(text, str) else text)
             if part.strip()]
    unknown = [n for n in names if n not in METRIC_FAMILIES]
    if unknown or not names:
        raise UserError(
            f"Unknown metric family '{','.join(unknown) or text}'. "
            f"Choose 'all' or a comma list of: {', '.join(METRIC_FAMILIES)}."
        )
    return names


def skip_reason(family: MetricFamily, model, ctx: EvalContext | None = None) -> str | None:
    """Why ``family`` does not apply to ``model`` (and, given ``ctx``, its data), or None."""
    lacks = missing(model, *family.requires)
    if lacks:
        return f"{type(model).__name__} has no {', '.join(lacks)}"
    if family.check is not None and ctx is not None:
        return family.check(ctx)
    return None


def ood_metrics(ctx: EvalContext, family: MetricFamily) -> dict:
    """``ood/<key>`` metrics of ``family`` on the dataset's held-out split (data.holdout), for
    a family evaluated there (:attr:`MetricFamily.ood`) on a dataset that has one."""
    ood = getattr(ctx.data, "ood", None)
    if ood is None or family.ood is None:
        return {}
    return {f"ood/{key}": value for key, value in family.ood(ctx, ood).items()}


class FamilyWriteFailed(Exception):
    """Family ``family`` failed to write a figure (``error``, e.g. a full disk); ``results`` are
    every metric computed, the family's own included (its figure failures are deferred until
    its metrics are computed)."""

    def __init__(self, family: str, error: WriteError, results: dict) -> None:
        super().__init__(str(error))
        self.family, self.error, self.results = family, error, results


@torch.no_grad()
def evaluate_model(
    model: torch.nn.Module, data: Dataset, config, run_dir: str | Path, families: list[str],
    seed: int = 0, log=print, skip_figures: Collection[str] = (),
) -> dict:
    """The metrics of ``families`` for a trained ``model`` on ``data``; figures go to
    ``run_dir/figures``, but for those named in ``skip_figures`` (e.g. ``training_curves``),
    which are not drawn. ``config`` is the run's config (its ``seed`` and ``eval`` sections).

    Families that do not apply are skipped with a line to ``log``; a figure that cannot be
    written raises :class:`FamilyWriteFailed` once its family's metrics are computed. Reading
    and writing ``results.json`` is the run's (:func:`mtvae.pipeline.evaluate_run`).
    """
    ctx = EvalContext(model, data, config, Path(run_dir), skip_figures=frozenset(skip_figures),
                      log=log)
    torch.manual_seed(seed)  # evaluation draws are reproducible
    results: dict = {}
    for name in families:
        family = METRIC_FAMILIES[name]
        reason = skip_reason(family, model, ctx)
        if reason:
            log(f"skipped {name}: {reason}")
            continue
        # a figure that cannot be written (full disk...) is recorded, not raised, until the
        # family's metrics are computed: they are kept with those of the families before it
        with figure_failures_deferred() as failed:
            results.update(family.compute(ctx))
        results.update(ood_metrics(ctx, family))
        if failed:
            raise FamilyWriteFailed(name, failed[0], results)
    undeclared = sorted(k for k in results if lookup(k) is None)
    if undeclared:  # every key must say what it means (mtvae.evaluate.catalogue)
        log(f"warning: metric keys missing from the catalogue: {', '.join(undeclared)}")
    return results


def format_table(results: dict) -> str:
    """A two-column text table of metric keys and values."""
    width = max((len(k) for k in results), default=6)
    lines = [f"{'metric':<{width}}  value", f"{'-' * width}  -----"]
    for key in sorted(results):
        value = results[key]
        text = f"{value:.6g}" if isinstance(value, float) else str(value)
        lines.append(f"{key:<{width}}  {text}")
    return "\n".join(lines)
