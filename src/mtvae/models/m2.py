"""M2, the semi-supervised VAE of Kingma, Rezende, Mohamed & Welling (2014), "Semi-Supervised
Learning with Deep Generative Models".

Generative model ``p(y) p(z) p(x | y, z)`` with ``y`` one discrete task (uniform ``p(y)``)
and ``z ~ N(0, I)``; inference ``q(y | x)`` (a classifier with its own encoder body, as in the
paper) and ``q(z | x, y)`` (the encoder's features and the one-hot ``y``). Per sample:

- labelled ``(x, y)``: ``-L(x, y) = -E_q(z|x,y)[log p(x|y,z)] + beta * KL(q(z|x,y) || p(z))
  - log p(y)``;
- unlabelled ``x``, ``y`` marginalised exactly: ``-U(x) = sum_y q(y|x) (-L(x, y)) - H(q(y|x))``
  (every class is decoded, so an unlabelled sample costs K decoder passes);
- plus ``alpha`` times the cross-entropy of ``q(y|x)`` on the labelled samples.

**alpha.** The paper maximises ``J + alpha * E_labelled[log q(y|x)]`` with ``J`` a *sum* of
per-sample bounds over the N training samples and ``alpha = 0.1 * N``. Dividing by N gives a
per-batch objective, a *mean* of per-sample bounds, plus ``0.1 *`` the mean cross-entropy over
the batch's labelled samples: ``model.alpha: 0.1`` is that literal reading. With it the
unlabelled bound (hundreds of nats) drowns the cross-entropy (a nat or two), q(y|x) learns to
pick whichever class reconstructs best, and at 300 of 1,500 labels (mnist, conv body, 5 epochs)
M2 reached 0.24 digit accuracy where the MT-VAE reaches 0.8; with ``alpha`` = D / 10 (78.4) it
reached 0.81. Reimplementations weigh the term per sample like that (Pyro's SS-VAE example,
scvi-tools' ``classification_ratio=50``), so ``model.alpha: auto`` (the default) is D / 10 for
D values per image: the same balance as the MT-VAE's ``task_scale: auto``, so the baseline gets
the care our model gets. It keeps its meaning when ``train.labelled_per_batch`` shows labelled
samples more often (the mean is over whichever labelled samples a batch holds).

The loss components (``recon``, ``kl``, ``kl_y``, ``task/<task>``) add up to the loss;
``kl_y`` is ``-log p(y) = log K`` for a labelled sample and ``KL(q(y|x) || p(y))`` for an
unlabelled one (``log K - H``), so ``recon + kl + kl_y`` is the negative bound.

**Binary tasks.** A binary task (e.g. a CelebA attribute) is y with K = 2 classes, 0 and 1:
the task kind's :meth:`~mtvae.data.task_kinds.TaskKind.as_categorical` gives the softmax
cross-entropy over the two classes, so predictions, ``condition`` and ``intervene`` take the
0/1 values the data holds, and the task's metrics are the binary task's.

For evaluation the model reads as one latent vector ``[y part (K), z (D)]``: ``encode(x)`` has
mean ``[q(y|x), mu(x, q(y|x))]`` (the class probabilities, fed to ``q(z|x, y)`` in place of a
one-hot ``y``; the y part has scale 0) and ``decode`` reads that vector, so probes and
disentanglement see the classifier's belief next to the style code, and ``blocks`` name the
two parts (leakage: how much of the task ``z`` still holds). ``predict`` is ``argmax q(y|x)``;
``elbo`` is the unlabelled bound ``U(x)``; ``log_weights`` draws ``y ~ q(y|x)`` and
``z ~ q(z|x, y)`` as the importance proposal for ``log p(x) = log sum_y p(y) int p(x|y,z)
p(z) dz``; ``sample`` draws ``y`` from ``p(y)`` or fixes it (``condition``), and
``intervene`` keeps an image's style ``z`` and sets its class (the paper's analogies).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn
from torch.distributions import Normal

from mtvae.data.dataset import DataInfo
from mtvae.data.loader import Batch
from mtvae.errors import UserError, unknown_name
from mtvae.latent.gaussian import GaussianLatent, kl_standard_normal
from mtvae.models.gaussian_core import GaussianVAEOptions, kl_terms
from mtvae.models.output import Output
from mtvae.models.registry import NAME_DESCRIPTION
from mtvae.models.task_heads import balanced_task_scale, select_tasks
from mtvae.nn.bodies import Decoder, Encoder
from mtvae.nn.heads import TaskHead
from mtvae.objectives.likelihoods import build_likelihood
from mtvae.objectives.task_losses import masked_task_loss


class M2Config(GaussianVAEOptions):
    """Options of M2 (``latent_dim`` is the width of z; the class is a separate part)."""

    name: Literal["m2"] = Field("m2", description=NAME_DESCRIPTION)
    tasks: list[str] | None = Field(
        None,
        description="the task y is: the first categorical task listed, else the first binary "
        "one (None: the data's tasks); other tasks listed are not learned, only probed",
    )
    alpha: Annotated[float, Field(ge=0)] | Literal["auto"] = Field(
        "auto",
        description="weight of the labelled cross-entropy of q(y|x) per sample; auto: "
        "(values per image) / 10, the MT-VAE's task_scale: auto (0.1 is the paper's "
        "alpha = 0.1 N read literally on a mean over samples)",
    )
    head_hidden: list[int] = Field(
        default_factory=lambda: [64], description="hidden sizes of the classifier head q(y|x)"
    )

    def resolve_auto(self, image_shape: tuple[int, ...]) -> None:
        """``alpha: auto`` becomes the number it stands for (:func:`resolved_alpha`)."""
        super().resolve_auto(image_shape)
        self.alpha = resolved_alpha(self, image_shape)


def resolved_alpha(config: M2Config, image_shape) -> float:
    """The number ``model.alpha: auto`` stands for: D / 10, as for the MT-VAE's task scale."""
    return balanced_task_scale(image_shape) if config.alpha == "auto" else float(config.alpha)


def m2_task(names: list[str] | None, info: DataInfo) -> str:
    """The one discrete task M2 models: the first task of ``names`` (in order; all of the
    data's when None) whose kind declares its classes (categorical), else the first other
    discrete one (binary, read as 2 classes). The others are only probed, so M2 runs in
    multitask studies (e.g. beside a random control task) with the same ``model.tasks`` as the
    MT-VAE, and on data whose labels are all binary (CelebA's attributes)."""
    tasks = select_tasks(names, info)
    discrete = [t for t, spec in tasks.items() if spec.task_kind.as_categorical() is not None]
    if discrete:  # a stable sort: declared classes first, each group in the given order
        return sorted(discrete, key=lambda t: not tasks[t].task_kind.needs_classes)[0]
    where = f"model.tasks={names}" if names is not None else "the data"
    raise UserError(
        f"m2 models one categorical or binary task, and {where} has none (kinds: "
        f"{', '.join(f'{t}={s.kind}' for t, s in tasks.items())}); name a categorical or "
        "binary task in model.tasks, or use another model."
    )


class M2(nn.Module):
    """q(y|x), q(z|x,y), p(x|y,z) with y marginalised for unlabelled samples."""

    def __init__(self, config: M2Config, data_info: DataInfo) -> None:
        super().__init__()
        self.config = config
        self.image_shape = tuple(data_info.image_shape)
        self.task = m2_task(config.tasks, data_info)
        self.alpha = resolved_alpha(config, self.image_shape)
        spec = data_info.tasks[self.task]
        self.tasks = {self.task: spec}  # the data's own kind: metrics and figures read it
        classes = spec.task_kind.as_categorical()  # q(y|x) is a softmax over these classes
        self.class_spec = replace(spec, kind=classes.name, n_classes=classes.n_classes)
        self.n_classes = int(classes.n_values)
        k, d = self.n_classes, config.latent_dim
        self.blocks = {"y": slice(0, k), "z": slice(k, k + d)}
        self.classifier_body = Encoder(config.encoder, self.image_shape)
        self.classifier = TaskHead(self.classifier_body.out_features, k, config.head_hidden,
                                   config.encoder.activation)
        self.encoder = Encoder(config.encoder, self.image_shape)
        self.latent = GaussianLatent(self.encoder.out_features + k, d)
        self.decoder = Decoder(config.encoder, self.image_shape, k + d)
        self.likelihood = build_likelihood(config.likelihood, self.image_shape[0], config.sigma)

    @property
    def conditional_tasks(self) -> list[str]:
        """Tasks ``sample(condition=...)`` and ``intervene`` take a class of."""
        return [self.task]

    # --- inference ------------------------------------------------------------------------
    def class_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of q(y|x) ``(B, K)``."""
        return self.classifier(self.classifier_body(x))

    def posterior_z(self, features: torch.Tensor, y: torch.Tensor) -> Normal:
        """q(z|x, y) from encoder features ``(B, F)`` and one-hot (or soft) ``y`` ``(B, K)``."""
        return self.latent(torch.cat([features, y], dim=1))

    def encode(self, x: torch.Tensor) -> Normal:
        """The joint code ``[q(y|x), q(z|x, q(y|x))]`` ``(B, K + D)``; the y part has scale 0."""
        probs = torch.softmax(self.class_logits(x), dim=1)
        q = self.posterior_z(self.encoder(x), probs)
        return Normal(torch.cat([probs, q.loc], 1),
                      torch.cat([torch.zeros_like(probs), q.scale], 1), validate_args=False)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``argmax q(y|x)``."""
        return {self.task: self.class_logits(x).argmax(1)}

    # --- generation -----------------------------------------------------------------------
    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """Likelihood parameters for codes ``[y (K), z (D)]`` ``(B, K + D)``."""
        return self.decoder(code)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Mean image decoded from the mean code (class probabilities and style mean)."""
        return self.likelihood.mean(self.decode(self.encode(x).loc))

    @torch.no_grad()
    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        condition: dict[str, float] | None = None,
    ) -> torch.Tensor:
        """Mean images for ``y ~ p(y)`` (or the class ``condition`` fixes) and ``z ~ N(0, I)``."""
        device = next(self.parameters()).device
        value = self._condition_class(condition or {})
        if value is None:
            y = torch.randint(self.n_classes, (n,), generator=generator)
        else:
            y = torch.full((n,), value, dtype=torch.long)
        z = torch.randn(n, self.config.latent_dim, generator=generator)
        code = torch.cat([F.one_hot(y, self.n_classes).float(), z], 1).to(device)
        return self.likelihood.mean(self.decode(code))

    @torch.no_grad()
    def intervene(self, x: torch.Tensor, task: str, value: float) -> torch.Tensor:
        """Keep each image's style (the z mean) and decode it as class ``value``."""
        value = self._condition_class({task: value})
        code = self.encode(x).loc
        code[:, self.blocks["y"]] = F.one_hot(
            torch.full((len(x),), value, dtype=torch.long, device=code.device), self.n_classes
        ).to(code.dtype)
        return self.likelihood.mean(self.decode(code))

    def _condition_class(self, condition: dict[str, float]) -> int | None:
        for task, value in condition.items():
            if task != self.task:
                raise unknown_name("task to condition on", task, [self.task])
            if value not in range(self.n_classes):
                raise UserError(
                    f"'{task}={value}' is not a class of '{task}': use 0..{self.n_classes - 1}."
                )
            return int(value)
        return None

    # --- objectives -----------------------------------------------------------------------
    def _rows(self, x: torch.Tensor, features: torch.Tensor, index: torch.Tensor,
              classes: torch.Tensor, training: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-row ``-log p(x|y,z)`` (the training loss when ``training``) ``(R,)`` and KL to
        p(z) per dim ``(R, D)`` for sample ``index[r]`` given class ``classes[r]``."""
        y = F.one_hot(classes, self.n_classes).to(features.dtype)
        q = self.posterior_z(features[index], y)
        params = self.decode(torch.cat([y, q.rsample()], 1))
        target = x[index]
        nll = self.likelihood.loss(params, target) if training else -self.likelihood.log_prob(
            params, target)
        return nll, kl_standard_normal(q)

    def bound_terms(
        self, x: torch.Tensor, y: torch.Tensor, labelled: torch.Tensor, training: bool = True
    ) -> dict[str, torch.Tensor]:
        """Per-sample pieces of the negative bound: ``recon`` ``(B,)``, ``kl_dim`` ``(B, D)``,
        ``kl_y`` ``(B,)``, and the classifier's ``logits`` ``(B, K)``.

        A labelled sample uses its own class; an unlabelled one every class, weighted by
        q(y|x). Labels where ``labelled`` is False are never read.
        """
        logits = self.class_logits(x)
        log_probs = torch.log_softmax(logits, dim=1)
        features = self.encoder(x)
        k, b = self.n_classes, len(x)
        lab = torch.nonzero(labelled).flatten()
        unl = torch.nonzero(~labelled).flatten()
        index = torch.cat([lab, unl.repeat_interleave(k)])
        classes = torch.cat([y[lab].long(), torch.arange(k, device=x.device).repeat(len(unl))])
        weights = torch.cat([torch.ones(len(lab), device=x.device),
                             log_probs[unl].exp().flatten()]).to(features.dtype)
        nll, kl = self._rows(x, features, index, classes, training)
        recon = torch.zeros(b, dtype=nll.dtype, device=x.device).index_add(0, index, weights * nll)
        kl_dim = torch.zeros(b, kl.shape[1], dtype=kl.dtype, device=x.device).index_add(
            0, index, weights[:, None] * kl)
        neg_entropy = (log_probs.exp() * log_probs).sum(1)
        kl_y = math.log(k) + torch.where(labelled, torch.zeros_like(neg_entropy), neg_entropy)
        return {"recon": recon, "kl_dim": kl_dim, "kl_y": kl_y, "logits": logits}

    def forward(self, batch: Batch, step: int | None = None) -> Output:
        """The M2 objective on a batch; ``step`` drives the KL warm-up (None: full beta)."""
        cfg, task = self.config, self.task
        labelled, target = batch.masks[task], batch.targets[task]
        parts = self.bound_terms(batch.x, target, labelled, training=True)
        kl_losses, kl_logged = kl_terms(cfg, parts["kl_dim"], step, self.training)
        ce = masked_task_loss(self.class_spec, parts["logits"], target, labelled)
        recon, kl_y = parts["recon"].mean(), parts["kl_y"].mean()
        losses = {"recon": recon, **kl_losses, "kl_y": kl_y, f"task/{task}": self.alpha * ce}
        terms = {"recon": recon.detach(), **kl_logged, "kl_y": kl_y.detach(),
                 f"task/{task}": ce.detach()}
        return Output(loss=sum(losses.values()), losses=losses, terms=terms)

    def elbo(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-image unlabelled bound ``U(x)`` and its KL (z and y parts) ``(B,)`` (beta = 1)."""
        unlabelled = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        dummy = torch.zeros(len(x), dtype=torch.long, device=x.device)
        parts = self.bound_terms(x, dummy, unlabelled, training=False)
        kl = parts["kl_dim"].sum(1) + parts["kl_y"]
        return -(parts["recon"] + kl), kl

    def log_weights(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Importance log-weights ``log p(x, y_i, z_i) - log q(y_i, z_i | x)`` ``(k, B)``."""
        log_probs = torch.log_softmax(self.class_logits(x), dim=1)  # (B, K)
        y = torch.distributions.Categorical(logits=log_probs).sample((k,))  # (k, B)
        features = self.encoder(x)
        onehot = F.one_hot(y, self.n_classes).to(features.dtype)  # (k, B, K)
        q = self.posterior_z(features.expand(k, *features.shape).flatten(0, 1),
                             onehot.flatten(0, 1))
        z = q.rsample()  # (k * B, D)
        params = self.decode(torch.cat([onehot.flatten(0, 1), z], 1))
        log_px = self.likelihood.log_prob(params, x.expand(k, *x.shape).flatten(0, 1))
        log_pz = Normal(0.0, 1.0).log_prob(z).sum(1)
        log_qz = q.log_prob(z).sum(1)
        log_qy = log_probs.gather(1, y.T).T  # (k, B)
        log_py = -math.log(self.n_classes)
        return (log_px + log_pz - log_qz).view(k, -1) + log_py - log_qy

    def loss_names(self) -> list[str]:
        """Names of the loss components ``forward`` returns, in order."""
        return ["recon", "kl", "kl_y", f"task/{self.task}"]

    def shared_parameters(self) -> list[nn.Parameter]:
        """The classifier's parameters: the task term and (through q(y|x) weighting the
        unlabelled bound) the reconstruction and KL terms all reach them."""
        return [*self.classifier_body.parameters(), *self.classifier.parameters()]
