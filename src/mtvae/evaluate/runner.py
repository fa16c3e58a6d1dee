"""Evaluate a trained run: compute metric families, merge into results.json, write figures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from mtvae.data.dataset import Dataset
from mtvae.data.sources import load_dataset
from mtvae.errors import UserError
from mtvae.evaluate.figures import reconstruction_pairs, save_grid
from mtvae.evaluate.likelihood import active_units, elbo_and_kl, iwae_log_likelihood
from mtvae.evaluate.reconstruction import reconstruction_metrics
from mtvae.io import read_json, write_json
from mtvae.runs import load


def _recon(model, data: Dataset, config) -> dict[str, float]:
    return reconstruction_metrics(model, data.test.x, config.eval.batch_size)


def _nll(model, data: Dataset, config) -> dict[str, float]:
    x = data.test.x
    elbo, kl = elbo_and_kl(model, x, config.eval.batch_size)
    x_iwae = x[: config.eval.iwae_n]
    ll = iwae_log_likelihood(model, x_iwae, k=config.eval.iwae_k)
    means = torch.cat([model.encode(x[i : i + 500]).loc for i in range(0, len(x), 500)])
    return {
        "elbo": float(elbo.mean()),
        "kl": float(kl.mean()),
        "nll/iwae": float(-ll.mean()),
        "nll/iwae_k": config.eval.iwae_k,
        "active_units": active_units(means),
    }


# Metric families by name; each takes (model, dataset, config) and returns flat keys.
METRIC_FAMILIES: dict[str, Callable] = {"recon": _recon, "nll": _nll}


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


@torch.no_grad()
def evaluate_run(run_dir: str | Path, metrics: str | None = "all", seed: int = 0) -> dict:
    """Evaluate ``run_dir``; merge the metrics into ``results.json`` and return them."""
    run_dir = Path(run_dir)
    families = parse_metrics(metrics)
    model, config = load(run_dir)
    data = load_dataset(config.data)
    torch.manual_seed(seed)  # evaluation draws are reproducible
    results: dict = {}
    for name in families:
        results.update(METRIC_FAMILIES[name](model, data, config))
    _write_figures(model, data, config, run_dir)
    path = run_dir / "results.json"
    merged = read_json(path) if path.is_file() else {}
    merged.update(results)
    write_json(path, merged)
    return results


def _write_figures(model, data: Dataset, config, run_dir: Path) -> None:
    n = min(config.eval.n_grid // 2, len(data.test))
    x = data.test.x[:n]
    save_grid(reconstruction_pairs(x, model.reconstruct(x)), run_dir / "figures/reconstructions.png", ncol=16)


def format_table(results: dict) -> str:
    """A two-column text table of metric keys and values."""
    width = max((len(k) for k in results), default=6)
    lines = [f"{'metric':<{width}}  value", f"{'-' * width}  -----"]
    for key in sorted(results):
        value = results[key]
        text = f"{value:.6g}" if isinstance(value, float) else str(value)
        lines.append(f"{key:<{width}}  {text}")
    return "\n".join(lines)
