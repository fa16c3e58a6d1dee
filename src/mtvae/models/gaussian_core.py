"""The Gaussian latent core every VAE-like model builds on.

Encoder -> diagonal Gaussian q(z|x) -> decoder -> likelihood p(x|z), with the reconstruction
and (warmed-up, free-bits) KL terms of the training loss, the ELBO and the importance weights
of the IWAE bound. The prior is N(0, I); a model with another prior on parts of the latent
(the MT-VAE's label-conditional blocks) overrides :meth:`GaussianVAE.log_prior`,
:meth:`GaussianVAE.sample_latent` and :attr:`GaussianVAE.standard_prior`.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn
from torch.distributions import Normal

from mtvae.base import StrictModel
from mtvae.latent.gaussian import GaussianLatent, free_bits_kl, kl_standard_normal
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


def kl_terms(options: GaussianVAEOptions, kl_dim: torch.Tensor, step: int | None,
             training: bool) -> tuple[dict, dict]:
    """The weighted ``kl`` loss and the logged ``kl``/``beta`` terms for a per-dimension KL
    ``(B, Z)``: ``step`` drives the warm-up of beta (None: full beta); the free-bits floor
    applies in training only, so validation reports the plain KL."""
    beta = options.beta * linear_warmup(step, options.kl_warmup_steps)
    kl = free_bits_kl(kl_dim, options.free_bits) if training else kl_dim.sum(1).mean()
    return {"kl": beta * kl}, {"kl": kl_dim.sum(1).mean().detach(), "beta": beta}


class GaussianVAE(nn.Module):
    """Encoder -> diagonal Gaussian q(z|x) -> decoder -> likelihood, prior N(0, I)."""

    def __init__(self, options: GaussianVAEOptions, image_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.config = options
        self.image_shape = tuple(image_shape)
        self.encoder = Encoder(options.encoder, self.image_shape)
        self.latent = GaussianLatent(self.encoder.out_features, options.latent_dim)
        self.decoder = Decoder(options.encoder, self.image_shape, options.latent_dim)
        self.likelihood = build_likelihood(options.likelihood, self.image_shape[0], options.sigma)

    @property
    def standard_prior(self) -> bool:
        """Whether p(z) is N(0, I) everywhere (then the KL is analytic)."""
        return True

    # --- inference and generation -----------------------------------------------------------
    def encode(self, x: torch.Tensor) -> Normal:
        """q(z|x) over the whole latent vector for images ``(B, C, H, W)``."""
        return self.latent(self.encoder(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Likelihood parameters ``(B, C, H, W)`` for latents ``(B, Z)``."""
        return self.decoder(z)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Mean reconstruction from the posterior mean."""
        return self.likelihood.mean(self.decode(self.encode(x).loc))

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` prior draws ``(n, Z)`` (drawn on the CPU generator, then moved)."""
        device = next(self.parameters()).device
        return torch.randn(n, self.config.latent_dim, generator=generator).to(device)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean images decoded from ``n`` prior draws."""
        return self.likelihood.mean(self.decode(self.sample_latent(n, generator)))

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) ``(...,)`` for latents ``(..., Z)``."""
        return Normal(0.0, 1.0).log_prob(z).sum(-1)

    # --- objectives -------------------------------------------------------------------------
    def reconstruction_term(self, q: Normal, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparametrized draw ``z ~ q`` and the mean reconstruction loss of ``x`` from it."""
        z = q.rsample()
        return z, self.likelihood.loss(self.decode(z), x).mean()

    def kl_terms(self, kl_dim: torch.Tensor, step: int | None) -> tuple[dict, dict]:
        """:func:`kl_terms` with this model's options and mode."""
        return kl_terms(self.config, kl_dim, step, self.training)

    def elbo(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-image ELBO and KL ``(B,)`` with one reparametrized sample (beta = 1); the KL is
        analytic under N(0, I), else a single-sample estimate."""
        q = self.encode(x)
        z = q.rsample()
        log_px = self.likelihood.log_prob(self.decode(z), x)
        if self.standard_prior:
            kl = kl_standard_normal(q).sum(1)
        else:
            kl = q.log_prob(z).sum(-1) - self.log_prior(z)
        return log_px - kl, kl

    def log_weights(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Importance log-weights ``log p(x, z_i) - log q(z_i|x)`` for ``k`` draws, ``(k, B)``."""
        q = self.encode(x)
        z = q.rsample((k,))  # (k, B, Z)
        params = self.decode(z.flatten(0, 1))
        log_px = self.likelihood.log_prob(params, x.expand(k, *x.shape).flatten(0, 1)).view(k, -1)
        return log_px + self.log_prior(z) - q.log_prob(z).sum(-1)
