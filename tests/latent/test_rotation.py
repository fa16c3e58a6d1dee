"""The rotation trick (Fifty et al. 2024): the forward is plain VQ's output, the gradient to the
encoder output e is (||q|| / ||e||) R^T g with R the rotation taking e's direction to q's."""

from __future__ import annotations

import torch

from mtvae.latent.vq import VectorQuantizer, VQOptions, rotation_trick


def make(gradient: str, rows: list[list[float]], **options) -> VectorQuantizer:
    q = VectorQuantizer(VQOptions(num_codes=len(rows), code_dim=len(rows[0]),
                                  dead_code_steps=None, gradient=gradient, **options))
    with torch.no_grad():
        q.codebook.copy_(torch.tensor(rows))
    return q


def encoder_grad(q: VectorQuantizer, e: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """d(g . z_q)/de: the gradient a loss whose gradient at z_q is g sends to e."""
    e = e.clone().requires_grad_()
    (q(e).z_q * g).sum().backward()
    return e.grad


def rotation_matrix(e: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """The paper's R = I - 2 r r^T + 2 q̂ ê^T for one pair of vectors, as a matrix."""
    e_hat, q_hat = e / e.norm(), q / q.norm()
    r = (e_hat + q_hat) / (e_hat + q_hat).norm()
    return torch.eye(len(e)) - 2 * torch.outer(r, r) + 2 * torch.outer(q_hat, e_hat)


def test_hand_computed_case_a_quarter_turn_and_a_doubling():
    # e = (1, 0) is nearest to the code q = (0, 2): R turns by +90 degrees, ||q|| / ||e|| = 2
    q = make("rotation", [[0.0, 2.0], [5.0, 5.0]])
    e, g = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0]])
    assert torch.equal(q(e).z_q, torch.tensor([[0.0, 2.0]]))
    # (||q||/||e||) R^T g = 2 * [[0, 1], [-1, 0]] @ (1, 0) = (0, -2)
    torch.testing.assert_close(encoder_grad(q, e, g), torch.tensor([[0.0, -2.0]]))
    straight = make("straight_through", [[0.0, 2.0], [5.0, 5.0]])
    torch.testing.assert_close(encoder_grad(straight, e, g), g)  # copied unchanged


def test_forward_is_plain_vq_and_gradient_is_scaled_rotated_straight_through():
    rows = torch.randn(6, 3, generator=torch.Generator().manual_seed(0)).tolist()
    rot, st = make("rotation", rows), make("straight_through", rows)
    e = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    g = torch.randn(5, 3, generator=torch.Generator().manual_seed(2))
    out_rot, out_st = rot(e), st(e)
    assert torch.equal(out_rot.indices, out_st.indices)
    codes = rot.codebook.detach()[out_rot.indices]
    assert torch.equal(out_rot.z_q, codes)  # the code itself, bit for bit
    torch.testing.assert_close(out_st.z_q, codes)
    got, st_grad = encoder_grad(rot, e, g), encoder_grad(st, e, g)
    for i in range(len(e)):
        scale = codes[i].norm() / e[i].norm()
        want = scale * rotation_matrix(e[i], codes[i]).t() @ g[i]
        torch.testing.assert_close(got[i], want)
        # a rotation keeps lengths: only the scale changes the gradient's norm
        torch.testing.assert_close(got[i].norm(), scale * st_grad[i].norm())
    assert not torch.allclose(got, st_grad)


def test_aligned_vectors_get_the_straight_through_gradient_times_the_scale():
    q = make("rotation", [[0.0, 3.0, 0.0], [0.0, -3.0, 0.0]])
    e, g = torch.tensor([[0.0, 1.5, 0.0]]), torch.tensor([[0.3, -0.2, 0.7]])
    torch.testing.assert_close(encoder_grad(q, e, g), 2.0 * g)  # R = I, ||q|| / ||e|| = 2


def test_the_codebook_learns_from_the_codebook_loss_only_as_with_straight_through():
    rows = torch.randn(4, 2, generator=torch.Generator().manual_seed(3)).tolist()
    e = torch.randn(8, 2, generator=torch.Generator().manual_seed(4))
    grads = []
    for gradient in ("rotation", "straight_through"):
        q = make(gradient, rows)
        out = q(e)
        (out.z_q.pow(2).sum() + out.loss).backward()
        grads.append(q.codebook.grad)
    torch.testing.assert_close(grads[0], grads[1])


def test_helper_on_rows_keeps_the_code_exactly():
    e = torch.randn(7, 4, generator=torch.Generator().manual_seed(5))
    codes = torch.randn(7, 4, generator=torch.Generator().manual_seed(6))
    assert torch.equal(rotation_trick(e, codes), codes)
