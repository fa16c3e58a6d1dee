"""Images held as bytes and read as floats: how decoded image files stay small in memory.

A split's ``x`` is either a float32 tensor ``(N, C, H, W)`` in ``[0, 1]`` (the built-in sources,
npz) or :class:`ByteImages`: the same images stored as uint8 (a quarter of the memory; CelebA at
64x64 is 2.5 GB instead of 10 GB) that give float32 in ``[0, 1]`` whenever they are indexed. A
batch, a slice for evaluation or a mask selection is converted on the fly, so every consumer
that slices ``split.x`` (the loader, the metrics, the probes) works unchanged.
"""

from __future__ import annotations

import torch


class ByteImages:
    """uint8 images ``(N, C, H, W)`` (0..255) that index as float32 ``(..., C, H, W)`` in [0, 1].

    ``stored`` may be backed by a memory-mapped file (the decode cache); :meth:`rows` selects
    rows as a new ``ByteImages`` (still bytes), indexing converts.
    """

    dtype = torch.float32  # what indexing gives

    def __init__(self, stored: torch.Tensor) -> None:
        if stored.dtype != torch.uint8 or stored.ndim != 4:
            raise ValueError(f"ByteImages holds uint8 (N, C, H, W), got {stored.dtype} "
                             f"{tuple(stored.shape)}")
        self.stored = stored

    def __len__(self) -> int:
        return len(self.stored)

    def __getitem__(self, index) -> torch.Tensor:
        return self.stored[index].float().div_(255.0)

    @property
    def shape(self) -> torch.Size:
        """``(N, C, H, W)``, as a tensor's."""
        return self.stored.shape

    @property
    def device(self) -> torch.device:
        return self.stored.device

    def rows(self, index: torch.Tensor | slice) -> ByteImages:
        """The rows ``index`` selects, still as bytes (a copy for an index tensor)."""
        return ByteImages(self.stored[index])

    def float(self) -> torch.Tensor:
        """Every image as float32 in [0, 1] (four times the memory: for small splits only)."""
        return self[:]

    def __repr__(self) -> str:
        return f"ByteImages({tuple(self.shape)})"


def take_rows(x: torch.Tensor | ByteImages, index: torch.Tensor | slice) -> torch.Tensor | ByteImages:
    """Rows ``index`` of a split's images, kept in the form they are stored in."""
    return x.rows(index) if isinstance(x, ByteImages) else x[index]


def image_bytes(x: torch.Tensor | ByteImages) -> bytes:
    """The stored bytes of a split's images (a fingerprint's input; uint8 for ByteImages)."""
    stored = x.stored if isinstance(x, ByteImages) else x
    return stored.detach().cpu().contiguous().numpy().tobytes()
