"""A toy where plain straight-through VQ (no EMA, no restarts) collapses: a 2-D autoencoder
whose codebook starts off to one side of the encoder outputs, so the few codes nearest to them
are the only ones ever selected, and only selected codes get a gradient. FSQ has no codebook to
start badly and keeps most of its grid in use. The rotation trick changes the gradient the
encoder gets, not which codes get one, so without restarts it stays collapsed too (the pitfall
noted in #28); dead-code restarts bring the codes back."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mtvae.latent.quantizers import QuantizerConfig, build_quantizer

VQ = {"num_codes": 16, "code_dim": 2, "dead_code_steps": None}
FSQ = {"kind": "fsq", "levels": [4, 4]}  # the same 16 codes of 2 dimensions


def codes_in_use(options: dict, seed: int, steps: int = 150) -> int:
    """Distinct codes of 256 uniform 2-D points after training a linear autoencoder."""
    torch.manual_seed(seed)
    x = torch.rand(256, 2) * 2 - 1
    encoder, decoder = nn.Linear(2, 2), nn.Linear(2, 2)
    quantizer = build_quantizer(QuantizerConfig(**options))
    if hasattr(quantizer, "codebook"):
        with torch.no_grad():
            quantizer.codebook.add_(3.0)  # unit-scale codes centred at (3, 3), outputs near 0
    params = [*encoder.parameters(), *decoder.parameters(), *quantizer.parameters()]
    optimizer = torch.optim.Adam(params, lr=1e-2)
    for _ in range(steps):
        out = quantizer(encoder(x))
        loss = (decoder(out.z_q) - x).pow(2).mean() + out.loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return len(quantizer.indices(encoder(x)).unique())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fsq_keeps_codes_in_use_where_straight_through_vq_collapses(seed):
    assert codes_in_use(VQ, seed) <= 2
    assert codes_in_use(FSQ, seed) >= 8


def test_rotation_without_restarts_stays_collapsed_and_restarts_revive_the_codes():
    assert codes_in_use(VQ | {"gradient": "rotation"}, 0) <= 2
    revived = VQ | {"gradient": "rotation", "dead_code_steps": 20}
    assert codes_in_use(revived, 0) >= 8
