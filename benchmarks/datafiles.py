"""The synthetic files the benchmarks read, made once per suite run in a temporary folder.

The contiguous file comes from the project's generator (`amc_tui.data.synth.synthesize`); the
chunked variants are byte-for-byte copies of its X with another HDF5 layout (copying is much
faster than generating again, and it keeps the frames identical across layouts).
"""

from __future__ import annotations

import time
from pathlib import Path

import h5py
import numpy as np

from amc_tui.data.synth import synthesize

COPY_ROWS = 4096


class Files:
    """Lazily made benchmark files under `root`; `fpc` = frames per (class, SNR) cell."""

    def __init__(self, root: Path, fpc: int, seed: int = 0) -> None:
        self.root = Path(root)
        self.fpc = fpc
        self.seed = seed
        self.timings: dict[str, float] = {}
        self._cache: dict[str, Path] = {}

    def contiguous(self) -> Path:
        if "contiguous" not in self._cache:
            path = self.root / "synth_contiguous.h5"
            t0 = time.perf_counter()
            synthesize(path, "digital", self.fpc, seed=self.seed)
            self.timings["synthesize_s"] = round(time.perf_counter() - t0, 2)
            self._cache["contiguous"] = path
        return self._cache["contiguous"]

    def chunked(self, rows: int = 256, compression: str | None = None) -> Path:
        """A copy with X chunked (rows, 1024, 2) (256 = what `synth --chunked` writes)."""
        key = f"chunked{rows}{compression or ''}"
        if key not in self._cache:
            path = self.root / f"synth_{key}.h5"
            t0 = time.perf_counter()
            copy_layout(self.contiguous(), path, rows, compression)
            self.timings[f"copy_{key}_s"] = round(time.perf_counter() - t0, 2)
            self._cache[key] = path
        return self._cache[key]

    def frames(self, n: int) -> np.ndarray:
        """n frames spread over every (class, SNR) cell of the contiguous file (float32)."""
        with h5py.File(self.contiguous(), "r") as f:
            total = f["X"].shape[0]
            rows = np.unique(np.linspace(0, total - 1, min(n, total)).astype(np.int64))
            return f["X"][rows]


def copy_layout(src: Path, dst: Path, rows: int, compression: str | None = None) -> None:
    """Copy a RadioML file with X re-chunked to (rows, 1024, 2)."""
    with h5py.File(src, "r") as fi, h5py.File(dst, "w") as fo:
        x = fi["X"]
        opts: dict[str, object] = {"chunks": (min(rows, x.shape[0]), *x.shape[1:])}
        if compression:
            opts["compression"] = compression
        out = fo.create_dataset("X", shape=x.shape, dtype=x.dtype, **opts)
        for a in range(0, x.shape[0], COPY_ROWS):
            out[a : a + COPY_ROWS] = x[a : a + COPY_ROWS]
        for name in ("Y", "Z"):
            fo.create_dataset(name, data=fi[name][...])
        for k, v in fi.attrs.items():
            fo.attrs[k] = v
