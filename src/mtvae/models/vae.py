"""Gaussian VAE / beta-VAE (Kingma & Welling 2013; Higgins et al. 2017).

Loss per sample: ``-log p(x|z) + beta_t * KL(q(z|x) || N(0, I))`` with ``z`` drawn by the
reparametrization trick; ``beta_t`` warms up linearly over ``kl_warmup_steps`` and the KL can
have a free-bits floor. With ``likelihood: mse`` the reconstruction term is the seed's
``||x - f(z)||^2``.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn
from torch.distributions import Normal

from mtvae.base import StrictModel
from mtvae.data.dataset import DataInfo
from mtvae.data.loader import Batch
from mtvae.latent.gaussian import GaussianLatent, free_bits_kl, kl_standard_normal
from mtvae.models.output import Output
from mtvae.models.registry import NAME_DESCRIPTION
from mtvae.nn.bodies import BODY_DESCRIPTION, BodyConfig, Decoder, Encoder
from mtvae.objectives.likelihoods import LikelihoodName, build_likelihood
from mtvae.objectives.schedules import linear_warmup


class GaussianVAEOptions(StrictModel):
    """Options shared by every model with a Gaussian latent and a decoder."""

    latent_dim: int = Field(10, ge=1, description="number of latent dimensions (all blocks)")
    beta: float = Field(1.0, ge=0, description="weight of the KL term (beta-VAE)")
    likelihood: LikelihoodName = Field("bernoulli", description="observation model p(x|z)")
    sigma: float = Field(0.1, gt=0, description="fixed sigma of the 'gaussian' likelihood")
    kl_warmup_steps: int = Field(0, ge=0, description="steps over which beta rises from 0")
    free_bits: float = Field(0.0, ge=0, description="KL floor per dimension in nats")
    encoder: BodyConfig = Field(default_factory=BodyConfig, description=BODY_DESCRIPTION)


class VAEConfig(GaussianVAEOptions):
    """Options of the Gaussian VAE."""

    name: Literal["vae"] = Field("vae", description=NAME_DESCRIPTION)
    tasks: list[str] | None = Field(
        None, description="tasks that probes evaluate on the latent (None: all the data's)"
    )


class VAE(nn.Module):
    """Encoder -> diagonal Gaussian q(z|x) -> decoder -> likelihood, prior N(0, I)."""

    def __init__(self, config: VAEConfig, data_info: DataInfo) -> None:
        super().__init__()
        self.config = config
        self.image_shape = tuple(data_info.image_shape)
        self.encoder = Encoder(config.encoder, self.image_shape)
        self.latent = GaussianLatent(self.encoder.out_features, config.latent_dim)
        self.decoder = Decoder(config.encoder, self.image_shape, config.latent_dim)
        self.likelihood = build_likelihood(config.likelihood, self.image_shape[0], config.sigma)

    # --- inference and generation -------------------------------------------------------
    def encode(self, x: torch.Tensor) -> Normal:
        """q(z|x) for images ``(B, C, H, W)``."""
        return self.latent(self.encoder(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Likelihood parameters ``(B, C, H, W)`` for latents ``(B, Z)``."""
        return self.decoder(z)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Mean reconstruction from the posterior mean."""
        return self.likelihood.mean(self.decode(self.encode(x).loc))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean images decoded from ``n`` prior draws."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.config.latent_dim, generator=generator, device=device)
        return self.likelihood.mean(self.decode(z))

    # --- objectives -----------------------------------------------------------------------
    def forward(self, batch: Batch, step: int | None = None) -> Output:
        """Training objective on a batch; ``step`` drives the KL warm-up (None: full beta)."""
        q = self.encode(batch.x)
        z = q.rsample()
        recon = self.likelihood.loss(self.decode(z), batch.x).mean()
        kl_dim = kl_standard_normal(q)  # (B, Z)
        beta = self.config.beta * linear_warmup(step, self.config.kl_warmup_steps)
        kl = free_bits_kl(kl_dim, self.config.free_bits) if self.training else kl_dim.sum(1).mean()
        losses = {"recon": recon, "kl": beta * kl}
        loss = recon + beta * kl
        terms = {"recon": recon.detach(), "kl": kl_dim.sum(1).mean().detach(), "beta": beta}
        return Output(loss=loss, losses=losses, terms=terms, latents={"z": q.loc})

    def elbo(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-image ELBO and KL ``(B,)`` with one reparametrized sample (beta = 1)."""
        q = self.encode(x)
        log_px = self.likelihood.log_prob(self.decode(q.rsample()), x)
        kl = kl_standard_normal(q).sum(1)
        return log_px - kl, kl

    def log_weights(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Importance log-weights ``log p(x, z_i) - log q(z_i|x)`` for ``k`` draws, ``(k, B)``."""
        q = self.encode(x)
        z = q.rsample((k,))  # (k, B, Z)
        prior = Normal(torch.zeros_like(q.loc), torch.ones_like(q.scale))
        log_pz_minus_qz = (prior.log_prob(z) - q.log_prob(z)).sum(-1)  # (k, B)
        params = self.decode(z.flatten(0, 1))
        x_rep = x.expand(k, *x.shape).flatten(0, 1)
        log_px = self.likelihood.log_prob(params, x_rep).view(k, -1)
        return log_px + log_pz_minus_qz
