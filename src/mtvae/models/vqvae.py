"""VQ-VAE (van den Oord et al. 2017, "Neural Discrete Representation Learning").

Encoder -> a grid of code vectors ``(B, D, H', W')`` -> quantizer -> decoder -> likelihood
p(x|z_q). The quantizer is the one ``model.quantizer.kind`` names
(:mod:`mtvae.latent.quantizers`): by default the nearest of ``K`` codebook vectors, with the loss
per image ``-log p(x|z_q) + ||sg[z_e] - e||^2 + beta ||z_e - sg[e]||^2`` (the codebook term is
replaced by EMA updates with ``quantizer.ema``); or finite scalar quantization, whose loss is the
reconstruction alone. The model reads the quantizer only through its interface (indices,
codes from indices, number of codes), so every kind works here and in the MT-VQ-VAE.

Generation needs a prior over code grids, fitted in a second stage once the VQ-VAE is trained:
a gated PixelCNN over the training set's codes (``prior.kind: pixelcnn``), or a uniform prior
(``uniform``, nothing to fit). The model declares that stage (``second_stage = "prior"``);
:mod:`mtvae.train.prior_stage` runs it. The prior is a submodule, so its weights live in the
same ``model.safetensors``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from mtvae.base import StrictModel
from mtvae.data.dataset import DataInfo
from mtvae.data.loader import Batch
from mtvae.latent.autoregressive import PixelCNNConfig, PixelCNNPrior, UniformPrior
from mtvae.latent.quantization import CodeUsage, Quantized
from mtvae.latent.quantizers import QuantizerConfig, build_quantizer, quantizer_code_dim
from mtvae.models.output import Output
from mtvae.models.registry import NAME_DESCRIPTION
from mtvae.nn.bodies import BODY_DESCRIPTION
from mtvae.nn.code_bodies import CodeBodyConfig, CodeDecoder, CodeEncoder
from mtvae.objectives.likelihoods import LikelihoodName, build_likelihood


@dataclass(frozen=True)
class PriorKind:
    """A prior over code grids: how it is built, and whether a second training stage fits it."""

    build: Callable[[PriorOptions, int], nn.Module]
    fitted: bool


PRIORS: dict[str, PriorKind] = {
    "pixelcnn": PriorKind(lambda options, k: PixelCNNPrior(
        PixelCNNConfig(num_codes=k, hidden=options.hidden, layers=options.layers)), fitted=True),
    "uniform": PriorKind(lambda options, k: UniformPrior(k), fitted=False),
}


class PriorOptions(StrictModel):
    """The prior over code grids and how its second training stage runs."""

    kind: Literal[tuple(PRIORS)] = Field(  # type: ignore[valid-type]  # the registered kinds
        "pixelcnn", description="prior over code grids")
    epochs: int = Field(10, ge=1, description="epochs of prior training on the training codes")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate of the prior")
    batch_size: int = Field(128, ge=1, description="code grids per prior training step")
    hidden: int = Field(32, ge=1, description="PixelCNN channels")
    layers: int = Field(5, ge=1, description="PixelCNN gated layers")


class VQVAEConfig(StrictModel):
    """Options of the VQ-VAE."""

    name: Literal["vqvae"] = Field("vqvae", description=NAME_DESCRIPTION)
    quantizer: QuantizerConfig = Field(
        default_factory=QuantizerConfig, description="the quantizer (kind) and its options"
    )
    likelihood: LikelihoodName = Field("bernoulli", description="observation model p(x|z)")
    sigma: float = Field(0.1, gt=0, description="fixed sigma of the 'gaussian' likelihood")
    encoder: CodeBodyConfig = Field(default_factory=CodeBodyConfig, description=BODY_DESCRIPTION)
    n_latents: int = Field(16, ge=1, description="mlp arch: code vectors per image")
    prior: PriorOptions = Field(
        default_factory=PriorOptions, description="the prior over code grids, fitted in a "
        "second training stage after the VQ-VAE"
    )


def build_prior(options: PriorOptions, num_codes: int) -> nn.Module:
    """The prior module ``options.kind`` names, over ``num_codes`` codes."""
    return PRIORS[options.kind].build(options, num_codes)


class VQVAE(nn.Module):
    """Encoder -> vector quantiser -> decoder -> likelihood, with a prior over code grids."""

    def __init__(self, config: VQVAEConfig, data_info: DataInfo) -> None:
        super().__init__()
        self.config = config
        self.image_shape = tuple(data_info.image_shape)
        d = quantizer_code_dim(config.quantizer)
        # built in this order so that the weights draw the random numbers they always drew
        self.encoder = CodeEncoder(config.encoder, self.image_shape, d, config.n_latents)
        self.grid_shape = self.encoder.grid_shape  # (H', W')
        self.quantizer = build_quantizer(config.quantizer)
        self.decoder = CodeDecoder(config.encoder, self.image_shape, d, config.n_latents)
        self.likelihood = build_likelihood(config.likelihood, self.image_shape[0], config.sigma)
        self.prior = build_prior(config.prior, self.quantizer.n_codes)
        # Usage over training forwards since the last epoch_terms() call; not model state.
        self.usage = CodeUsage(self.quantizer.n_codes)

    @property
    def second_stage(self) -> str | None:
        """The stage to run after training (:mod:`mtvae.train.stages`): fit the prior."""
        return "prior" if PRIORS[self.config.prior.kind].fitted else None

    @property
    def num_codes(self) -> int:
        """Number of codes K (a FSQ's implicit codebook: the product of its levels)."""
        return self.quantizer.n_codes

    # --- codes ----------------------------------------------------------------------------
    def encode_codes(self, x: torch.Tensor) -> torch.Tensor:
        """Code indices ``(B, H', W')`` in ``[0, K)`` of images ``(B, C, H, W)``."""
        return self.quantizer.indices(self.encoder(x))

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Likelihood parameters ``(B, C, H, W)`` for code indices ``(B, H', W')``."""
        return self.decoder(self.quantizer.codes_from_indices(codes))

    def code_nll(self, x: torch.Tensor) -> torch.Tensor:
        """``-log p(codes(x))`` under the prior, nats per image ``(B,)``."""
        return self.prior.nll(self.encode_codes(x))

    @torch.no_grad()
    def representation(self, x: torch.Tensor) -> torch.Tensor:
        """Quantised code vectors flattened per image ``(B, D * H' * W')`` (for probes)."""
        return self.quantizer.codes_from_indices(self.encode_codes(x)).flatten(1)

    # --- inference and generation ---------------------------------------------------------
    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Mean reconstruction decoded from the quantised codes."""
        return self.likelihood.mean(self.decode_codes(self.encode_codes(x)))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean images decoded from ``n`` code grids drawn from the prior."""
        codes = self.prior.sample(n, self.grid_shape, generator=generator)
        device = next(self.decoder.parameters()).device
        return self.likelihood.mean(self.decode_codes(codes.to(device)))

    # --- objectives -----------------------------------------------------------------------
    def forward(self, batch: Batch, step: int | None = None) -> Output:
        """Training objective on a batch (``step`` is unused: there is no schedule)."""
        return self.quantized_objective(batch, self.quantizer(self.encoder(batch.x)))

    def quantized_objective(self, batch: Batch, quantized: Quantized) -> Output:
        """Reconstruction + quantiser loss for an already quantised batch.

        Public so that a model built on the VQ-VAE (the MT-VQ-VAE's heads read the same
        quantised grid) adds its own terms to this objective instead of re-deriving it.
        """
        recon = self.likelihood.loss(self.decoder(quantized.z_q), batch.x).mean()
        if self.training:
            self.usage.update(quantized.indices)
        terms = {
            "recon": recon.detach(),
            "vq": quantized.loss.detach(),
            "vq/perplexity": quantized.perplexity,
            "vq/used": quantized.used.float(),
        }
        return Output(
            loss=recon + quantized.loss,
            losses={"recon": recon, "vq": quantized.loss},
            terms=terms,
            latents={"codes": quantized.indices},
        )

    def epoch_terms(self) -> dict[str, float]:
        """Code usage over every training forward since the last call, then reset.

        The trainer calls this at the end of each epoch: ``vq/epoch_perplexity``,
        ``vq/epoch_usage`` (fraction of codes used) and ``vq/epoch_dead`` (codes never used).
        """
        stats = self.usage.compute()
        self.usage.reset()
        return {f"vq/epoch_{key}": value for key, value in stats.items()}

    def loss_names(self) -> list[str]:
        """Names of the loss components in ``Output.losses``."""
        return ["recon", "vq"]
