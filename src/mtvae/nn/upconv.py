"""The decoders' upsampling layer: a 4x4, stride-2 transposed convolution with a faster CPU path.

On CPU, oneDNN runs ``ConvTranspose2d`` with one or two output channels (the last layer of
a grayscale decoder) at a few GFLOP/s, about a tenth of its speed on the wider layers: that
one layer took 40% of the conv VAE's decoding time (``benchmarks/bench_iwae.py``). The same
map is a 3x3 convolution with ``4 * out_channels`` outputs followed by ``pixel_shuffle(2)``
(the "sub-pixel" form): each output pixel of parity ``(a, b)`` reads a 2x2 window of the
input, which sits inside the 3x3 window around its source pixel. The sub-pixel weight is a
re-indexing of the transposed convolution's weight (zeros where a parity does not read), so
parameters, state dicts and results are those of ``nn.ConvTranspose2d``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# _TAP[a, d + 1]: the 4x4 kernel row that output parity a applies to input offset d in
# {-1, 0, 1} (output row 2m + a = 2i - 1 + ky for input row i = m + d); 4 marks "not read".
_TAP = torch.tensor([[3, 1, 4], [4, 2, 0]])

# Measured on CPU, 1 thread, batches of 2048, against channels-last ConvTranspose2d at 1-8
# output channels: the sub-pixel form wins up to 4 in inference (1.4-2.4x) and up to 2 when
# gradients flow too (its backward is a 2.25x larger convolution); see bench_iwae's layers.
_MAX_OUT_INFERENCE, _MAX_OUT_TRAINING = 4, 2


def subpixel_weight(weight: torch.Tensor) -> torch.Tensor:
    """Transposed-conv weight ``(C_in, C_out, 4, 4)`` -> 3x3 conv weight ``(4 C_out, C_in, 3, 3)``.

    Output channel ``4 c + 2 a + b`` holds output channel ``c`` at parity ``(a, b)``, the order
    ``pixel_shuffle`` expects.
    """
    c_in, c_out = weight.shape[:2]
    padded = F.pad(weight, (0, 1, 0, 1))  # tap index 4 reads a zero
    tap = _TAP.to(weight.device)
    gathered = padded[:, :, tap[:, None, :, None], tap[None, :, None, :]]  # (Ci, Co, 2, 2, 3, 3)
    return gathered.permute(1, 2, 3, 0, 4, 5).reshape(4 * c_out, c_in, 3, 3)


def subpixel_conv_transpose(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """``conv_transpose2d(x, weight, bias, stride=2, padding=1)`` for a 4x4 kernel, as conv + shuffle."""
    sub_weight = subpixel_weight(weight)
    if x.is_contiguous(memory_format=torch.channels_last):
        sub_weight = sub_weight.contiguous(memory_format=torch.channels_last)
    sub_bias = None if bias is None else bias.repeat_interleave(4)
    return F.pixel_shuffle(F.conv2d(x, sub_weight, sub_bias, padding=1), 2)


class UpConv2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)``: doubles height and width.

    Same parameters and state dict as the plain layer (checkpoints load either way); on CPU,
    layers with few output channels run in the sub-pixel form (see the module docstring).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, 4, stride=2, padding=1)

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if output_size is None and self._subpixel_pays(x):
            return subpixel_conv_transpose(x, self.weight, self.bias)
        return super().forward(x, output_size)

    def _subpixel_pays(self, x: torch.Tensor) -> bool:
        if x.device.type != "cpu" or x.dim() != 4:
            return False
        grads = torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad)
        return self.out_channels <= (_MAX_OUT_TRAINING if grads else _MAX_OUT_INFERENCE)
