"""VQ metrics: codebook usage on the test set and the VQ-VAE's bound on -log p(x).

``nll/vq_bound`` is the bound of van den Oord et al. (2017): the posterior q(z|x) is one-hot on
the quantised codes z_q(x), so its entropy is 0 and the ELBO is
``log p(x|z_q) - KL(q || p) = log p(x|z_q) + log p(z_q)``, i.e.

    -log p(x) <= -log p(x | z_q) - log p(z_q)        (nats per image)

with p(z) the model's prior over code grids. The paper trains with a uniform prior, for which
``-log p(z_q) = H' W' log K`` is a constant; ``nll/vq_bound_uniform`` is that bound, so the gap
between the two keys is what the learned (PixelCNN) prior adds. Both are comparable with the
VAE's ``nll/iwae`` (same likelihood, same units), though the bound is loose where the decoder
is far from deterministic.
"""

from __future__ import annotations

import torch

from mtvae.evaluate.figures import save_grid
from mtvae.evaluate.metric import info, outcome
from mtvae.latent.autoregressive import UniformPrior
from mtvae.latent.quantization import CodeUsage

METRICS = (
    outcome("nll/vq_bound", "reconstruction", "lower", "nats per image",
            "−log p(x) bound of a VQ-VAE: −log p(x|z_q) − log p(z_q) under the prior"),
    outcome("nll/vq_bound_uniform", "reconstruction", "lower", "nats per image",
            "the VQ bound with a uniform prior over codes"),
    outcome("vq/recon_nll", "reconstruction", "lower", "nats per image",
            "−log p(x|z_q) per test image, at the quantised codes"),
    info("vq/prior_nll", "nats per image", "−log p(z_q) under the prior per test image",
         "codebook"),
    info("vq/perplexity", "codes", "exp of the entropy of code usage on the test split",
         "codebook"),
    info("vq/usage", "fraction", "fraction of the codebook used on the test split", "codebook"),
    info("vq/dead", "codes", "codebook entries never used on the test split", "codebook"),
    info("vq/*", "", "codebook statistic", "codebook"),
)


def usage_metrics(codes: torch.Tensor, num_codes: int) -> dict[str, float]:
    """``vq/perplexity``, ``vq/usage`` (fraction of codes used), ``vq/dead`` (codes unused)."""
    usage = CodeUsage(num_codes)
    usage.update(codes)
    return {f"vq/{key}": float(value) for key, value in usage.compute().items()}


def vq_bound(recon_nll: torch.Tensor, prior_nll: torch.Tensor) -> torch.Tensor:
    """Per-image bound on -log p(x): ``-log p(x|z_q) - log p(z_q)`` from its two terms."""
    return recon_nll + prior_nll


@torch.inference_mode()
def code_terms(model, x: torch.Tensor, batch_size: int = 500) -> dict[str, torch.Tensor]:
    """Per-image codes and NLL terms of a VQ model on images ``x`` (batched, evaluation mode).

    Returns ``codes`` ``(N, H', W')``, ``recon_nll``, ``prior_nll`` and ``uniform_nll`` ``(N,)``.
    """
    uniform = UniformPrior(model.num_codes)
    parts: dict[str, list[torch.Tensor]] = {"codes": [], "recon_nll": [], "prior_nll": [],
                                            "uniform_nll": []}
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size]
        codes = model.encode_codes(xb)
        parts["codes"].append(codes)
        parts["recon_nll"].append(-model.likelihood.log_prob(model.decode_codes(codes), xb))
        parts["prior_nll"].append(model.prior.nll(codes))
        parts["uniform_nll"].append(uniform.nll(codes))
    return {key: torch.cat(values) for key, values in parts.items()}


def codebook_metrics(model, x: torch.Tensor, batch_size: int = 500) -> dict[str, float]:
    """Usage statistics and likelihood bounds of a VQ model on the images ``x``."""
    terms = code_terms(model, x, batch_size)
    return {
        **usage_metrics(terms["codes"], model.num_codes),
        "vq/recon_nll": float(terms["recon_nll"].mean()),
        "vq/prior_nll": float(terms["prior_nll"].mean()),
        "nll/vq_bound": float(vq_bound(terms["recon_nll"], terms["prior_nll"]).mean()),
        "nll/vq_bound_uniform": float(vq_bound(terms["recon_nll"], terms["uniform_nll"]).mean()),
    }


def evaluate_codebook(ctx) -> dict[str, float]:
    """The ``vq`` metric family on the test set, plus ``figures/samples.png`` from the prior."""
    model, cfg = ctx.model, ctx.config.eval
    results = codebook_metrics(model, ctx.data.test.x, cfg.batch_size)
    generator = torch.Generator().manual_seed(ctx.config.seed)
    save_grid(model.sample(cfg.n_grid, generator=generator), ctx.figures / "samples.png")
    return results
