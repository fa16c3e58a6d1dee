"""Invariant and known-answer tests for the vector quantizer."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

from mtvae.latent.quantization import CodeUsage, perplexity
from mtvae.latent.vq import VectorQuantizer, VQOptions, kmeans, nearest_codes


def make(**overrides) -> VectorQuantizer:
    """A small quantizer; dead-code restarts off unless asked for."""
    torch.manual_seed(0)
    fields = {"num_codes": 8, "code_dim": 4, "dead_code_steps": None} | overrides
    return VectorQuantizer(VQOptions(**fields))


def set_codebook(q: VectorQuantizer, rows: list[list[float]]) -> None:
    with torch.no_grad():
        q.codebook.copy_(torch.tensor(rows))
        if q.config.ema:
            q.ema_sum.copy_(q.codebook)
            q.ema_count.fill_(1.0)


@pytest.mark.parametrize("cosine", [False, True])
@pytest.mark.parametrize("shape", [(6, 4), (2, 4, 3, 5)])
def test_output_is_codebook_rows_of_indices(shape, cosine):
    q = make(cosine=cosine).eval()
    z = torch.randn(shape)
    out = q(z)
    assert out.z_q.shape == z.shape
    assert out.indices.shape == (shape[0], *shape[2:]) and out.indices.dtype == torch.long
    codes = F.normalize(q.codebook, dim=1) if cosine else q.codebook
    expected = codes[out.indices].movedim(-1, 1)  # (B, D, ...) layout
    torch.testing.assert_close(out.z_q, expected)
    torch.testing.assert_close(q.codes_from_indices(out.indices), expected)
    if cosine:
        torch.testing.assert_close(out.z_q.norm(dim=1), torch.ones(out.indices.shape))


def test_indices_are_nearest_codes():
    q = make().eval()
    z = torch.randn(5, 4, 3)
    out = q(z)
    flat = z.movedim(1, -1).reshape(-1, 4)
    assert torch.equal(out.indices.reshape(-1), torch.cdist(flat, q.codebook).argmin(1))


def test_nearest_codes_matches_brute_force():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(300, 6, generator=g, dtype=torch.float64)
    codebook = torch.randn(20, 6, generator=g, dtype=torch.float64)
    assert torch.equal(nearest_codes(z, codebook), torch.cdist(z, codebook).argmin(1))


def test_straight_through_gradient_plus_commitment():
    beta = 0.3
    q = make(beta=beta)
    z = torch.randn(3, 4, 2, 2, requires_grad=True)
    out = q(z)
    w = torch.randn_like(z)
    ((w * out.z_q).sum() + out.loss).backward()
    e = q.codes_from_indices(out.indices).detach()
    # d/dz of beta * mean((z - sg[e])^2); the codebook term sends nothing to z
    torch.testing.assert_close(z.grad, w + beta * 2 * (z.detach() - e) / z.numel())


@pytest.mark.parametrize("beta", [0.0, 1.7])
def test_codebook_gradient_comes_from_codebook_term_only(beta):
    q = make(beta=beta)
    z = torch.randn(10, 4)
    out = q(z)
    out.loss.backward()
    e = q.codebook.detach()[out.indices]
    # d/de_k of mean((sg[z] - e)^2) = sum over vectors assigned to k of 2 (e_k - z_i) / (N D)
    expected = torch.zeros_like(q.codebook).index_add_(0, out.indices, 2 * (e - z) / z.numel())
    torch.testing.assert_close(q.codebook.grad, expected)


def test_straight_through_output_sends_no_gradient_to_codebook():
    q = make()
    out = q(torch.randn(10, 4, requires_grad=True))
    out.z_q.sum().backward()
    assert q.codebook.grad is None


def test_ema_codebook_has_no_gradient_and_loss_is_commitment_only():
    q = make(ema=True, beta=0.5)
    assert "codebook" not in dict(q.named_parameters())
    z = torch.randn(6, 4, requires_grad=True)
    out = q(z)
    torch.testing.assert_close(out.loss, 0.5 * out.commitment_loss)
    out.loss.backward()
    assert not q.codebook.requires_grad and q.codebook.grad is None
    assert z.grad is not None


def test_ema_update_matches_hand_computed_step():
    # eps this large makes the Laplace smoothing visible in the numbers
    q = make(num_codes=2, code_dim=2, ema=True, ema_decay=0.5, ema_eps=0.5)
    set_codebook(q, [[0.0, 0.0], [4.0, 4.0]])
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [5.0, 3.0]])
    out = q.train()(z)
    assert out.indices.tolist() == [0, 0, 0, 1]
    # N = 0.5 * [1, 1] + 0.5 * [3, 1];  m = 0.5 * e_old + 0.5 * (cluster sums [2, 2], [5, 3])
    torch.testing.assert_close(q.ema_count, torch.tensor([2.0, 1.0]))
    torch.testing.assert_close(q.ema_sum, torch.tensor([[1.0, 1.0], [4.5, 3.5]]))
    # n = 3;  sizes (N + eps) / (n + K eps) * n = [2.5, 1.5] / 4 * 3 = [15/8, 9/8]
    expected = torch.tensor([[8 / 15, 8 / 15], [4.0, 28 / 9]])
    torch.testing.assert_close(q.codebook, expected)


@pytest.mark.parametrize("ema", [False, True])
def test_unused_code_restarts_after_configured_steps(ema):
    q = make(num_codes=2, code_dim=2, dead_code_steps=3, ema=ema, cosine=False).train()
    set_codebook(q, [[0.0, 0.0], [100.0, 100.0]])
    far = torch.tensor([100.0, 100.0])
    for step in range(1, 4):
        z = 0.1 * torch.randn(16, 2, requires_grad=True)
        out = q(z)
        out.loss.backward()  # in-place state updates must leave backward intact
        assert (out.indices == 0).all()
        if step < 3:
            assert (q.codebook[1] - far).norm() < 1.0, f"restarted too early, at step {step}"
            assert q.unused_steps.tolist() == [0, step]
    assert (z.detach() - q.codebook[1]).norm(dim=1).min() < 1e-6, "not restarted onto the batch"
    assert q.unused_steps.tolist() == [0, 0]
    if ema:
        torch.testing.assert_close(q.ema_sum[1], q.codebook[1])
        assert q.ema_count[1] == 1.0


def test_restart_keeps_backward_valid_in_cosine_mode():
    q = make(num_codes=4, code_dim=2, dead_code_steps=1, cosine=True).train()
    z = torch.randn(3, 2, requires_grad=True)
    out = q(z)
    out.loss.backward()
    assert q.codebook.grad is not None and z.grad is not None


def test_perplexity_known_answers():
    torch.testing.assert_close(perplexity(torch.full((8,), 5)), torch.tensor(8.0))
    torch.testing.assert_close(perplexity(torch.tensor([0, 0, 7, 0])), torch.tensor(1.0))


def test_forward_reports_batch_usage():
    q = make(num_codes=4, code_dim=3).eval()
    set_codebook(q, [[0.0, 0, 0], [5, 0, 0], [0, 5, 0], [0, 0, 5]])
    out = q(q.codebook[[0, 1, 2, 3, 3, 2, 1, 0]].detach())
    assert out.used == 4
    torch.testing.assert_close(out.perplexity, torch.tensor(4.0))
    out = q(q.codebook[[2, 2, 2]].detach())
    assert out.used == 1
    torch.testing.assert_close(out.perplexity, torch.tensor(1.0))


def test_code_usage_accumulates_over_batches():
    usage = CodeUsage(num_codes=5)
    usage.update(torch.tensor([0, 1, 1]))
    usage.update(torch.tensor([[3, 3], [1, 0]]))  # counts [2, 3, 0, 2, 0]
    stats = usage.compute()
    p = torch.tensor([2.0, 3.0, 2.0]) / 7
    assert stats["perplexity"] == pytest.approx(math.exp(-(p * p.log()).sum().item()), rel=1e-5)
    assert stats["usage"] == pytest.approx(3 / 5)
    assert stats["dead"] == 2
    usage.reset()
    assert usage.compute()["dead"] == 5
    with pytest.raises(ValueError, match="indices must lie"):
        usage.update(torch.tensor([5]))


def clusters(centres: torch.Tensor, per: int = 50) -> torch.Tensor:
    return centres.repeat_interleave(per, 0) + 0.1 * torch.randn(len(centres) * per, 2)


CENTRES = torch.tensor([[5.0, 5.0], [5.0, -5.0], [-5.0, 5.0], [-5.0, -5.0]])


def assert_codes_at(codebook: torch.Tensor, centres: torch.Tensor, tol: float = 0.1) -> None:
    nearest = torch.cdist(centres, codebook).min(1).values
    assert (nearest < tol).all(), f"centre-to-code distances {nearest.tolist()}"


def test_kmeans_finds_separated_clusters():
    torch.manual_seed(0)
    assert_codes_at(kmeans(clusters(CENTRES), 4), CENTRES)


def test_kmeans_init_once_on_first_training_batch_and_survives_state_dict():
    q = make(num_codes=4, code_dim=2, kmeans_init=True).train()
    q(clusters(CENTRES))
    assert_codes_at(q.codebook.detach(), CENTRES)
    assert q.initialized
    before = q.codebook.detach().clone()
    q(clusters(CENTRES + 1.0))  # no optimizer step, no EMA: the codebook must not move
    assert torch.equal(q.codebook, before)
    fresh = make(num_codes=4, code_dim=2, kmeans_init=True)
    fresh.load_state_dict(q.state_dict())
    fresh.train()(clusters(CENTRES + 1.0))
    assert torch.equal(fresh.codebook, before), "k-means ran again after loading"


def test_eval_forward_changes_no_state_but_train_forward_does():
    q = make(ema=True, kmeans_init=True, dead_code_steps=1)
    before = {k: v.clone() for k, v in q.state_dict().items()}
    q.eval()(torch.randn(20, 4))
    for key, value in q.state_dict().items():
        assert torch.equal(value, before[key]), f"eval forward changed {key}"
    q.train()(torch.randn(20, 4))
    assert not torch.equal(q.codebook, before["codebook"])


@pytest.mark.parametrize("ema", [False, True])
def test_state_dict_round_trip_reproduces_outputs(ema):
    q = make(ema=ema, kmeans_init=True, dead_code_steps=2, cosine=True).train()
    for _ in range(3):
        q(torch.randn(16, 4))
    torch.manual_seed(123)  # a different random codebook before loading
    copy = VectorQuantizer(q.config)
    copy.load_state_dict(q.state_dict())
    z = torch.randn(2, 4, 3, 3)
    a, b = q.eval()(z), copy.eval()(z)
    assert torch.equal(a.indices, b.indices)
    assert torch.equal(a.z_q, b.z_q) and torch.equal(a.loss, b.loss)


def test_config_is_validated():
    with pytest.raises(ValidationError):
        VQOptions(num_codes=0)
    with pytest.raises(ValidationError):
        VQOptions(dead_code_steps=0)
    with pytest.raises(ValidationError):
        VQOptions(codes=8)  # unknown field


def test_wrong_code_dim_is_a_clear_error():
    with pytest.raises(ValueError, match="code dim at dim 1"):
        make()(torch.randn(2, 3, 4, 4))
