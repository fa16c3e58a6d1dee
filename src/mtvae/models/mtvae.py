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

from typing import Literal

import torch
from pydantic import Field
from torch import nn
from torch.distributions import Normal

from mtvae.data.dataset import DataInfo
from mtvae.data.loader import Batch
from mtvae.errors import UserError, unknown_name
from mtvae.latent.gaussian import kl_standard_normal
from mtvae.latent.priors import ConditionalPrior
from mtvae.models.gaussian_core import GaussianVAE, GaussianVAEOptions
from mtvae.models.output import Output
from mtvae.models.registry import NAME_DESCRIPTION
from mtvae.models.task_heads import (
    TaskHeads,
    TaskOptions,
    TaskWeightOption,
    gather,
    task_setup,
)
from mtvae.nn.heads import reverse_gradient
from mtvae.objectives.task_losses import ADVERSARY_PREFIX, masked_task_loss, task_loss_terms


class MTVAEConfig(GaussianVAEOptions, TaskOptions, TaskWeightOption):
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

    def task_capacity_problem(self, n_tasks: int) -> str | None:
        """A partitioned latent gives each task a block of ``task_dim`` dimensions within
        ``latent_dim`` (the shared block is what is left, possibly nothing)."""
        if self.layout == "shared" or self.task_dim * n_tasks <= self.latent_dim:
            return None
        return (f"model.latent_dim={self.latent_dim} holds at most "
                f"{self.latent_dim // self.task_dim} task blocks of model.task_dim="
                f"{self.task_dim}, not {n_tasks}; raise model.latent_dim to at least "
                f"{self.task_dim * n_tasks} or lower model.task_dim")


def check_options(cfg: MTVAEConfig, tasks: dict) -> None:
    """Reject task weights, head blocks and prior/inhibition settings that name no task or
    block of this model, or that need task blocks the layout does not have."""
    unknown = set(cfg.task_weights) - set(tasks)
    if unknown:
        raise unknown_name("task in model.task_weights", sorted(unknown)[0], tasks)
    for task, names in cfg.head_blocks.items():
        if task not in tasks:
            raise unknown_name("task in model.head_blocks", task, tasks)
        allowed = ["shared", *tasks]
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


def block_layout(config: MTVAEConfig, tasks: list[str]) -> dict[str, slice]:
    """Slices of the latent vector per block: ``shared`` and (partitioned) one per task."""
    if config.layout == "shared":
        return {"shared": slice(0, config.latent_dim)}
    problem = config.task_capacity_problem(len(tasks))
    if problem:
        raise UserError(f"The MT-VAE cannot learn its {len(tasks)} tasks: {problem}.")
    shared = config.latent_dim - config.task_dim * len(tasks)
    blocks = {"shared": slice(0, shared)} if shared else {}
    for i, task in enumerate(tasks):
        start = shared + i * config.task_dim
        blocks[task] = slice(start, start + config.task_dim)
    return blocks


class MTVAE(GaussianVAE):
    """The Gaussian core with a blocked latent, plus task heads (and priors/adversaries)."""

    def __init__(self, config: MTVAEConfig, data_info: DataInfo) -> None:
        tasks, scaling, weights = task_setup(config, data_info)
        check_options(config, tasks)  # before any layer is built, so bad options fail fast
        blocks = block_layout(config, list(tasks))
        super().__init__(config, data_info.image_shape)
        self.blocks, self.tasks, self.scaling, self.task_weights = blocks, tasks, scaling, weights
        self.head_reads = {t: self._head_slices(t) for t in self.tasks}
        activation = config.encoder.activation
        self.heads = TaskHeads(self.tasks, self.head_reads, config, activation)
        self.priors = nn.ModuleDict(
            {t: ConditionalPrior(spec, config.task_dim) for t, spec in self.tasks.items()}
            if config.prior == "conditional"
            else {}
        )
        others = {t: self._other_slices(t) for t in self.tasks} if config.inhibition else {}
        self.adversaries = TaskHeads(
            {t: self.tasks[t] for t in others}, others, config, activation
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

    @property
    def standard_prior(self) -> bool:
        """N(0, I) everywhere unless some task block has a label-conditional prior."""
        return not self.priors

    # --- inference and generation -----------------------------------------------------------
    def task_outputs(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw head outputs for head inputs ``h`` ``(B, Z)``."""
        return self.heads(h)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Point predictions per task from the posterior mean."""
        return self.heads.predictions(self.task_outputs(self.encode(x).loc), self.scaling)

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
        z = super().sample_latent(n, generator)
        device = z.device
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
        z, recon = self.reconstruction_term(q, batch.x)
        h = q.loc if self.config.head_input == "mean" else z
        if self.config.detach:
            h = h.detach()
        outputs = self.task_outputs(h)
        targets = self.scaling.standardize(batch.targets)  # heads and priors work in z-scores
        kl_losses, kl_terms = self.kl_terms(self._kl_per_dim(q, targets, batch.masks, outputs),
                                            step)
        losses = {"recon": recon, **kl_losses}
        terms = {"recon": recon.detach(), **kl_terms}
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
            probs = self.tasks[name].task_kind.probabilities(outputs[name])
            parts.append(self.priors[name].kl(q_t, targets[name], masks[name], probs))
        return torch.cat(parts, dim=1)

    def _adversary_losses(self, h: torch.Tensor, targets: dict, masks: dict) -> dict:
        losses = {}
        scale = self.config.inhibition_weight
        for task, adversary in self.adversaries.items():
            others = reverse_gradient(gather(h, self._other_slices(task)), scale)
            out = adversary(others)
            losses[f"{ADVERSARY_PREFIX}{task}"] = masked_task_loss(self.tasks[task], out, targets[task], masks[task])
        return losses

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

    def loss_names(self) -> list[str]:
        """Names of the loss components ``forward`` returns, in order."""
        return ["recon", "kl", *(f"task/{t}" for t in self.tasks), *(f"adv/{t}" for t in self.adversaries)]

    def shared_parameters(self) -> list[nn.Parameter]:
        """Parameters every task's gradient passes through (for gradient-based weighting)."""
        return [*self.encoder.parameters(), *self.latent.parameters()]
