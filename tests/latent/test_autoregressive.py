"""Causality, sampling and learning tests for the autoregressive code priors."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError

from mtvae.latent.autoregressive import PixelCNNConfig, PixelCNNPrior, UniformPrior

K = 5


def make(**overrides) -> PixelCNNPrior:
    torch.manual_seed(0)
    return PixelCNNPrior(PixelCNNConfig(**({"num_codes": K, "hidden": 16} | overrides)))


def influence(model: PixelCNNPrior, height: int, width: int, cond=None) -> torch.Tensor:
    """``out[q, p]``: how much the logits at raster position p change when the code at raster
    position q changes, on a random grid. Shape ``(H*W, H*W)``."""
    base = torch.randint(K, (1, height, width), generator=torch.Generator().manual_seed(1))
    grids = base.repeat(height * width + 1, 1, 1)
    for q in range(height * width):  # grid q + 1 has position q changed
        grids[q + 1].view(-1)[q] = (grids[q + 1].view(-1)[q] + 1) % K
    cond = None if cond is None else cond.expand(len(grids))
    with torch.no_grad():
        logits = model(grids, cond).flatten(2)  # (H*W + 1, K, H*W)
    return (logits[1:] - logits[:1]).abs().amax(1)


@pytest.mark.parametrize(
    "overrides",
    [{}, {"first_kernel_size": 3}, {"layers": 2, "kernel_size": 5}, {"n_classes": 3}],
)
def test_logits_depend_on_exactly_the_earlier_positions(overrides):
    model = make(layers=overrides.pop("layers", 5), **overrides)
    cond = torch.tensor([2]) if "n_classes" in overrides else None
    height, width = 4, 4
    change = influence(model, height, width, cond)  # (q, p)
    n = height * width
    later_or_same = torch.ones(n, n).tril().bool()  # q >= p
    assert change[later_or_same].max() < 1e-6, "logits see the current or a later position"
    # no blind spot: on a 4x4 grid every earlier position is within the receptive field,
    # including the ones above and to the right that a plain masked-conv PixelCNN misses
    assert change[~later_or_same].min() > 1e-5, "some earlier position has no influence"


def test_first_position_depends_on_class():
    model = make(n_classes=3)
    codes = torch.zeros(2, 3, 3, dtype=torch.long)
    logits = model(codes, torch.tensor([0, 1]))
    assert not torch.allclose(logits[0, :, 0, 0], logits[1, :, 0, 0])


def test_conditioning_is_required_exactly_when_configured():
    codes = torch.zeros(1, 2, 2, dtype=torch.long)
    with pytest.raises(ValueError, match="needs class conditioning"):
        make(n_classes=3)(codes)
    with pytest.raises(ValueError, match="takes no class conditioning"):
        make()(codes, torch.tensor([0]))


def test_sample_shape_range_and_reproducibility():
    model = make(layers=2)
    a = model.sample(6, (3, 4), generator=torch.Generator().manual_seed(7))
    b = model.sample(6, (3, 4), generator=torch.Generator().manual_seed(7))
    assert a.shape == (6, 3, 4) and a.dtype == torch.long
    assert a.min() >= 0 and a.max() < K
    assert torch.equal(a, b)
    c = model.sample(6, (3, 4), generator=torch.Generator().manual_seed(8))
    assert not torch.equal(a, c)


def test_low_temperature_sampling_is_greedy():
    model = make(layers=2)
    a = model.sample(4, (2, 3), torch.Generator().manual_seed(0), temperature=1e-4)
    b = model.sample(4, (2, 3), torch.Generator().manual_seed(1), temperature=1e-4)
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="temperature"):
        model.sample(1, (2, 2), temperature=0.0)


def test_nll_is_summed_cross_entropy_in_nats():
    model = make(layers=2)
    codes = torch.randint(K, (3, 2, 3))
    log_p = model(codes).log_softmax(1).gather(1, codes[:, None]).squeeze(1)  # (B, H, W)
    torch.testing.assert_close(model.nll(codes), -log_p.sum((1, 2)))


def shifted_rows(n: int, height: int, width: int, k: int) -> torch.Tensor:
    """Toy grids: row i is constant, equal to (c + i) mod k, with c uniform."""
    c = torch.randint(k, (n, 1, 1))
    return ((c + torch.arange(height)[:, None]) % k).expand(n, height, width).clone()


def follows_pattern(grids: torch.Tensor, k: int) -> torch.Tensor:
    expected = (grids[:, :1, :1] + torch.arange(grids.shape[1])[:, None]) % k
    return (grids == expected).all(2).all(1)


def fit(model: PixelCNNPrior, batch, steps: int) -> None:
    """Adam on the mean NLL of ``batch()`` -> (codes, cond)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = model.nll(*batch()).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_training_on_toy_grids_beats_uniform_and_samples_follow_pattern():
    k, height, width = 4, 3, 3
    torch.manual_seed(0)
    model = PixelCNNPrior(PixelCNNConfig(num_codes=k, hidden=32, layers=3))
    fit(model, lambda: (shifted_rows(32, height, width, k), None), steps=60)
    test = shifted_rows(256, height, width, k)
    uniform = UniformPrior(k).nll(test).mean()  # 9 log 4 = 12.5 nats; the optimum is log 4
    assert model.nll(test).mean().item() < 2.0 < uniform.item()
    samples = model.sample(64, (height, width), generator=torch.Generator().manual_seed(0))
    assert follows_pattern(samples, k).float().mean() > 0.9
    assert len(samples[:, 0, 0].unique()) >= 3, "collapsed onto a few modes"


def class_grids(labels: torch.Tensor, k: int) -> torch.Tensor:
    """2x2 grids whose row i is (label + i) mod k: the class decides everything."""
    rows = (labels[:, None] + torch.arange(2)) % k  # (B, 2)
    return rows[:, :, None].expand(-1, 2, 2).clone()


def test_class_conditioning_steers_samples():
    k, n_classes = 4, 3
    torch.manual_seed(0)
    model = PixelCNNPrior(PixelCNNConfig(num_codes=k, hidden=16, layers=2, n_classes=n_classes))

    def batch():
        labels = torch.randint(n_classes, (32,))
        return class_grids(labels, k), labels

    fit(model, batch, steps=50)
    for label in range(n_classes):
        cond = torch.full((16,), label)
        samples = model.sample(16, (2, 2), torch.Generator().manual_seed(0), cond=cond)
        match = (samples == class_grids(cond, k)).all(2).all(1).float().mean()
        assert match > 0.9, f"class {label}: only {match:.0%} of samples follow it"


def test_uniform_prior_nll_and_samples():
    prior = UniformPrior(num_codes=7)
    codes = torch.randint(7, (4, 3, 5))
    torch.testing.assert_close(prior.nll(codes), torch.full((4,), 15 * math.log(7)))
    # consistent with its own logits
    torch.testing.assert_close(
        prior.nll(codes),
        torch.nn.functional.cross_entropy(prior(codes), codes, reduction="none").sum((1, 2)),
    )
    a = prior.sample(5, (2, 3), generator=torch.Generator().manual_seed(0))
    b = prior.sample(5, (2, 3), generator=torch.Generator().manual_seed(0))
    assert a.shape == (5, 2, 3) and torch.equal(a, b) and 0 <= a.min() and a.max() < 7


def test_config_is_validated():
    with pytest.raises(ValidationError):
        PixelCNNConfig(num_codes=4, kernel_size=4)
    with pytest.raises(ValidationError):
        PixelCNNConfig(num_codes=1)
    with pytest.raises(ValidationError):
        PixelCNNConfig(num_codes=4, hiden=8)
