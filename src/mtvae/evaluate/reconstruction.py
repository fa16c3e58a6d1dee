"""Reconstruction metrics from the posterior-mean reconstruction (per-pixel means)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mtvae.evaluate.metric import outcome

METRICS = (
    outcome("recon/mse", "reconstruction", "lower", "per pixel",
            "mean squared error per pixel between test images and their reconstruction from "
            "the posterior mean"),
    outcome("recon/bce", "reconstruction", "lower", "nats per pixel",
            "binary cross-entropy per pixel between test images and their reconstruction"),
)


@torch.inference_mode()
def reconstruction_metrics(model, x: torch.Tensor, batch_size: int = 500) -> dict[str, float]:
    """``recon/mse`` and ``recon/bce``: per-pixel mean squared error and binary cross-entropy.

    Both compare ``x`` with the mean reconstruction decoded from the posterior mean; the BCE
    clamps reconstructions into (0, 1) so it is defined for any likelihood.
    """
    sq, bce, n = 0.0, 0.0, 0
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size]
        rec = model.reconstruct(xb)
        sq += float(F.mse_loss(rec, xb, reduction="sum"))
        p = rec.clamp(1e-6, 1 - 1e-6)
        bce += float(F.binary_cross_entropy(p, xb.clamp(0, 1), reduction="sum"))
        n += xb.numel()
    return {"recon/mse": sq / n, "recon/bce": bce / n}
