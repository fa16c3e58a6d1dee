"""The Gaussian VAE: KL and likelihoods against torch.distributions, objective bookkeeping,
train/eval invariants, IWAE monotonicity and a known answer (a linear VAE recovers PPCA)."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest
import torch
from torch.distributions import Bernoulli, MultivariateNormal, Normal

from mtvae.data.dataset import DataInfo
from mtvae.data.loader import Batch
from mtvae.data.shapes import load_shapes
from mtvae.evaluate.likelihood import elbo_and_kl, iwae_log_likelihood
from mtvae.latent.gaussian import free_bits_kl, kl_standard_normal
from mtvae.models.vae import VAE, VAEConfig
from mtvae.nn.bodies import BodyConfig
from mtvae.objectives.likelihoods import build_likelihood
from mtvae.objectives.schedules import linear_warmup

MLP = BodyConfig(arch="mlp", hidden=[32])


def make_vae(image_shape=(1, 16, 16), seed: int = 0, **fields) -> VAE:
    torch.manual_seed(seed)
    config = VAEConfig(**({"latent_dim": 4, "encoder": MLP} | fields))
    return VAE(config, DataInfo(image_shape=image_shape, tasks={}))


def batch_of(x: torch.Tensor) -> Batch:
    return Batch(x=x, targets={}, masks={})


def images(n: int = 8, shape=(1, 16, 16), seed: int = 0) -> torch.Tensor:
    return torch.rand(n, *shape, generator=torch.Generator().manual_seed(seed))


# --- KL and likelihoods ---------------------------------------------------------------------
def test_analytic_kl_matches_monte_carlo():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(3, 4, generator=g)
    sigma = 0.3 + 1.5 * torch.rand(3, 4, generator=g)
    q = Normal(mu, sigma)
    z = q.sample((200_000,))  # (S, 3, 4)
    log_ratio = q.log_prob(z) - Normal(0.0, 1.0).log_prob(z)
    estimate, stderr = log_ratio.mean(0), log_ratio.std(0) / math.sqrt(len(z))
    analytic = kl_standard_normal(q)
    assert analytic.shape == mu.shape
    assert ((analytic - estimate).abs() < 5 * stderr + 1e-4).all()
    assert torch.allclose(kl_standard_normal(Normal(torch.zeros(2), torch.ones(2))), torch.zeros(2))


def test_bernoulli_log_prob_matches_torch_distribution():
    g = torch.Generator().manual_seed(1)
    logits = 3 * torch.randn(5, 1, 4, 4, generator=g)
    x = (torch.rand(5, 1, 4, 4, generator=g) > 0.5).float()
    lik = build_likelihood("bernoulli", channels=1)
    expected = Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(lik.log_prob(logits, x), expected, atol=1e-5)
    assert torch.allclose(lik.loss(logits, x), -expected, atol=1e-5)
    assert torch.allclose(lik.mean(logits), torch.sigmoid(logits))


def test_fixed_gaussian_log_prob_matches_normal():
    g = torch.Generator().manual_seed(2)
    mean, x = torch.randn(2, 5, 3, 4, 4, generator=g)
    lik = build_likelihood("gaussian", channels=3, sigma=0.25)
    expected = Normal(mean, 0.25).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(lik.log_prob(mean, x), expected, atol=1e-4)
    assert torch.equal(lik.mean(mean), mean)


def test_mse_is_sum_of_squares_and_a_gaussian_of_variance_half():
    g = torch.Generator().manual_seed(3)
    mean, x = torch.randn(2, 5, 1, 4, 4, generator=g)
    lik = build_likelihood("mse", channels=1)
    assert torch.allclose(lik.loss(mean, x), (mean - x).square().sum((1, 2, 3)))
    expected = Normal(mean, math.sqrt(0.5)).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(lik.log_prob(mean, x), expected, atol=1e-4)


def test_learned_gaussian_uses_per_channel_sigma_and_learns_it():
    g = torch.Generator().manual_seed(4)
    mean, x = torch.randn(2, 5, 2, 3, 3, generator=g)
    lik = build_likelihood("gaussian_learned", channels=2)
    with torch.no_grad():
        lik.log_sigma.copy_(torch.tensor([-1.0, 0.5]))
    sigma = torch.tensor([-1.0, 0.5]).exp().view(1, 2, 1, 1)
    expected = Normal(mean, sigma).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(lik.log_prob(mean, x), expected, atol=1e-4)
    lik.loss(mean, x).sum().backward()
    assert lik.log_sigma.grad is not None and (lik.log_sigma.grad != 0).all()


# --- objective bookkeeping ------------------------------------------------------------------
def test_free_bits_clamps_batch_mean_kl_per_dimension():
    kl = torch.tensor([[0.0, 1.0, 4.0], [0.2, 3.0, 4.0]], requires_grad=True)  # means .1, 2, 4
    assert torch.isclose(free_bits_kl(kl, 0.0), torch.tensor(6.1))
    assert torch.isclose(free_bits_kl(kl, 0.5), torch.tensor(6.5))  # only dim 0 is lifted
    assert torch.isclose(free_bits_kl(kl, 3.0), torch.tensor(10.0))
    free_bits_kl(kl, 3.0).backward()
    # Dimensions under the floor get no gradient: the optimiser gains nothing there.
    assert torch.equal(kl.grad, torch.tensor([[0.0, 0.0, 0.5], [0.0, 0.0, 0.5]]))


def test_free_bits_applies_to_the_training_loss_only():
    model = make_vae(free_bits=100.0)  # far above any real KL: every dimension sits on the floor
    x = images()
    torch.manual_seed(0)
    out = model.train()(batch_of(x))
    assert torch.isclose(out.losses["kl"], torch.tensor(100.0 * 4))
    assert out.terms["kl"] < 100.0  # the logged KL is the true one
    out = model.eval()(batch_of(x))
    assert torch.isclose(out.losses["kl"], out.terms["kl"])


def test_linear_warmup_schedule():
    assert [linear_warmup(s, 4) for s in (0, 1, 2, 4, 9)] == [0.0, 0.25, 0.5, 1.0, 1.0]
    assert linear_warmup(None, 4) == 1.0
    assert linear_warmup(3, 0) == 1.0


def test_kl_warmup_scales_the_kl_term_by_beta_over_steps():
    model = make_vae(beta=2.0, kl_warmup_steps=10).eval()
    x = images()
    for step, beta in [(0, 0.0), (5, 1.0), (10, 2.0), (50, 2.0), (None, 2.0)]:
        out = model(batch_of(x), step=step)
        assert out.terms["beta"] == pytest.approx(beta)
        assert torch.allclose(out.losses["kl"], beta * out.terms["kl"])


@pytest.mark.parametrize(("arch", "size"), [("mlp", 32), ("conv", 32), ("mlp", 64), ("conv", 64)])
def test_forward_output_contract(arch, size):
    body = BodyConfig(arch=arch, channels=[4, 4, 8, 8], hidden=[16])
    model = make_vae(image_shape=(1, size, size), encoder=body)
    x = (images(4, (1, size, size)) > 0.5).float()
    out = model(batch_of(x), step=3)
    assert out.loss.shape == ()
    assert torch.isfinite(out.loss)
    assert torch.allclose(out.loss, sum(out.losses.values()))
    assert set(out.terms) == {"recon", "kl", "beta"}
    assert out.latents["z"].shape == (4, 4)
    assert model.decode(out.latents["z"]).shape == x.shape
    assert model.reconstruct(x).shape == x.shape
    assert model.sample(3).shape == (3, 1, size, size)


def test_conv_body_rejects_an_image_size_it_cannot_halve():
    with pytest.raises(ValueError, match="divisible by 16, got 40x40"):
        make_vae(image_shape=(1, 40, 40), encoder=BodyConfig(arch="conv", padding=0))
    make_vae(image_shape=(1, 40, 40), encoder=BodyConfig(arch="conv"))  # auto pads to 48


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "gaussian_learned", "mse"])
def test_nan_input_gives_a_nan_loss_for_the_trainer_to_report(likelihood):
    # torch.distributions' argument checks would raise a ValueError from deep inside instead.
    model = make_vae(likelihood=likelihood)
    out = model(batch_of(torch.full((2, 1, 16, 16), float("nan"))))
    assert torch.isnan(out.loss)


# --- train and eval steps -------------------------------------------------------------------
def test_a_training_step_changes_every_weight():
    model = make_vae(likelihood="gaussian_learned")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()(batch_of(images())).loss.backward()
    optimizer.step()
    unchanged = [k for k, v in model.state_dict().items() if torch.equal(v, before[k])]
    assert unchanged == []


def test_an_evaluation_pass_changes_no_weight_or_buffer():
    model = make_vae(likelihood="gaussian_learned")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = images()
    model.eval()
    with torch.no_grad():
        model(batch_of(x))
        model.elbo(x)
        model.log_weights(x, 3)
    model.reconstruct(x)
    model.sample(4)
    after = model.state_dict()
    assert after.keys() == before.keys()
    assert all(torch.equal(after[k], before[k]) for k in before)


# --- IWAE -----------------------------------------------------------------------------------
def test_iwae_bounds_the_elbo_and_tightens_with_k():
    data = load_shapes(n_train=512, n_val=1, n_test=1, image_size=16)
    model = make_vae(latent_dim=4, encoder=BodyConfig(arch="mlp", hidden=[64]))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    x_train = data.train.x
    for step in range(300):
        index = torch.arange(step * 64, (step + 1) * 64) % len(x_train)
        optimizer.zero_grad()
        model(batch_of(x_train[index])).loss.backward()
        optimizer.step()
    model.eval()
    x = x_train[:128]
    torch.manual_seed(0)
    elbo = elbo_and_kl(model, x)[0].mean()
    bounds = []
    for k in (1, 10, 100, 500):
        torch.manual_seed(0)
        bounds.append(float(iwae_log_likelihood(model, x, k=k).mean()))
    assert bounds[0] == pytest.approx(float(elbo), abs=2.0)  # k = 1 is the ELBO, up to noise
    assert all(b >= elbo for b in bounds[1:])
    # In expectation the bound rises with k; 0.1 nats allows for Monte Carlo noise.
    assert all(later >= earlier - 0.1 for earlier, later in pairwise(bounds))
    assert bounds[-1] - bounds[0] > 0.5


# --- known answer: a linear-Gaussian VAE is probabilistic PCA -------------------------------
def ppca_max_log_likelihood(x: torch.Tensor, q: int) -> torch.Tensor:
    """Mean log-likelihood of PPCA's closed-form ML fit (Tipping & Bishop 1999), float64."""
    mu, cov = x.mean(0), torch.cov(x.T, correction=0)
    lam, u = torch.linalg.eigh(cov)  # ascending
    lam, u = lam.flip(0), u.flip(1)
    sigma2 = lam[q:].mean()
    w = u[:, :q] * (lam[:q] - sigma2).sqrt()
    c = w @ w.T + sigma2 * torch.eye(len(mu), dtype=x.dtype)
    return MultivariateNormal(mu, c).log_prob(x).mean()


def test_linear_vae_recovers_the_ppca_maximum_likelihood():
    d, n, sigma = 6, 2000, 0.3
    g = torch.Generator().manual_seed(0)
    w_true, b_true = torch.randn(d, 2, generator=g), torch.randn(d, generator=g)
    x = torch.randn(n, 2, generator=g) @ w_true.T + b_true + sigma * torch.randn(n, d, generator=g)
    config = VAEConfig(
        latent_dim=2, likelihood="gaussian_learned", encoder=BodyConfig(arch="mlp", hidden=[])
    )
    torch.manual_seed(0)
    model = VAE(config, DataInfo(image_shape=(1, 1, d), tasks={}))
    xb = x.view(n, 1, 1, d)
    steps = 400
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-2)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    for _ in range(steps):  # full batch: the negative ELBO of the whole data set
        optimizer.zero_grad()
        model(batch_of(xb)).loss.backward()
        optimizer.step()
        schedule.step()
    model.eval()

    (linear,) = [m for m in model.decoder.modules() if isinstance(m, torch.nn.Linear)]
    w, b = linear.weight.detach().double(), linear.bias.detach().double()  # (d, 2), (d,)
    sigma2 = model.likelihood.log_sigma.detach().double().exp().square()
    cov = w @ w.T + sigma2 * torch.eye(d, dtype=torch.float64)
    exact = MultivariateNormal(b, cov).log_prob(x.double()).mean()
    best = ppca_max_log_likelihood(x.double(), q=2)
    torch.manual_seed(0)
    iwae = iwae_log_likelihood(model, xb, k=2000, max_decoded=1 << 16).double().mean()

    assert exact <= best + 1e-6  # the ML solution is the maximum
    assert abs(iwae - exact) < 0.02  # (a) IWAE estimates the model's own marginal likelihood
    assert best - exact < 0.02  # (b) the ELBO optimum is the PPCA optimum
