"""Shared helpers for data-layer tests: small RadioML-layout files written in temp folders.

Import explicitly: `from data_fixtures import write_radioml, foreign_file, synth_small_file`.
`write_radioml` is plain h5py code (no amc_tui), standing in for "a file from another program".
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from amc_tui.data.classes import CLASSES, FRAME_LEN, N_CLASSES


def write_radioml(
    path: Path,
    x: np.ndarray | None,
    y: np.ndarray | None,
    z: np.ndarray | None,
    **dataset_opts: object,
) -> Path:
    """Write X, Y, Z as given (None = leave the dataset out); options go to X's dataset."""
    with h5py.File(path, "w") as f:
        if x is not None:
            f.create_dataset("X", data=x, **dataset_opts)
        if y is not None:
            f.create_dataset("Y", data=y)
        if z is not None:
            f.create_dataset("Z", data=z)
    return path


def one_hot(class_idx: np.ndarray) -> np.ndarray:
    y = np.zeros((len(class_idx), N_CLASSES), dtype=np.int64)
    y[np.arange(len(class_idx)), class_idx] = 1
    return y


def labelled_frames(class_idx: np.ndarray, snr_db: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Frames that carry their own label: sample 0 = (class, snr), sample 1 = (id, -id),
    the rest a deterministic pattern of the id; any mix-up of rows shows in a test."""
    n = len(class_idx)
    x = np.empty((n, FRAME_LEN, 2), dtype=np.float32)
    t = np.arange(FRAME_LEN, dtype=np.float32)
    x[:, :, 0] = np.sin(0.01 * (ids[:, None] + 1) * t)
    x[:, :, 1] = np.cos(0.01 * (ids[:, None] + 1) * t)
    x[:, 0, 0], x[:, 0, 1] = class_idx, snr_db
    x[:, 1, 0], x[:, 1, 1] = ids, -ids
    return x


def foreign_file(
    path: Path,
    classes: list[str],
    snrs: list[int],
    per_cell: int,
    seed: int = 7,
    **dataset_opts: object,
) -> tuple[Path, np.ndarray, np.ndarray]:
    """A DeepSig-layout file with rows in random order; returns (path, class_idx, snr_db)
    per file row. Each frame encodes its label (see `labelled_frames`)."""
    rng = np.random.default_rng(seed)
    cls = np.repeat([CLASSES.index(c) for c in classes], len(snrs) * per_cell)
    snr = np.tile(np.repeat(snrs, per_cell), len(classes))
    perm = rng.permutation(len(cls))
    cls, snr = cls[perm], snr[perm]
    ids = np.arange(len(cls))
    write_radioml(
        path, labelled_frames(cls, snr, ids), one_hot(cls), snr[:, None].astype(np.int64),
        **dataset_opts,
    )  # fmt: skip
    return path, cls, snr


_SMALL: dict[int, Path] = {}


def synth_small_file(factory: pytest.TempPathFactory) -> Path:
    """17 digital classes x 26 SNRs x 8 frames, contiguous; made once per test session.

    Wrap it in a module fixture that passes `tmp_path_factory`."""
    from amc_tui.data.synth import synthesize

    key = id(factory)
    if key not in _SMALL:
        path = factory.mktemp("synth") / "small.h5"
        synthesize(path, frames_per_cell=8, seed=0)
        _SMALL[key] = path
    return _SMALL[key]
