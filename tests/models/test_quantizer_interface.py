"""The VQ models, their prior and the code metrics reach a quantizer only through the
``Quantizer`` interface: a quantizer written here, with nothing but that interface (no
codebook, no VQ options), trains, encodes, decodes, samples and predicts in both VQ models."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from mtvae.config import resolve_config
from mtvae.data.loader import Batch
from mtvae.data.shapes import load_shapes
from mtvae.evaluate.codebook import usage_metrics
from mtvae.latent.quantization import Quantized, Quantizer, perplexity
from mtvae.models.registry import build_model

D = 3  # code dimension: 2**3 = 8 codes


class SignQuantizer(Quantizer):
    """Each code dimension rounded to -1 or +1 (straight through); index: its bits."""

    def __init__(self, options: None = None) -> None:
        super().__init__()
        self.config = options
        self.register_buffer("bits", 2 ** torch.arange(D), persistent=False)

    @property
    def n_codes(self) -> int:
        return 2**D

    @staticmethod
    def code_dim_of(options) -> int:
        return D

    @staticmethod
    def describe(options) -> str:
        return f"sign: {2**D} codes"

    def forward(self, z: Tensor) -> Quantized:
        flat = self.flatten(z)
        signs = torch.where(flat >= 0, 1.0, -1.0)
        q = flat + (signs - flat).detach()
        indices = self.indices(z)
        counts = torch.bincount(indices.reshape(-1), minlength=self.n_codes)
        zero = flat.new_zeros(())
        return Quantized(self.unflatten(q, z.shape), indices, zero, zero, zero,
                         perplexity(counts), (counts > 0).sum())

    def indices(self, z: Tensor) -> Tensor:
        bits = (self.flatten(z) >= 0).long()
        return (bits * self.bits).sum(1).view(z.shape[0], *z.shape[2:])

    def codes_from_indices(self, indices: Tensor) -> Tensor:
        bits = indices.reshape(-1, 1).div(self.bits, rounding_mode="floor") % 2
        return (2.0 * bits - 1).view(*indices.shape, D).movedim(-1, 1)


@pytest.fixture(scope="module")
def data():
    return load_shapes(n_train=32, n_val=16, n_test=16, image_size=16)


def _with_sign_quantizer(name: str, data, prior: str, **options):
    """A VQ model whose quantizer is swapped for the sign quantizer (built with FSQ levels of
    the same code dimension and code count, so its encoder and prior fit it)."""
    config = resolve_config({"model": {
        "name": name, "encoder": {"arch": "mlp", "hidden": [16]}, "n_latents": 4,
        "quantizer": {"kind": "fsq", "levels": [2] * D},
        "prior": {"kind": prior, "hidden": 4, "layers": 1}, **options}})
    torch.manual_seed(0)
    model = build_model(config.model, data.info)
    model.quantizer = SignQuantizer()
    return model


@pytest.mark.parametrize("name, options", [("vqvae", {}), ("mtvqvae", {"tasks": ["shape"]})])
@pytest.mark.parametrize("prior", ["uniform", "pixelcnn"])
def test_a_quantizer_with_only_the_interface_works_in_both_vq_models(data, name, options, prior):
    model = _with_sign_quantizer(name, data, prior, **options)
    split = data.train
    batch = Batch(split.x[:8], {t: v[:8] for t, v in split.targets.items()},
                  {t: m[:8] for t, m in split.masks.items()})
    out = model.train()(batch)
    out.loss.backward()
    assert all(p.grad is not None for p in model.encoder.parameters())  # straight through

    model.eval()
    x = data.test.x[:6]
    codes = model.encode_codes(x)  # (B, H', W')
    assert codes.shape[0] == 6 and int(codes.min()) >= 0 and int(codes.max()) < 2**D
    # the codes the decoder reads are the quantizer's, so decoding the indices reconstructs
    torch.testing.assert_close(model.decode_codes(codes), model.decoder(
        model.quantizer(model.encoder(x)).z_q))
    assert model.reconstruct(x).shape == x.shape
    assert model.representation(x).shape == (6, D * codes[0].numel())
    assert torch.isfinite(model.code_nll(x)).all()
    samples = model.sample(3, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (3, *x.shape[1:]) and torch.isfinite(samples).all()
    usage = usage_metrics(codes, model.num_codes)
    assert 0 < usage["vq/usage"] <= 1
    if options:
        assert set(model.predict(x)) == {"shape"}
