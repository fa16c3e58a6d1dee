"""Multitask VAE: one VAE that jointly learns reconstruction and several supervised tasks.

The latent vector is laid out in blocks. With ``layout: shared`` there is one block and every
task head reads all of it. With ``layout: partitioned`` there is a shared block plus one block
of ``task_dim`` dimensions per task; head t reads its own block (and the shared block when
``heads_read_shared``), while the decoder always reads every block.

Loss per batch: ``recon + beta * KL (summed over blocks) + sum_t w_t * task_t (+ adversaries)``,
where task losses are masked means over labelled samples. Options: label-conditional priors
per task block, inhibition by gradient-reversal adversaries, heads on the posterior mean or a
sample, and ``detach`` to stop task gradients at the latent.
"""

from __future__ import annotations

import math
from typing import Annotated, ClassVar, Literal

import torch
from pydantic import Field
from torch import nn
from torch.distributions import Normal

from mtvae.base import StrictModel
from mtvae.data.dataset import DataInfo
from mtvae.data.loader import Batch
from mtvae.errors import UserError, unknown_name
from mtvae.latent.gaussian import GaussianLatent, free_bits_kl, kl_standard_normal
from mtvae.latent.priors import ConditionalPrior
from mtvae.models.output import Output
from mtvae.models.registry import NAME_DESCRIPTION
from mtvae.models.vae import GaussianVAEOptions
from mtvae.nn.bodies import Decoder, Encoder
from mtvae.nn.heads import TaskHead, reverse_gradient
from mtvae.objectives.likelihoods import build_likelihood
from mtvae.objectives.schedules import linear_warmup
from mtvae.objectives.task_losses import (
    RegressionLoss,
    TargetScaling,
    class_probabilities,
    head_size,
    masked_task_loss,
    predict,
    task_loss_terms,
)
from mtvae.objectives.weighting import WeightingConfig


class TaskOptions(StrictModel):
    """Options shared by models with task heads."""

    # Whether the model also reconstructs its input, the term task_scale: auto balances against.
    reconstructs: ClassVar[bool] = True

    tasks: list[str] | None = Field(None, description="tasks to learn (None: all the data's)")
    task_weights: dict[str, float] = Field(
        default_factory=dict, description="per-task weight, on top of model.task_scale"
    )
    task_scale: Annotated[float, Field(ge=0)] | Literal["auto"] = Field(
        "auto",
        description="factor on every task loss; auto: (values per image) / 10 for models that "
        "reconstruct (a reconstruction sums over pixels, a task loss is ~1 nat), 1 otherwise",
    )
    # MSE on z-scored targets stays on the scale of a cross-entropy; a Gaussian NLL with a
    # learned variance sharpens its variance as the fit improves, and its gradients (residual
    # over variance) then outgrow the other tasks' (Seitzer et al. 2022): it halved the digit
    # accuracy of an MT-VAE learning digit and thickness together (docs/guides/models.md, "Balanced by default").
    regression_loss: RegressionLoss = Field(
        "mse", description="mse (on z-scored targets) or gaussian_nll (learned variance)"
    )
    head_hidden: list[int] = Field(default_factory=lambda: [64], description="head MLP sizes")
    weighting: WeightingConfig = Field(
        default_factory=WeightingConfig, description="how the loss terms are weighted against "
        "each other during training (model.weighting.*)"
    )


class MTVAEConfig(GaussianVAEOptions, TaskOptions):
    """Options of the multitask VAE."""

    name: Literal["mtvae"] = Field("mtvae", description=NAME_DESCRIPTION)
    layout: Literal["shared", "partitioned"] = Field(
        "partitioned", description="shared: one latent block that every head reads; "
        "partitioned: a shared block plus one block of task_dim dimensions per task"
    )
    task_dim: int = Field(2, ge=1, description="latent dims per task block (partitioned)")
    heads_read_shared: bool = Field(
        True, description="heads also read the shared block (partitioned layout)"
    )
    head_blocks: dict[str, list[str]] = Field(
        default_factory=dict,
        description="per task, the blocks its head reads, e.g. {shape: [shape, scale]} "
        "(partitioned; overrides the default of its own block)",
    )
    prior: Literal["standard", "conditional"] = Field(
        "standard", description="standard: N(0, I) for every block; conditional: each task "
        "block's prior p(z_t | y_t) depends on its label (partitioned layout)"
    )
    inhibition: bool = Field(False, description="adversaries push task t out of other blocks")
    inhibition_weight: float = Field(1.0, ge=0, description="gradient-reversal scale")
    head_input: Literal["mean", "sample"] = Field("mean", description="what heads read")
    detach: bool = Field(False, description="stop task gradients at the latent (two-stage)")


def resolved_task_scale(options: TaskOptions, image_shape) -> float:
    """The number ``model.task_scale: auto`` stands for: D / 10 for D values per image.

    A Bernoulli or Gaussian reconstruction is a sum over the D values of an image, about 0.1
    to 0.2 nats each (hundreds of nats for 32x32), while a task loss is one or two nats, so
    with weight 1 the shared encoder barely serves the tasks. D / 10 puts both on comparable
    scales; the measurements behind the choice are in docs/guides/models.md ("Balanced by default").
    Models that do not reconstruct (``supervised``) have nothing to balance: 1.
    """
    if options.task_scale != "auto":
        return float(options.task_scale)
    return balanced_task_scale(image_shape) if options.reconstructs else 1.0


def balanced_task_scale(image_shape) -> float:
    """D / 10 for D values per image: the weight that puts a task loss (about one nat) on the
    scale of a reconstruction summed over the image (0.1 to 0.2 nats per value). Every model
    that adds task losses to a reconstruction defaults to it (the MT-VAE's ``task_scale``,
    M2's ``alpha``), so the baselines get the same balance as the MT-VAE."""
    return math.prod(image_shape) / 10


def effective_task_weights(options: TaskOptions, tasks, image_shape) -> dict[str, float]:
    """Weight per task: ``task_scale`` times the task's entry in ``task_weights`` (default 1)."""
    scale = resolved_task_scale(options, image_shape)
    return {t: scale * options.task_weights.get(t, 1.0) for t in tasks}


def select_tasks(names: list[str] | None, info: DataInfo) -> dict:
    """The dataset's task specs named in ``names`` (all of them when None), in order."""
    if names is None:
        return dict(info.tasks)
    if not names:
        raise UserError("model.tasks is empty: name at least one task, e.g. [shape].")
    for name in names:
        if name not in info.tasks:
            raise unknown_name("task", name, info.tasks)
    return {name: info.tasks[name] for name in names}


def block_layout(config: MTVAEConfig, tasks: list[str]) -> dict[str, slice]:
    """Slices of the latent vector per block: ``shared`` and (partitioned) one per task."""
    if config.layout == "shared":
        return {"shared": slice(0, config.latent_dim)}
    shared = config.latent_dim - config.task_dim * len(tasks)
    if shared < 0:
        raise UserError(
            f"model.latent_dim={config.latent_dim} is too small for {len(tasks)} task blocks of "
            f"model.task_dim={config.task_dim}; raise latent_dim or lower task_dim."
        )
    blocks = {"shared": slice(0, shared)} if shared else {}
    for i, task in enumerate(tasks):
        start = shared + i * config.task_dim
        blocks[task] = slice(start, start + config.task_dim)
    return blocks


class MTVAE(nn.Module):
    """Encoder -> blocked Gaussian latent -> decoder, plus task heads (and priors/adversaries)."""

    def __init__(self, config: MTVAEConfig, data_info: DataInfo) -> None:
        super().__init__()
        self.config = config
        self.image_shape = tuple(data_info.image_shape)
        self.tasks = select_tasks(config.tasks, data_info)
        self._check_options()
        self.blocks = block_layout(config, list(self.tasks))
        self.encoder = Encoder(config.encoder, self.image_shape)
        self.latent = GaussianLatent(self.encoder.out_features, config.latent_dim)
        self.decoder = Decoder(config.encoder, self.image_shape, config.latent_dim)
        self.likelihood = build_likelihood(config.likelihood, self.image_shape[0], config.sigma)
        self.scaling = TargetScaling(self.tasks, data_info.target_stats)
        self.task_weights = effective_task_weights(config, self.tasks, self.image_shape)
        self.head_reads = {t: self._head_slices(t) for t in self.tasks}
        self.heads = nn.ModuleDict({t: self._make_head(t, self.head_reads[t]) for t in self.tasks})
        self.priors = nn.ModuleDict(
            {t: ConditionalPrior(spec, config.task_dim) for t, spec in self.tasks.items()}
            if config.prior == "conditional"
            else {}
        )
        self.adversaries = nn.ModuleDict(
            {t: self._make_head(t, self._other_slices(t)) for t in self.tasks}
            if config.inhibition
            else {}
        )

    def _check_options(self) -> None:
        cfg = self.config
        unknown = set(cfg.task_weights) - set(self.tasks)
        if unknown:
            raise unknown_name("task in model.task_weights", sorted(unknown)[0], self.tasks)
        for task, names in cfg.head_blocks.items():
            if task not in self.tasks:
                raise unknown_name("task in model.head_blocks", task, self.tasks)
            allowed = ["shared", *self.tasks]
            for name in names:
                if name not in allowed:
                    raise unknown_name(f"block in model.head_blocks.{task}", name, allowed)
            if not names:
                raise UserError(f"model.head_blocks.{task} is empty: name at least one block.")
        if cfg.layout == "shared" and (cfg.prior == "conditional" or cfg.inhibition
                                       or cfg.head_blocks):
            raise UserError(
                "model.prior=conditional, model.inhibition and model.head_blocks need task "
                "blocks: set model.layout=partitioned."
            )

    def _head_slices(self, task: str) -> list[slice]:
        if self.config.layout == "shared":
            return [self.blocks["shared"]]
        if task in self.config.head_blocks:
            names = self.config.head_blocks[task]
            if "shared" in names and "shared" not in self.blocks:
                raise UserError(
                    f"model.head_blocks.{task} reads the shared block, but the task blocks use "
                    "all of model.latent_dim; raise latent_dim to leave a shared block."
                )
            return [self.blocks[name] for name in names]
        reads = [self.blocks[task]]
        if self.config.heads_read_shared and "shared" in self.blocks:
            reads.insert(0, self.blocks["shared"])
        return reads

    def _other_slices(self, task: str) -> list[slice]:
        return [s for name, s in self.blocks.items() if name != task]

    def _make_head(self, task: str, reads: list[slice]) -> TaskHead:
        width = sum(s.stop - s.start for s in reads)
        out = head_size(self.tasks[task], self.config.regression_loss)
        return TaskHead(width, out, self.config.head_hidden, self.config.encoder.activation)

    # --- inference and generation -----------------------------------------------------------
    def encode(self, x: torch.Tensor) -> Normal:
        """q(z|x) over the whole latent vector (all blocks)."""
        return self.latent(self.encoder(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Likelihood parameters for latents ``(B, Z)``."""
        return self.decoder(z)

    def task_outputs(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw head outputs for head inputs ``h`` ``(B, Z)``."""
        return {t: self.heads[t](_gather(h, self.head_reads[t])) for t in self.tasks}

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Point predictions per task from the posterior mean."""
        outputs = self.task_outputs(self.encode(x).loc)
        return {
            t: self.scaling.unstandardize(t, predict(self.tasks[t], out))
            for t, out in outputs.items()
        }

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Mean reconstruction from the posterior mean."""
        return self.likelihood.mean(self.decode(self.encode(x).loc))

    @torch.no_grad()
    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        condition: dict[str, float] | None = None,
    ) -> torch.Tensor:
        """Mean images from prior draws; ``condition`` fixes labels of conditional-prior tasks."""
        z = self.sample_latent(n, generator, condition)
        return self.likelihood.mean(self.decode(z))

    @property
    def conditional_tasks(self) -> list[str]:
        """Tasks with a label-conditional prior (``model.prior=conditional``), which
        ``sample(condition=...)`` and ``intervene`` take a value of."""
        return list(self.priors)

    def sample_latent(self, n, generator=None, condition=None) -> torch.Tensor:
        """Prior draws ``(n, Z)``: N(0, I) blocks, conditional blocks given (drawn) labels."""
        condition = dict(condition or {})
        self._check_condition(condition)
        device = next(self.parameters()).device
        z = torch.randn(n, self.config.latent_dim, generator=generator).to(device)
        for task, prior in self.priors.items():
            if task in condition:
                value = self.scaling.standardize_value(task, condition[task])
                y = torch.full((n,), value, device=device)
            else:
                y = prior.sample_labels(n, generator)
            loc, scale = prior.params(y)
            eps = torch.randn(loc.shape, generator=generator).to(device)
            z[:, self.blocks[task]] = loc + scale * eps
        return z

    def _check_condition(self, condition: dict) -> None:
        for task, value in condition.items():
            if task not in self.tasks:
                raise unknown_name("task to condition on", task, self.tasks)
            if task not in self.priors:
                raise UserError(
                    f"Cannot condition on '{task}': this model's prior is standard. Train with "
                    "model.prior=conditional (and layout partitioned) to sample conditionally."
                )
            spec = self.tasks[task]
            n = spec.n_values
            if spec.discrete and value not in range(n):
                raise UserError(f"'{task}={value}' is not a class of '{task}': use 0..{n - 1}.")

    @torch.no_grad()
    def intervene(self, x: torch.Tensor, task: str, value: float) -> torch.Tensor:
        """Encode ``x``, set block ``task`` to the conditional prior's mean for ``value``, decode."""
        self._check_condition({task: value})
        z = self.encode(x).loc.clone()
        y = torch.full((len(x),), self.scaling.standardize_value(task, value), device=z.device)
        z[:, self.blocks[task]] = self.priors[task].params(y)[0]
        return self.likelihood.mean(self.decode(z))

    # --- objectives -------------------------------------------------------------------------
    def forward(self, batch: Batch, step: int | None = None) -> Output:
        """Training objective on a batch; ``step`` drives the KL warm-up (None: full beta)."""
        q = self.encode(batch.x)
        z = q.rsample()
        recon = self.likelihood.loss(self.decode(z), batch.x).mean()
        h = q.loc if self.config.head_input == "mean" else z
        if self.config.detach:
            h = h.detach()
        outputs = self.task_outputs(h)
        targets = self.scaling.standardize(batch.targets)  # heads and priors work in z-scores
        kl_dim = self._kl_per_dim(q, targets, batch.masks, outputs)
        beta = self.config.beta * linear_warmup(step, self.config.kl_warmup_steps)
        kl = free_bits_kl(kl_dim, self.config.free_bits) if self.training else kl_dim.sum(1).mean()
        losses = {"recon": recon, "kl": beta * kl}
        terms = {"recon": recon.detach(), "kl": kl_dim.sum(1).mean().detach(), "beta": beta}
        task_losses, task_terms = task_loss_terms(
            self.tasks, outputs, targets, batch.masks, self.task_weights
        )
        losses.update(task_losses)
        terms.update(task_terms)
        losses.update(self._adversary_losses(h, targets, batch.masks))
        if self.training:
            for task, prior in self.priors.items():
                prior.observe(targets[task], batch.masks[task])
        return Output(loss=sum(losses.values()), losses=losses, terms=terms, latents={"z": q.loc})

    def _kl_per_dim(self, q: Normal, targets: dict, masks: dict, outputs: dict) -> torch.Tensor:
        kl = kl_standard_normal(q)  # (B, Z); conditional blocks are replaced below
        if not self.priors:
            return kl
        parts = []
        for name, s in self.blocks.items():
            if name not in self.priors:
                parts.append(kl[:, s])
                continue
            q_t = Normal(q.loc[:, s], q.scale[:, s], validate_args=False)
            probs = class_probabilities(self.tasks[name], outputs[name])
            parts.append(self.priors[name].kl(q_t, targets[name], masks[name], probs))
        return torch.cat(parts, dim=1)

    def _adversary_losses(self, h: torch.Tensor, targets: dict, masks: dict) -> dict:
        losses = {}
        scale = self.config.inhibition_weight
        for task, adversary in self.adversaries.items():
            others = reverse_gradient(_gather(h, self._other_slices(task)), scale)
            out = adversary(others)
            losses[f"adv/{task}"] = masked_task_loss(self.tasks[task], out, targets[task], masks[task])
        return losses

    def elbo(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-image ELBO and KL ``(B,)`` without labels (conditional blocks: marginal prior)."""
        q = self.encode(x)
        z = q.rsample()
        log_px = self.likelihood.log_prob(self.decode(z), x)
        kl = q.log_prob(z).sum(-1) - self.log_prior(z)  # single-sample KL estimate
        if not self.priors:
            kl = kl_standard_normal(q).sum(1)  # analytic when the prior allows it
        return log_px - kl, kl

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) ``(...,)``: standard normal blocks plus conditional blocks' marginals."""
        standard = Normal(0.0, 1.0).log_prob(z)
        total = torch.zeros(z.shape[:-1], device=z.device)
        for name, s in self.blocks.items():
            if name in self.priors:
                total = total + self.priors[name].log_marginal(z[..., s])
            else:
                total = total + standard[..., s].sum(-1)
        return total

    def log_weights(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Importance log-weights ``log p(x, z_i) - log q(z_i|x)`` for ``k`` draws, ``(k, B)``."""
        q = self.encode(x)
        z = q.rsample((k,))
        params = self.decode(z.flatten(0, 1))
        log_px = self.likelihood.log_prob(params, x.expand(k, *x.shape).flatten(0, 1)).view(k, -1)
        return log_px + self.log_prior(z) - q.log_prob(z).sum(-1)

    def loss_names(self) -> list[str]:
        """Names of the loss components ``forward`` returns, in order."""
        return ["recon", "kl", *(f"task/{t}" for t in self.tasks), *(f"adv/{t}" for t in self.adversaries)]

    def shared_parameters(self) -> list[nn.Parameter]:
        """Parameters every task's gradient passes through (for gradient-based weighting)."""
        return [*self.encoder.parameters(), *self.latent.parameters()]


def _gather(h: torch.Tensor, slices: list[slice]) -> torch.Tensor:
    if len(slices) == 1:
        return h[:, slices[0]]
    return torch.cat([h[:, s] for s in slices], dim=1)

