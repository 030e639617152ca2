"""Checkpoints: written atomically, read with `weights_only=True`, errors as one line.

A checkpoint (DESIGN section 5) is a dict of tensors and plain values only: model, optimizer,
schedule, AMP scaler, loss weighting, epoch/step/position in the epoch, the train metric
counters of an unfinished epoch, RNG states (numpy's as a tensor, so nothing but tensors and
builtins is pickled), the resolved config and its hash. A file from elsewhere is loaded with
`weights_only=True`: a pickle that would run code is refused before anything in it runs.
A full disk ends the run with one line naming the file and the free space (DiskFull), and the
previous file stays whole (atomic replace).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from amc_tui.fsutil import atomic_write_with, disk_full_message, is_disk_full
from amc_tui.train.preflight import CheckpointError

FORMAT = "amc-tui-checkpoint-1"


class DiskFull(Exception):
    """The disk (or quota) filled while writing a run's file; the message names it."""


@contextlib.contextmanager
def disk_full_as_error(path: str | os.PathLike[str]) -> Iterator[None]:
    """Turn ENOSPC/EDQUOT, and torch.save's short-write RuntimeError that hides them, into
    DiskFull("no space left on device writing <path> (<free> free)")."""
    try:
        yield
    except DiskFull:
        raise
    except Exception as e:
        if is_disk_full(e):
            raise DiskFull(disk_full_message(path)) from None
        raise


def save(path: str | os.PathLike[str], state: dict[str, Any]) -> int:
    """torch.save to a temp file in the same folder, fsync, then rename over `path`; the
    bytes written. DiskFull when the disk fills (the temp file is removed)."""
    target = Path(path)
    with disk_full_as_error(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_with(target, lambda f: torch.save(state, f))
    return target.stat().st_size


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The stored dict, loaded on the CPU with weights_only=True; CheckpointError otherwise."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint not found: {p}")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        text = str(e)
        m = re.search(r"unsupported GLOBAL (\S+)", text, re.IGNORECASE) or re.search(
            r"Unsupported global: GLOBAL (\S+)", text
        )
        if m:
            raise CheckpointError(
                f"refused checkpoint {p}: it would import {m.group(1)} (a pickle that can run "
                "code); only tensors and plain values are loaded"
            ) from None
        if "Unsupported operand" in text:
            raise CheckpointError(f"cannot read checkpoint {p}: not a PyTorch checkpoint") from None
        raise CheckpointError(
            f"refused checkpoint {p}: it holds objects that weights_only loading does not allow"
        ) from None
    except Exception as e:  # noqa: BLE001 - garbage makes the unpickler raise anything
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        first = first.split(". ")[0] if len(first) > 120 else first
        raise CheckpointError(
            f"cannot read checkpoint {p}: corrupt or truncated ({first})"
        ) from None
    if not isinstance(obj, dict):
        raise CheckpointError(
            f"cannot use checkpoint {p}: expected a dict, found {type(obj).__name__}"
        )
    return obj


def is_full(state: dict[str, Any]) -> bool:
    """True for our training checkpoints; False for a bare state_dict (seed format)."""
    return state.get("format") == FORMAT and isinstance(state.get("model"), dict)


def bare_state_dict(state: dict[str, Any], path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The model weights of either format (a full checkpoint's `model`, or the file itself)."""
    if is_full(state):
        return state["model"]
    for key in ("model", "state_dict", "model_state_dict"):
        if isinstance(state.get(key), dict):  # common wrappers of other trainers
            state = state[key]
            break
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(f"cannot use {path}: it holds no tensors")
    return tensors


# --------------------------------------------------------------------------- RNG


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [
            torch.from_numpy(np_state[1].astype(np.int64)),
            *map(int, np_state[2:4]),
            float(np_state[4]),
        ],
        "python": _py_state(random.getstate()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _py_state(s: tuple[Any, ...]) -> list[Any]:
    return [s[0], list(s[1]), s[2]]


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        with contextlib.suppress(RuntimeError):
            torch.cuda.set_rng_state_all(state["cuda"])
