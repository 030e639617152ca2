"""Open and validate a RadioML 2018.01A-layout HDF5 file (X, Y, Z), read labels and frames.

Why: the real file is 20 GB with 2.5 M rows; a wrong or partial file must fail at once with
one line that names the dataset and what was expected and found, and labels must be read in
blocks (Y alone is 490 MB). Row order is never trusted: callers select rows by Y and Z.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from amc_tui.data.classes import (
    CLASSES,
    DEFAULT_SPLIT,
    FRAME_LEN,
    N_CLASSES,
    SNR_MAX,
    SNR_MIN,
    SNR_STEP,
    SNRS,
)
from amc_tui.data.select import min_frames_per_cell
from amc_tui.errors import DataError

LABEL_BLOCK = 1 << 16  # rows of Y/Z per read: 64 Ki x 24 x int64 = 12.6 MB
X_DTYPES = (np.float32, np.float16, np.float64)
CHUNK_CACHE_BYTES = 64 << 20
READ_BLOCK = 4096  # rows: the most one slab read of X may cover (32 MB of float32)


def _shape(s: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(v) for v in s) + ")"


class RadioMLFile:
    """An open, structurally validated RadioML file. Use `RadioMLFile.open(path)`.

    Structure (presence, shapes, dtypes, row counts) is checked on open; the label values
    (Y one-hot, Z on the SNR grid) are checked in the single block pass of `labels()`.
    """

    def __init__(self, path: Path, h5: h5py.File) -> None:
        self.path = path
        self._h5 = h5
        self.notes: list[str] = []
        self._labels: tuple[np.ndarray, np.ndarray] | None = None
        self._validate()

    # ----------------------------------------------------------------- opening

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> RadioMLFile:
        p = Path(path)
        if not p.exists():
            raise DataError(
                f"data file {p} not found; `amc-tui data synth {p}` makes a synthetic one"
            )
        if p.is_dir():
            raise DataError(f"data file {p} is a directory; expected an HDF5 file")
        try:
            is_h5 = h5py.is_hdf5(str(p))
        except OSError as e:
            raise DataError(f"data file {p} cannot be read: {e}") from None
        if not is_h5:
            raise DataError(f"data file {p} is not an HDF5 file (expected RadioML X, Y, Z)")
        try:
            h5 = h5py.File(p, "r", rdcc_nbytes=CHUNK_CACHE_BYTES)
        except OSError as e:
            raise DataError(f"data file {p} cannot be opened as HDF5: {e}") from None
        try:
            return cls(p, h5)
        except BaseException:
            h5.close()
            raise

    def _err(self, msg: str) -> DataError:
        return DataError(f"{self.path}: {msg}")

    def _dataset(self, name: str) -> h5py.Dataset:
        obj = self._h5.get(name)
        if obj is None:
            present = ", ".join(sorted(self._h5.keys())) or "nothing"
            return_msg = f"dataset '{name}' missing; expected X, Y, Z, found {present}"
            raise self._err(return_msg)
        if not isinstance(obj, h5py.Dataset):
            raise self._err(f"'{name}' is a {type(obj).__name__}, expected a dataset")
        return obj

    def _validate(self) -> None:
        x, y, z = (self._dataset(k) for k in ("X", "Y", "Z"))
        if x.ndim != 3 or x.shape[1:] != (FRAME_LEN, 2):
            raise self._err(
                f"dataset 'X' has shape {_shape(x.shape)}; expected (N, {FRAME_LEN}, 2)"
            )
        if x.dtype.kind != "f" or x.dtype.itemsize not in (2, 4, 8):
            raise self._err(f"dataset 'X' has dtype {x.dtype}; expected float32")
        if x.dtype != np.float32:
            self.notes.append(f"X is {x.dtype}, converted to float32 on read")
        if y.ndim != 2 or y.shape[1] != N_CLASSES:
            raise self._err(
                f"dataset 'Y' has shape {_shape(y.shape)}; expected (N, {N_CLASSES}) one-hot"
            )
        if y.dtype.kind not in "iubf":
            raise self._err(f"dataset 'Y' has dtype {y.dtype}; expected int64 one-hot")
        if z.ndim == 1:
            self.notes.append("Z has shape (N,), read as (N, 1)")
        elif z.ndim != 2 or z.shape[1] != 1:
            raise self._err(f"dataset 'Z' has shape {_shape(z.shape)}; expected (N, 1)")
        if z.dtype.kind not in "iuf":
            raise self._err(f"dataset 'Z' has dtype {z.dtype}; expected int64 SNR in dB")
        n = {"X": x.shape[0], "Y": y.shape[0], "Z": z.shape[0]}
        if len(set(n.values())) != 1:
            found = ", ".join(f"{k} {v}" for k, v in n.items())
            raise self._err(f"datasets X, Y, Z differ in row count: {found}; expected equal")
        if n["X"] == 0:
            raise self._err("dataset 'X' has 0 rows; expected at least one frame")
        self._x, self._y, self._z = x, y, z
        self._describe()

    # ----------------------------------------------------------------- properties
    # (fixed at open, so they stay readable after close())

    def _describe(self) -> None:
        x = self._x
        self.n_frames = int(x.shape[0])
        self.x_dtype: np.dtype = x.dtype
        self.dtypes = {"X": str(x.dtype), "Y": str(self._y.dtype), "Z": str(self._z.dtype)}
        self.chunks = None if x.chunks is None else tuple(int(c) for c in x.chunks)
        self.chunk_rows = None if self.chunks is None else self.chunks[0]  # rows per chunk
        if self.chunks is None:
            self.layout = "contiguous"
        else:
            nfilters = x.id.get_create_plist().get_nfilters()
            self.layout = "compressed" if nfilters > 0 else "chunked"
        # byte offset of X when a numpy memmap can read it directly
        self.x_offset: int | None = None
        if self.layout == "contiguous" and x.dtype.byteorder != ">":
            offset = x.id.get_offset()
            self.x_offset = None if offset is None else int(offset)

    # ----------------------------------------------------------------- reading

    def labels(self) -> tuple[np.ndarray, np.ndarray]:
        """(class column int16 (N,), SNR dB int16 (N,)), validated in one block pass.

        Raises DataError for a Y row that is not exactly one 1 among zeros, or a Z value off
        the -20..30 step-2 grid, naming the first offending row."""
        if self._labels is not None:
            return self._labels
        n = self.n_frames
        cls = np.empty(n, dtype=np.int16)
        snr = np.empty(n, dtype=np.int16)
        for a in range(0, n, LABEL_BLOCK):
            b = min(n, a + LABEL_BLOCK)
            yb = self._y[a:b]
            ones = yb == 1
            good = (ones.sum(axis=1) == 1) & ((ones | (yb == 0)).all(axis=1))
            if not good.all():
                r = int(np.flatnonzero(~good)[0])
                row = yb[r]
                found = ",".join(str(v) for v in row.tolist())
                raise self._err(
                    f"dataset 'Y' row {a + r} is not one-hot: expected exactly one 1 and "
                    f"{N_CLASSES - 1} zeros, found [{found}]"
                )
            cls[a:b] = ones.argmax(axis=1)
            zb = np.asarray(self._z[a:b]).reshape(-1)
            zi = np.rint(zb).astype(np.int64) if zb.dtype.kind == "f" else zb.astype(np.int64)
            on_grid = (
                (zi >= SNR_MIN) & (zi <= SNR_MAX) & ((zi - SNR_MIN) % SNR_STEP == 0) & (zi == zb)
            )
            if not on_grid.all():
                r = int(np.flatnonzero(~on_grid)[0])
                raise self._err(
                    f"dataset 'Z' row {a + r} is {zb[r]}; expected an SNR in dB on the grid "
                    f"{SNR_MIN}..{SNR_MAX} step {SNR_STEP}"
                )
            snr[a:b] = zi
        self._labels = (cls, snr)
        return self._labels

    def read_x(self, rows: np.ndarray, gap: int | None = None) -> np.ndarray:
        """float32 (len(rows), 1024, 2) frames for sorted unique `rows`.

        Rows closer than `gap` are read as one slab (default: the chunk size for chunked
        files, so each chunk is decoded once; 32 rows otherwise), and no slab crosses an
        aligned block of READ_BLOCK rows (rounded to whole chunks), which bounds the memory
        of a read at ~32 MB whatever the spacing of the rows."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), FRAME_LEN, 2), dtype=np.float32)
        if len(rows) == 0:
            return out
        if np.any(np.diff(rows) <= 0):
            raise ValueError("read_x needs sorted unique rows")
        if rows[0] < 0 or rows[-1] >= self.n_frames:
            raise IndexError(f"rows outside 0..{self.n_frames - 1}")
        if gap is None:
            gap = self.chunk_rows or 32
        block = READ_BLOCK
        if self.chunk_rows:
            block = self.chunk_rows * max(1, READ_BLOCK // self.chunk_rows)
        cut = (np.diff(rows) > gap) | (np.diff(rows // block) != 0)
        breaks = np.flatnonzero(cut) + 1
        starts = np.concatenate([[0], breaks]).tolist()
        ends = np.concatenate([breaks, [len(rows)]]).tolist()
        for s, e in zip(starts, ends, strict=True):
            lo, hi = int(rows[s]), int(rows[e - 1]) + 1
            if hi - lo == e - s:
                self._x.read_direct(out, np.s_[lo:hi], np.s_[s:e])
            else:
                out[s:e] = self._x[lo:hi][rows[s:e] - lo]
        return out

    def close(self) -> None:
        self._h5.close()

    def __enter__(self) -> RadioMLFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- inspect


def inspect_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A JSON-safe report: counts per class, SNR and cell, layout, dtypes, problems.

    Fatal problems raise DataError; `problems` lists what still lets the file be used."""
    with RadioMLFile.open(path) as f:
        cls, snr = f.labels()
        layout, dtypes, n, notes = f.layout, f.dtypes, f.n_frames, list(f.notes)
        chunks = None if f.chunks is None else list(f.chunks)
    cell = cls.astype(np.int64) * len(SNRS) + (snr.astype(np.int64) - SNR_MIN) // SNR_STEP
    grid = np.bincount(cell, minlength=N_CLASSES * len(SNRS)).reshape(N_CLASSES, len(SNRS))
    per_class, per_snr = grid.sum(axis=1), grid.sum(axis=0)
    present = grid[grid > 0]
    problems = list(notes)
    cls_present = np.flatnonzero(per_class)
    snr_present = np.flatnonzero(per_snr)
    sub = grid[np.ix_(cls_present, snr_present)]
    missing = [
        f"{CLASSES[cls_present[i]]}@{SNRS[snr_present[j]]}dB" for i, j in np.argwhere(sub == 0)
    ]
    if missing:
        more = f" (+{len(missing) - 10} more)" if len(missing) > 10 else ""
        problems.append(
            f"{len(missing)} (class, SNR) cells empty among the classes and SNRs present: "
            f"{', '.join(missing[:10])}{more}"
        )
    if present.size and present.min() != present.max():
        problems.append(f"frames per cell vary: {int(present.min())}..{int(present.max())}")

    need = min_frames_per_cell(DEFAULT_SPLIT)
    few = int((present < need).sum())
    if few:
        problems.append(
            f"{few} cell(s) have fewer than {need} frames: the default split "
            f"{'/'.join(str(x) for x in DEFAULT_SPLIT)} leaves them without validation or test "
            "frames"
        )
    return {
        "path": str(path),
        "frames": int(n),
        "classes": {CLASSES[i]: int(per_class[i]) for i in cls_present},
        "snrs": {str(SNRS[j]): int(per_snr[j]) for j in snr_present},
        "cells": int(present.size),
        "frames_per_cell": {
            "min": int(present.min()) if present.size else 0,
            "max": int(present.max()) if present.size else 0,
        },
        "layout": layout,
        "chunks": chunks,
        "dtypes": dtypes,
        "problems": problems,
    }


def format_inspection(report: dict[str, Any]) -> str:
    """The inspect report for people: one block of aligned lines."""
    fpc = report["frames_per_cell"]
    fpc_text = str(fpc["min"]) if fpc["min"] == fpc["max"] else f"{fpc['min']}..{fpc['max']}"
    d = report["dtypes"]
    layout = report["layout"]
    if report.get("chunks"):
        layout += f" (chunks {_shape(tuple(report['chunks']))})"
    lines = [
        f"file     {report['path']}",
        f"frames   {report['frames']:,}",
        f"layout   {layout}",
        f"dtypes   X {d['X']}, Y {d['Y']}, Z {d['Z']}",
        f"cells    {report['cells']} ({len(report['classes'])} classes x "
        f"{len(report['snrs'])} SNRs), {fpc_text} frames per cell",
        "classes  " + ", ".join(f"{k} {v}" for k, v in report["classes"].items()),
        "snrs     " + ", ".join(f"{k} {v}" for k, v in report["snrs"].items()),
    ]
    if report["problems"]:
        lines.append("problems")
        lines += [f"  - {p}" for p in report["problems"]]
    else:
        lines.append("problems none")
    return "\n".join(lines)
