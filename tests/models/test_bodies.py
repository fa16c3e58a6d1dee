"""The decoders' upsampling layer and in-place activations: same maps as the plain layers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mtvae.nn.bodies import BodyConfig, Decoder, Encoder, activation
from mtvae.nn.upconv import UpConv2d, subpixel_weight


def _pair(c_in: int, c_out: int) -> tuple[UpConv2d, nn.ConvTranspose2d]:
    torch.manual_seed(0)
    up = UpConv2d(c_in, c_out)
    plain = nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)
    plain.load_state_dict(up.state_dict())
    return up, plain


@pytest.mark.parametrize("c_out", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("channels_last", [False, True])
def test_upconv_matches_conv_transpose_in_inference(c_out, channels_last):
    up, plain = _pair(6, c_out)
    x = torch.randn(3, 6, 5, 7)
    if channels_last:
        up, x = up.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)
    with torch.inference_mode():
        got, want = up(x), plain(x)
    assert got.shape == (3, c_out, 10, 14)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("c_out", [1, 2, 3])
def test_upconv_gradients_match_conv_transpose(c_out):
    up, plain = _pair(4, c_out)
    x = torch.randn(2, 4, 6, 6)
    grads = []
    for layer in (up, plain):
        xi = x.clone().requires_grad_()
        (layer(xi).sin().sum()).backward()
        grads.append((xi.grad, layer.weight.grad, layer.bias.grad))
    for got, want in zip(*grads, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_upconv_state_dict_is_that_of_conv_transpose():
    up, plain = _pair(3, 1)
    assert up.state_dict().keys() == plain.state_dict().keys()
    assert up.weight.shape == plain.weight.shape == (3, 1, 4, 4)


def test_subpixel_weight_places_each_tap_at_its_parity_and_offset():
    # Output row 2m + a reads input row m + d through kernel row ky, where 2(m + d) - 1 + ky
    # = 2m + a: (a, d, ky) in {(0, -1, 3), (0, 0, 1), (1, 0, 2), (1, 1, 0)}; same for columns.
    reads = {(0, -1): 3, (0, 0): 1, (1, 0): 2, (1, 1): 0}
    weight = torch.arange(16.0).view(1, 1, 4, 4) + 1  # tap (ky, kx) holds 4 ky + kx + 1
    sub = subpixel_weight(weight)  # (4, 1, 3, 3): channel 2a + b
    for a in (0, 1):
        for b in (0, 1):
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ky, kx = reads.get((a, dy)), reads.get((b, dx))
                    want = 0.0 if ky is None or kx is None else float(4 * ky + kx + 1)
                    assert sub[2 * a + b, 0, dy + 1, dx + 1].item() == want


def test_activation_is_in_place_only_where_autograd_allows():
    assert activation("relu").inplace and activation("elu").inplace
    assert activation("leaky_relu").inplace
    assert not activation("silu").inplace  # silu's backward reads its input


@pytest.mark.parametrize("name", ["relu", "silu", "leaky_relu", "elu"])
def test_conv_bodies_with_in_place_activations_give_plain_gradients(name):
    cfg = BodyConfig(channels=[4, 8], hidden=[16], activation=name)
    torch.manual_seed(0)
    enc, dec = Encoder(cfg, (1, 8, 8)), Decoder(cfg, (1, 8, 8), in_features=16)
    x = torch.rand(5, 1, 8, 8)
    loss = (dec(enc(x)) - x).square().sum()
    loss.backward()
    got = [p.grad.clone() for p in [*enc.parameters(), *dec.parameters()]]
    # Reference: the same modules with every activation switched out of place.
    for module in [*enc.modules(), *dec.modules()]:
        if hasattr(module, "inplace"):
            module.inplace = False
    for p in [*enc.parameters(), *dec.parameters()]:
        p.grad = None
    (dec(enc(x)) - x).square().sum().backward()
    want = [p.grad for p in [*enc.parameters(), *dec.parameters()]]
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w)
