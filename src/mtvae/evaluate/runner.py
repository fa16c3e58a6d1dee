"""Evaluate a trained run: compute metric families, merge into results.json, write figures.

Each metric family says which model capabilities it needs (``requires``) and, optionally, a
``check`` on the model and data (ground-truth factors, a categorical task, several latent
blocks); families that do not apply are skipped with a one-line reason rather than an error.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mtvae.data.dataset import Dataset
from mtvae.data.sources import load_dataset
from mtvae.errors import UserError, WriteError
from mtvae.evaluate import families as fam
from mtvae.evaluate.catalogue import info, lookup, outcome
from mtvae.evaluate.codebook import evaluate_codebook
from mtvae.evaluate.figures import figure_failures_deferred, reconstruction_pairs, save_grid
from mtvae.evaluate.interventions import (
    conditional_samples_figure,
    discrete_conditional_tasks,
    intervention_figure,
)
from mtvae.evaluate.likelihood import active_units, elbo_and_kl, iwae_log_likelihood
from mtvae.evaluate.reconstruction import reconstruction_metrics
from mtvae.evaluate.tasks import task_metrics
from mtvae.limits import check_evaluation_memory
from mtvae.runs import ResultsNotSaved, load, merge_results, warn_at_chance


@dataclass
class EvalContext:
    """Everything a metric family may need."""

    model: torch.nn.Module
    data: Dataset
    config: object
    run_dir: Path
    cache: dict = field(default_factory=dict)  # e.g. representations shared across families

    @property
    def figures(self) -> Path:
        """Where figures go."""
        return self.run_dir / "figures"


@dataclass(frozen=True)
class MetricFamily:
    """A named group of metrics, the model methods it needs, and how to compute it."""

    name: str
    requires: tuple[str, ...]
    compute: Callable[[EvalContext], dict]
    description: str
    check: Callable[[EvalContext], str | None] | None = None  # model/data need: reason or None


def _recon(ctx: EvalContext) -> dict:
    results = reconstruction_metrics(ctx.model, ctx.data.test.x, ctx.config.eval.batch_size)
    n = min(ctx.config.eval.n_grid // 2, len(ctx.data.test))
    x = ctx.data.test.x[:n]
    pairs = reconstruction_pairs(x, ctx.model.reconstruct(x))
    save_grid(pairs, ctx.figures / "reconstructions.png", ncol=16)
    return results


METRICS = (  # the keys of _nll
    outcome("elbo", "reconstruction", "higher", "nats per image",
            "evidence lower bound per test image (β = 1, one sample)"),
    info("kl", "nats per image", "KL(q(z|x) ‖ p(z)) per test image", "reconstruction"),
    outcome("nll/iwae", "reconstruction", "lower", "nats per image",
            "−log p(x) per test image, importance-weighted bound with k samples (Burda et al. "
            "2016)"),
    info("nll/iwae_k", "samples", "importance samples k of nll/iwae"),
    info("nll/iwae_n", "images", "test images nll/iwae averages over"),
    outcome("bits_per_dim", "reconstruction", "lower", "bits per value",
            "nll/iwae / (D ln 2), D = C·H·W pixel values (nll/iwae rescaled)"),
    info("rate", "nats per image", "mean KL(q(z|x) ‖ p(z)) per test image", "reconstruction"),
    outcome("distortion", "reconstruction", "lower", "nats per image",
            "mean −log p(x|z) per test image (elbo = −(rate + distortion))"),
    info("active_units", "dims", "latent dimensions whose posterior mean varies across inputs "
         "(Cov > 0.01)", "reconstruction"),
)


def _nll(ctx: EvalContext) -> dict:
    cfg, x = ctx.config.eval, ctx.data.test.x
    elbo, kl = elbo_and_kl(ctx.model, x, cfg.batch_size)
    ll = iwae_log_likelihood(ctx.model, x[: cfg.iwae_n], k=cfg.iwae_k)
    means = torch.cat([ctx.model.encode(x[i : i + 500]).loc for i in range(0, len(x), 500)])
    nll = float(-ll.mean())
    return {
        "elbo": float(elbo.mean()),
        "kl": float(kl.mean()),
        "nll/iwae": nll,
        "nll/iwae_k": cfg.iwae_k,
        "nll/iwae_n": len(ll),
        "bits_per_dim": nll / (x[0].numel() * math.log(2)),
        "rate": float(kl.mean()),
        "distortion": float(-(elbo + kl).mean()),  # -log p(x|z), one posterior sample
        "active_units": active_units(means),
    }


def _task(ctx: EvalContext) -> dict:
    for task in discrete_conditional_tasks(ctx.model):
        x = ctx.data.test.x[:8]
        intervention_figure(ctx.model, x, task, ctx.figures / f"intervention_{task}.png")
        conditional_samples_figure(ctx.model, task, ctx.figures / f"conditional_{task}.png")
    return task_metrics(ctx.model, ctx.data.test, ctx.config.eval.batch_size)


METRIC_FAMILIES: dict[str, MetricFamily] = {
    family.name: family
    for family in [
        MetricFamily("recon", ("reconstruct",), _recon, "reconstruction error"),
        MetricFamily("nll", ("log_weights", "elbo", "encode"), _nll, "ELBO, IWAE, KL"),
        MetricFamily("task", ("predict",), _task, "the model's own task heads"),
        MetricFamily(
            "vq",
            ("encode_codes", "decode_codes", "prior", "sample"),
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
            "gen", ("sample",), fam.evaluate_generation,
            "FD, KID, precision/recall and coherence in a reference classifier's features",
            check=fam.needs_reference_task,
        ),
        MetricFamily(
            "figures", (), fam.evaluate_figures,
            "samples, latent traversals, 2-D embedding, training curves",
        ),
    ]
}


def parse_metrics(text: str | None) -> list[str]:
    """``all`` or a comma list of family names -> validated list of names."""
    if text is None or text == "all":
        return list(METRIC_FAMILIES)
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [n for n in names if n not in METRIC_FAMILIES]
    if unknown or not names:
        raise UserError(
            f"Unknown metric family '{','.join(unknown) or text}'. "
            f"Choose 'all' or a comma list of: {', '.join(METRIC_FAMILIES)}."
        )
    return names


def skip_reason(family: MetricFamily, model, ctx: EvalContext | None = None) -> str | None:
    """Why ``family`` does not apply to ``model`` (and, given ``ctx``, its data), or None."""
    missing = [m for m in family.requires if not hasattr(model, m)]
    if missing:
        return f"{type(model).__name__} has no {', '.join(missing)}"
    if family.check is not None and ctx is not None:
        return family.check(ctx)
    return None


# --- held-out region (data.holdout): the same recon and task metrics on the ood split ------
OOD_FAMILIES = ("recon", "task")


def ood_metrics(ctx: EvalContext, family: str) -> dict:
    """``ood/<key>`` metrics of ``family`` on the dataset's held-out split (if it has one)."""
    ood = getattr(ctx.data, "ood", None)
    if ood is None or family not in OOD_FAMILIES:
        return {}
    batch_size = ctx.config.eval.batch_size
    if family == "recon":
        results = reconstruction_metrics(ctx.model, ood.x, batch_size)
    else:
        with warnings.catch_warnings():  # a held-out class is often the only class present
            warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
            results = task_metrics(ctx.model, ood, batch_size)
    return {f"ood/{key}": value for key, value in results.items()}


@torch.no_grad()
def evaluate_run(
    run_dir: str | Path, metrics: str | None = "all", seed: int = 0, log=print
) -> dict:
    """Evaluate ``run_dir``; merge the metrics into ``results.json`` and return them."""
    run_dir = Path(run_dir)
    families = parse_metrics(metrics)
    model, config = load(run_dir)
    ctx = EvalContext(model, load_dataset(config.data), config, run_dir)
    check_evaluation_memory(config, ctx.data)
    torch.manual_seed(seed)  # evaluation draws are reproducible
    results: dict = {}
    for name in families:
        reason = skip_reason(METRIC_FAMILIES[name], model, ctx)
        if reason:
            log(f"skipped {name}: {reason}")
            continue
        # a figure that cannot be written (full disk...) is recorded, not raised, until the
        # family's metrics are computed: they are kept with those of the families before it
        with figure_failures_deferred() as failed:
            results.update(METRIC_FAMILIES[name].compute(ctx))
        results.update(ood_metrics(ctx, name))
        if failed:
            raise _keep_computed(run_dir, results, failed[0], name)
    undeclared = sorted(k for k in results if lookup(k) is None)
    if undeclared:  # every key must say what it means (mtvae.evaluate.catalogue)
        log(f"warning: metric keys missing from the catalogue: {', '.join(undeclared)}")
    merge_results(run_dir, results)  # a damaged results.json is kept aside, not fatal
    if "task" in families:
        warn_at_chance(model, ctx.data)
    return results


def _keep_computed(run_dir: Path, results: dict, error: WriteError, family: str) -> WriteError:
    """The error to raise when ``family`` failed to write a figure: every metric computed, its
    own included, is merged into ``results.json`` (when that write works) and carried along
    for the CLI to print."""
    if not results:
        return error
    try:
        merge_results(run_dir, results)
        kept = "are saved in results.json and printed above"
    except ResultsNotSaved:
        kept = "are printed above (results.json could not be written either)"
    return ResultsNotSaved(
        error, results, f"then run the command again; the metrics computed up to and "
        f"including '{family}' {kept}")


def format_table(results: dict) -> str:
    """A two-column text table of metric keys and values."""
    width = max((len(k) for k in results), default=6)
    lines = [f"{'metric':<{width}}  value", f"{'-' * width}  -----"]
    for key in sorted(results):
        value = results[key]
        text = f"{value:.6g}" if isinstance(value, float) else str(value)
        lines.append(f"{key:<{width}}  {text}")
    return "\n".join(lines)
