"""The reference classifier of the generation metrics: a small net trained here, cached on disk.

FID-style metrics compare real and generated images in the feature space of a classifier. No
pretrained network is downloaded: each dataset gets its own small classifier (a CNN for images
of side >= 8, an MLP otherwise) trained on the training split's labels of its first categorical
task, with early stopping once the validation accuracy is high. Its penultimate layer (128
units) is the feature space.

The classifier is a measuring instrument shared by every run on the same data, so it uses all
training labels whatever the run's ``data.label_fraction``. It is cached as safetensors under
``$MTVAE_CACHE/reference/`` (default ``~/.cache/mtvae/reference/``), named by a fingerprint of
the training and validation tensors (images and targets) and the architecture version: the
same data load the same classifier, changed data train a new one.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mtvae.data.byte_images import image_bytes
from mtvae.data.dataset import Dataset, Split
from mtvae.errors import UserError
from mtvae.train.checkpoint import load_state_into, read_weights, save_weights

ARCH_VERSION = 1  # bump when the architecture or training recipe changes: old caches stop matching
N_FEATURES = 128


class ReferenceNet(nn.Module):
    """Images ``(B, C, H, W)`` -> features ``(B, 128)`` -> class logits."""

    def __init__(self, image_shape: tuple[int, int, int], n_classes: int) -> None:
        super().__init__()
        c, h, w = image_shape
        if min(h, w) >= 8:
            self.body = nn.Sequential(
                nn.Conv2d(c, 32, 4, stride=2, padding=1), nn.ReLU(),
                nn.Conv2d(32, 64, 4, stride=2, padding=1), nn.ReLU(),
                nn.Conv2d(64, 64, 4, stride=2, padding=1), nn.ReLU(),
                nn.AdaptiveAvgPool2d(4), nn.Flatten(),  # any image size -> (B, 64 * 4 * 4)
                nn.Linear(64 * 16, N_FEATURES), nn.ReLU(),
            )  # fmt: skip
        else:  # too small for three stride-2 convolutions: flat data
            self.body = nn.Sequential(
                nn.Flatten(), nn.Linear(c * h * w, 256), nn.ReLU(),
                nn.Linear(256, N_FEATURES), nn.ReLU(),
            )  # fmt: skip
        self.head = nn.Linear(N_FEATURES, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer features ``(B, 128)``."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


@dataclass
class Reference:
    """A trained reference classifier for ``task`` and where it is cached."""

    net: ReferenceNet
    task: str
    path: Path
    trained: bool  # True when trained by this call, False when loaded from the cache

    @torch.no_grad()
    def features(self, x: torch.Tensor, batch_size: int = 500) -> np.ndarray:
        """Penultimate features of images ``x`` -> float64 ``(N, 128)``."""
        return _batched(self.net.features, x, batch_size).double().numpy()

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 500) -> np.ndarray:
        """Predicted classes of images ``x`` ``(N,)``."""
        return _batched(self.net, x, batch_size).argmax(1).numpy()

    def accuracy(self, split: Split) -> float:
        """Accuracy on the labelled samples of ``split``."""
        mask = split.masks[self.task]
        pred = self.predict(split.x[mask])
        return float(np.mean(pred == split.targets[self.task][mask].numpy()))


def _batched(fn, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    return torch.cat([fn(x[s : s + batch_size]) for s in range(0, len(x), batch_size)])


def reference_task(data: Dataset) -> str | None:
    """The task the reference classifier learns: the dataset's first categorical task (its
    targets are the class indices the classifier's softmax learns)."""
    return next((name for name, t in data.tasks.items() if t.task_kind.class_indices), None)


def cache_dir() -> Path:
    """``$MTVAE_CACHE/reference`` (default ``~/.cache/mtvae/reference``)."""
    root = os.environ.get("MTVAE_CACHE") or Path.home() / ".cache" / "mtvae"
    return Path(root) / "reference"


def fingerprint(data: Dataset, task: str) -> str:
    """Hash of the training and validation images and targets, the task and ARCH_VERSION."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"reference-v{ARCH_VERSION}/{task}".encode())
    for split in (data.train, data.val):
        for tensor in (split.x, split.targets[task]):
            h.update(str((tuple(tensor.shape), tensor.dtype)).encode())
            h.update(image_bytes(tensor))  # uint8 images hash their bytes
    return h.hexdigest()


def reference_classifier(data: Dataset, task: str | None = None, seed: int = 0) -> Reference:
    """The cached reference classifier of ``data`` (trained and cached on first use)."""
    task = task or reference_task(data)
    if task is None:
        raise ValueError(f"dataset '{data.name}' has no categorical task to train a classifier on")
    path = cache_dir() / f"{fingerprint(data, task)}.safetensors"
    if path.is_file():
        with torch.random.fork_rng():  # building the net must not move the global RNG
            net = ReferenceNet(tuple(data.train.x.shape[1:]), data.tasks[task].n_classes)
        try:
            tensors, _ = read_weights(path)
            load_state_into(net, tensors, str(path))
            return Reference(net.eval(), task, path, trained=False)
        except UserError:  # a damaged or foreign file: train again and replace it
            pass
    net, steps = train_reference(data, task, seed)
    save_weights(path, net, {"task": task, "arch_version": ARCH_VERSION, "steps": steps})
    return Reference(net.eval(), task, path, trained=True)


def train_reference(
    data: Dataset,
    task: str,
    seed: int = 0,
    max_epochs: int = 5,
    target_accuracy: float = 0.99,
    batch_size: int = 128,
    check_every: int = 50,
) -> tuple[ReferenceNet, int]:
    """A new net trained with Adam on all training labels of ``task``; stops once the
    validation accuracy (checked every ``check_every`` steps) reaches ``target_accuracy``, or
    after ``max_epochs``. Returns the net and its number of steps. Seeded; the global RNG state
    is left as it was."""
    x, y = data.train.x, data.train.targets[task]
    with torch.random.fork_rng(), torch.enable_grad():  # callers may run under no_grad
        torch.manual_seed(seed)
        net = ReferenceNet(tuple(x.shape[1:]), data.tasks[task].n_classes)
        reference = Reference(net, task, Path(), trained=True)
        optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)
        generator = torch.Generator().manual_seed(seed)
        batches = [
            idx
            for _ in range(max_epochs)
            for idx in torch.randperm(len(x), generator=generator).split(batch_size)
        ]
        for step, idx in enumerate(batches, start=1):
            net.train()
            loss = F.cross_entropy(net(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if step % check_every == 0 or step == len(batches):
                net.eval()
                if reference.accuracy(data.val) >= target_accuracy:
                    break
    return net.eval(), step
