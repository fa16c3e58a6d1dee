"""Finite scalar quantization: outputs on the grid, index round trips, the straight-through
gradient through the rounding, the bound's known values, and its options' errors."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError

from mtvae.latent.fsq import FiniteScalarQuantizer, FSQOptions

LEVELS = [8, 5, 3, 2]  # even and odd level counts


def make(levels=LEVELS) -> FiniteScalarQuantizer:
    return FiniteScalarQuantizer(FSQOptions(levels=levels))


def unbound(q: FiniteScalarQuantizer, codes: torch.Tensor) -> torch.Tensor:
    """An input ``(B, D, ...)`` whose bounded value is the grid point ``codes`` (bound's inverse)."""
    shape = (1, -1, *[1] * (codes.ndim - 2))
    levels = q.levels.float().view(shape)
    h = (levels - 1) * 1.001 / 2
    offset = (levels % 2 == 0).float() / 2
    steps = codes * q.half_width.view(shape)
    return torch.atanh((steps + offset) / h) - torch.atanh(offset / h)


def inputs(shape, scale=3.0, seed=0) -> torch.Tensor:
    return scale * torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def test_sizes_follow_from_the_levels():
    q = make([8, 5, 5, 5])
    assert (q.n_codes, q.code_dim) == (1000, 4)
    assert q.state_dict() == {}  # nothing learned, nothing to save


@pytest.mark.parametrize("shape", [(64, 4), (3, 4, 5, 6)])
def test_output_is_exactly_a_grid_point_and_the_code_of_its_index(shape):
    q = make()
    out = q(inputs(shape))
    half = torch.tensor([4, 2, 1, 1]).view(1, 4, *[1] * (len(shape) - 2))
    steps = out.z_q * half  # integers on the grid: -L/2 .. L/2 - 1 (even L), -(L-1)/2 .. (L-1)/2
    assert torch.equal(steps, steps.round())
    lo = torch.tensor([-4, -2, -1, -1]).view_as(half)
    hi = torch.tensor([3, 2, 1, 0]).view_as(half)
    assert bool(((steps >= lo) & (steps <= hi)).all())
    assert out.indices.shape == (shape[0], *shape[2:])
    assert torch.equal(q.codes_from_indices(out.indices), out.z_q)  # bit for bit
    assert torch.equal(q.indices(inputs(shape)), out.indices)


def test_codes_indices_codes_round_trip_over_the_whole_grid():
    q = make()
    every = torch.arange(q.n_codes).view(1, -1)  # (1, N): a "sequence" of all indices
    codes = q.codes_from_indices(every)  # (1, D, N)
    assert len(codes[0].t().unique(dim=0)) == q.n_codes  # distinct grid points
    assert torch.equal(q.indices_from_codes(codes), every)
    # an input whose bounded value is a grid point has that point's index
    assert torch.equal(q.indices(unbound(q, codes)), every)
    assert torch.equal(q(unbound(q, codes)).z_q, codes)


def test_indices_are_mixed_radix_digits_lowest_dimension_first():
    q = make([3, 4])
    # digits (d0, d1) -> d0 + 3 * d1; the code of digit d is (d - L//2) / (L//2)
    codes = q.codes_from_indices(torch.tensor([[0, 1, 3, 11]]))[0].t()
    expected = [[-1.0, -1.0], [0.0, -1.0], [-1.0, -0.5], [1.0, 0.5]]
    assert codes.tolist() == expected


def test_bound_maps_zero_to_zero_and_reaches_every_level():
    q = make()
    torch.testing.assert_close(q.bound(torch.zeros(1, 4)), torch.zeros(1, 4))
    sweep = torch.linspace(-8, 8, 2001)[:, None].expand(-1, 4)  # (N, 4)
    rounded = q.bound(sweep).round()
    for dim, levels in enumerate(LEVELS):
        assert len(rounded[:, dim].unique()) == levels


def test_gradient_is_the_bounds_derivative_straight_through_the_rounding():
    q = make()
    z = inputs((32, 4)).requires_grad_()
    weights = inputs((32, 4), seed=1)
    (q(z).z_q * weights).sum().backward()
    # the same function without the rounding
    half_width = torch.tensor([4.0, 2.0, 1.0, 1.0])
    z2 = z.detach().clone().requires_grad_()
    (q.bound(z2) / half_width * weights).sum().backward()
    torch.testing.assert_close(z.grad, z2.grad)
    # and in closed form: h (1 - tanh^2(z + shift)) / half_width, h = (L - 1)(1 + eps) / 2
    levels = torch.tensor(LEVELS, dtype=torch.float)
    h = (levels - 1) * 1.001 / 2
    shift = torch.atanh((levels % 2 == 0).float() / 2 / h)
    dz = h * (1 - torch.tanh(z.detach() + shift) ** 2) / half_width
    torch.testing.assert_close(z.grad, dz * weights)


def test_no_loss_and_the_same_output_in_training_and_evaluation():
    q = make()
    z = inputs((16, 4))
    a, b = q.train()(z), q.eval()(z)
    assert float(a.loss) == 0.0 and not a.loss.requires_grad
    assert torch.equal(a.z_q, b.z_q)
    assert 1 <= int(a.used) <= 16 and 1.0 <= float(a.perplexity) <= float(a.used) + 1e-4


def test_bad_levels_are_refused_with_the_fix():
    with pytest.raises(ValidationError, match="at least 2"):
        FSQOptions(levels=[8, 1])
    with pytest.raises(ValidationError, match="more than 65,536"):
        FSQOptions(levels=[256, 256, 2])
    with pytest.raises(ValidationError):
        FSQOptions(levels=[])
    assert math.prod(FSQOptions().levels) == 1000  # the paper's [8, 5, 5, 5]
