"""Checkpoints and weight files: written atomically, loaded without executing code.

Training state goes through ``torch.save`` and comes back with ``torch.load(weights_only=True)``,
which only rebuilds tensors and plain containers (no pickle code execution). Final weights are
safetensors with the model's description in the file's metadata.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from mtvae.errors import UserError
from mtvae.io import atomic_write

META_KEY = "mtvae"


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Atomically write a training-state dict (tensors and plain Python values only)."""
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a training-state dict safely, with a clear error when missing or damaged."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"Checkpoint '{path}' does not exist; start a new run without --resume.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, OSError) as exc:
        raise UserError(
            f"Checkpoint '{path}' is damaged or not an mtvae checkpoint ({_first_line(exc)}). "
            "Delete it to restart from scratch."
        ) from None
    if not isinstance(state, dict) or "model" not in state:
        raise UserError(f"Checkpoint '{path}' is not an mtvae training checkpoint.")
    return state


def save_weights(path: str | Path, model: nn.Module, meta: dict[str, Any]) -> None:
    """Atomically write the model's weights as safetensors, ``meta`` stored as JSON metadata."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {META_KEY: json.dumps(meta, sort_keys=True)}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def read_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read safetensors weights and their mtvae metadata."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise UserError(f"Weights file '{path}' does not exist: was the run trained to the end?")
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = json.loads((fh.metadata() or {}).get(META_KEY, "{}"))
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"Weights file '{path}' is damaged ({_first_line(exc)}).") from None
    return tensors, meta


def load_state_into(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` strictly, turning a mismatch into a message about a foreign file."""
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise UserError(
            f"'{source}' does not fit this model: it was written by a different model or config "
            f"({_first_line(exc)})."
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
