"""Likelihood metrics: ELBO, importance-weighted log-likelihood (IWAE), KL, active units.

All values are per image in nats. ``nll/iwae`` is ``-log p(x)`` estimated with ``k`` importance
samples (Burda et al. 2016); it is an upper bound on the true NLL that tightens as ``k`` grows.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from mtvae.evaluate.metric import info, outcome

if TYPE_CHECKING:
    from mtvae.evaluate.context import EvalContext


def iwae_bound(log_w: torch.Tensor) -> torch.Tensor:
    """IWAE estimate of log p(x) from log-weights ``(k, B)``: log-mean-exp over the k draws."""
    return torch.logsumexp(log_w, 0) - math.log(log_w.shape[0])


def iwae_log_likelihood(
    model, x: torch.Tensor, k: int, max_decoded: int = 1024, batch_size: int = 256
) -> torch.Tensor:
    """Per-image IWAE log-likelihood ``(N,)`` with ``k`` samples.

    Images are taken at most ``batch_size`` at a time and their ``k`` samples in chunks, so
    that about ``max_decoded`` images go through the decoder at once: small enough for the
    activations to be reused from the allocator and caches rather than freshly page-faulted
    (8192 at once was 1.3x slower per image on CPU, ``benchmarks/bench_iwae.py``). On CPU
    the model's conv weights are switched to channels-last first (see
    :func:`channels_last_on_cpu`).
    """
    channels_last_on_cpu(model)  # outside inference mode: parameters must stay normal tensors
    return _iwae(model, x, k, max_decoded, batch_size)


def channels_last_on_cpu(model) -> None:
    """On CPU, store the model's 4-d (conv) weights channels-last, in place; values are unchanged.

    oneDNN then runs its NHWC convolution kernels, which decode the conv bodies about 2x faster
    (``benchmarks/bench_iwae.py``). Nothing changes for MLPs or on GPU.
    """
    param = next(model.parameters(), None)
    if param is not None and param.device.type == "cpu":
        model.to(memory_format=torch.channels_last)


@torch.inference_mode()
def _iwae(model, x: torch.Tensor, k: int, max_decoded: int, batch_size: int) -> torch.Tensor:
    out = []
    batch_size = max(1, min(batch_size, max_decoded // k))  # encode once per chunk of samples
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size]
        chunk = max(1, max_decoded // len(xb))
        log_w = torch.cat([model.log_weights(xb, min(chunk, k - i)) for i in range(0, k, chunk)])
        out.append(iwae_bound(log_w))
    return torch.cat(out)


@torch.inference_mode()
def elbo_and_kl(model, x: torch.Tensor, batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image ELBO and KL ``(N,)`` (one reparametrized sample each)."""
    elbos, kls = [], []
    for start in range(0, len(x), batch_size):
        elbo, kl = model.elbo(x[start : start + batch_size])
        elbos.append(elbo)
        kls.append(kl)
    return torch.cat(elbos), torch.cat(kls)


def active_units(means: torch.Tensor, threshold: float = 0.01) -> int:
    """Number of latent dimensions whose posterior mean varies across data (Burda et al. 2016).

    A unit u is active when ``Cov_x(E_q[z_u | x]) > threshold``; ``means`` is ``(N, Z)``.
    """
    return int((means.var(0, unbiased=True) > threshold).sum())


METRICS = (  # the keys of evaluate_likelihood
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


def evaluate_likelihood(ctx: EvalContext) -> dict:
    """The nll family: ELBO, KL, the IWAE bound and the rate-distortion split on the test set."""
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
