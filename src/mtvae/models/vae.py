"""Gaussian VAE / beta-VAE (Kingma & Welling 2013; Higgins et al. 2017).

Loss per sample: ``-log p(x|z) + beta_t * KL(q(z|x) || N(0, I))`` with ``z`` drawn by the
reparametrization trick; ``beta_t`` warms up linearly over ``kl_warmup_steps`` and the KL can
have a free-bits floor. With ``likelihood: mse`` the reconstruction term is the seed's
``||x - f(z)||^2``. Everything but the loss is the Gaussian core's
(:mod:`mtvae.models.gaussian_core`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mtvae.data.dataset import DataInfo
from mtvae.data.loader import Batch
from mtvae.latent.gaussian import kl_standard_normal
from mtvae.models.gaussian_core import GaussianVAE, GaussianVAEOptions
from mtvae.models.output import Output
from mtvae.models.registry import NAME_DESCRIPTION


class VAEConfig(GaussianVAEOptions):
    """Options of the Gaussian VAE."""

    name: Literal["vae"] = Field("vae", description=NAME_DESCRIPTION)
    tasks: list[str] | None = Field(
        None, description="tasks that probes evaluate on the latent (None: all the data's)"
    )


class VAE(GaussianVAE):
    """The Gaussian core trained on its negative ELBO, prior N(0, I)."""

    def __init__(self, config: VAEConfig, data_info: DataInfo) -> None:
        super().__init__(config, data_info.image_shape)

    def forward(self, batch: Batch, step: int | None = None) -> Output:
        """Training objective on a batch; ``step`` drives the KL warm-up (None: full beta)."""
        q = self.encode(batch.x)
        _, recon = self.reconstruction_term(q, batch.x)
        kl_losses, kl_terms = self.kl_terms(kl_standard_normal(q), step)
        losses = {"recon": recon, **kl_losses}
        terms = {"recon": recon.detach(), **kl_terms}
        return Output(loss=sum(losses.values()), losses=losses, terms=terms, latents={"z": q.loc})
