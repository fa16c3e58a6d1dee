"""Checkpoints and weight files: written atomically, validated and loaded without executing code.

Training state goes through ``torch.save`` and comes back with ``torch.load(weights_only=True)``,
which only rebuilds tensors and plain containers (no pickle code execution). Final weights are
safetensors with the model's description in the file's metadata.

Both are serialised in memory and written by :func:`mtvae.io.atomic_write`, so a full disk is
an ``OSError`` there (writing to a path, torch reports it as an unrelated ``RuntimeError``, and
safetensors replaces the file with one of mode 0600) and every file gets the usual permissions. Loading checks the structure, shapes, dtypes
and that every floating-point value is finite, so a damaged file is refused with a message
instead of failing later inside a loss.

Each checkpoint write first keeps the one before it as ``previous.pt`` (a hard link, so it
costs no copy): when ``last.pt`` is damaged, ``mtvae train --resume RUN --restart`` continues
from there.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from mtvae.errors import UserError
from mtvae.io import atomic_write

META_KEY = "mtvae"
PREVIOUS = "previous.pt"
# Top-level entries of a training checkpoint and the type each must have.
CHECKPOINT_KEYS: dict[str, type] = {
    "model": dict, "optimizer": dict, "loop": dict, "torch_rng": torch.Tensor,
    "loader_rng": torch.Tensor, "config": dict,
}


class CheckpointError(UserError):
    """A checkpoint is missing, damaged or does not belong to the run (recoverable by restart)."""


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Atomically write a training-state dict (tensors and plain Python values only).

    The checkpoint being replaced is kept as ``previous.pt`` next to it.
    """
    path = Path(path)
    if path.is_file():
        _keep_previous(path)

    def write(tmp: Path) -> None:
        buffer = io.BytesIO()
        torch.save(state, buffer)
        tmp.write_bytes(buffer.getbuffer())

    atomic_write(path, write)


def _keep_previous(path: Path) -> None:
    """Hard-link ``path`` as ``previous.pt`` (atomically); skipped where links are unsupported."""
    link = path.with_name(f".{PREVIOUS}.link")
    try:
        link.unlink(missing_ok=True)
        os.link(path, link)
        os.replace(link, path.with_name(PREVIOUS))
    except OSError:
        link.unlink(missing_ok=True)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a training-state dict safely; :class:`CheckpointError` when missing or damaged."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint '{path}' does not exist.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # torch's own advice here (weights_only=False) would run code from the file
        raise CheckpointError(
            f"Checkpoint '{path}' is damaged or not an mtvae checkpoint: it holds objects other "
            "than tensors and plain values (for example a pickled program), so it was not "
            "loaded."
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, TypeError,
            AttributeError, IndexError, KeyError, UnicodeDecodeError) as exc:
        raise CheckpointError(
            f"Checkpoint '{path}' is damaged or not an mtvae checkpoint ({_first_line(exc)})."
        ) from None
    problem = checkpoint_problem(state)
    if problem:
        raise CheckpointError(f"Checkpoint '{path}' is not a usable mtvae checkpoint: {problem}.")
    return state


def checkpoint_problem(state: Any) -> str | None:
    """What is wrong with the structure of a loaded checkpoint, or None."""
    if not isinstance(state, dict):
        return f"it holds a {type(state).__name__}, not a mapping of training state"
    missing = [key for key in CHECKPOINT_KEYS if key not in state]
    if missing:
        return f"it has no {', '.join(missing)}"
    for key, kind in CHECKPOINT_KEYS.items():
        if not isinstance(state[key], kind):
            return f"its '{key}' is a {type(state[key]).__name__}, not a {kind.__name__}"
    for key in ("torch_rng", "loader_rng"):
        if state[key].dtype != torch.uint8 or state[key].dim() != 1:
            return f"its '{key}' is not a random-number-generator state"
    return tensors_problem(state["model"])


def tensors_problem(tensors: dict[str, Any]) -> str | None:
    """Why ``tensors`` is not a usable state dict (non-tensor or non-finite values), or None."""
    for key, value in tensors.items():
        if not isinstance(value, torch.Tensor):
            return f"'{key}' is a {type(value).__name__}, not a tensor"
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad = int((~torch.isfinite(value)).sum())
            return f"'{key}' holds {bad} non-finite (NaN or infinite) value(s)"
    return None


def save_weights(path: str | Path, model: nn.Module, meta: dict[str, Any]) -> None:
    """Atomically write the model's weights as safetensors, ``meta`` stored as JSON metadata."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {META_KEY: json.dumps(meta, sort_keys=True)}
    atomic_write(path, lambda tmp: tmp.write_bytes(save_safetensors(tensors, metadata=metadata)))


def read_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read safetensors weights and their mtvae metadata, refusing damaged or non-finite ones."""
    from safetensors import safe_open

    path = Path(path)
    fix = "Train the run again (`mtvae train --resume RUN --restart`) or restore the file."
    if not path.is_file():
        raise UserError(f"Weights file '{path}' does not exist: was the run trained to the end?")
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = json.loads((fh.metadata() or {}).get(META_KEY, "{}"))
        tensors = load_safetensors(path.read_bytes())
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        raise UserError(f"Weights file '{path}' is damaged ({_first_line(exc)}). {fix}") from None
    problem = tensors_problem(tensors)
    if problem:
        raise UserError(f"Weights file '{path}' is damaged: {problem}. {fix}")
    return tensors, meta


def weights_meta_problem(meta: Any) -> str | None:
    """What is wrong with the mtvae metadata of a weights file, or None."""
    if not isinstance(meta, dict):
        return "its metadata is not a mapping"
    shape = meta.get("image_shape")
    if not (isinstance(shape, list) and len(shape) == 3
            and all(isinstance(n, int) and n > 0 for n in shape)):
        return f"its metadata has no valid image_shape (got {shape!r})"
    tasks = meta.get("tasks", {})
    if not isinstance(tasks, dict) or not all(
        isinstance(t, dict) and isinstance(t.get("kind"), str) for t in tasks.values()
    ):
        return "its metadata has no valid task list"
    return None


def load_state_into(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` strictly, turning a mismatch into a message about a foreign file.

    Keys and shapes must match (``strict``) and so must dtypes: a silent cast would hide a
    file written for another model.
    """
    expected = model.state_dict()
    for key, value in state.items():
        if key in expected and isinstance(value, torch.Tensor) and value.dtype != expected[key].dtype:
            raise UserError(
                f"'{source}' does not fit this model: '{key}' is {value.dtype}, the model needs "
                f"{expected[key].dtype}; it was written by a different model or is damaged."
            )
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, KeyError, AttributeError) as exc:
        raise UserError(
            f"'{source}' does not fit this model: it was written by a different model or config "
            f"({_first_line(exc)})."
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
