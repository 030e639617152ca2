"""Choose rows by label (class, SNR) and split them train/val/test, stratified per cell.

Why: the file's row order is never trusted (files from other programs may be shuffled or hold
extra classes), and a split must be identical on any machine for the same config: every random
choice uses numpy's PCG64 seeded from (seed, purpose, class, SNR) via SeedSequence, never
Python's hash() or global state, and each cell's choice is independent of the other cells.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from amc_tui.data.classes import CLASS_INDEX, DEFAULT_SPLIT, N_CLASSES, SNR_MIN, SNR_STEP, SNRS
from amc_tui.errors import DataError

SPLIT_NAMES = ("train", "val", "test")
_CAP, _SPLIT = 1, 2  # purposes mixed into the per-cell seeds


def cell_rng(seed: int, purpose: int, class_name: str, snr_db: int) -> np.random.Generator:
    """A generator for one (class, SNR) cell and purpose, the same on every platform."""
    entropy = [int(seed) % 2**63, purpose, CLASS_INDEX[class_name], int(snr_db) - SNR_MIN]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))


@dataclass
class Selection:
    """Selected file rows with their labels as indices into `classes` and `snrs`."""

    rows: np.ndarray  # int64 file row indices
    mod: np.ndarray  # int64 index into classes
    snr: np.ndarray  # int64 index into snrs
    classes: list[str] = field(default_factory=list)
    snrs: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    def cell(self) -> np.ndarray:
        """Flat cell index mod * len(snrs) + snr per row."""
        return self.mod * len(self.snrs) + self.snr

    def take(self, idx: np.ndarray) -> Selection:
        return Selection(self.rows[idx], self.mod[idx], self.snr[idx], self.classes, self.snrs)


def _cells_text(cells: list[tuple[str, int]], limit: int = 8) -> str:
    text = ", ".join(f"{c}@{s}dB" for c, s in cells[:limit])
    return text + (f" (+{len(cells) - limit} more)" if len(cells) > limit else "")


def select(
    class_col: np.ndarray,
    snr_db: np.ndarray,
    classes: Sequence[str],
    snrs: Sequence[int],
    frames_per_cell: int = 0,
    seed: int = 42,
) -> Selection:
    """Rows whose label is in `classes` x `snrs`, at most `frames_per_cell` per cell
    (0 = all; a seeded random subset otherwise). Rows come back grouped by cell, each cell's
    rows ascending. Raises DataError naming the requested cells that have no frames."""
    classes, snrs = list(classes), [int(s) for s in snrs]
    class_map = np.full(N_CLASSES, -1, dtype=np.int64)
    class_map[[CLASS_INDEX[c] for c in classes]] = np.arange(len(classes))
    snr_map = np.full(len(SNRS), -1, dtype=np.int64)
    snr_map[[(s - SNR_MIN) // SNR_STEP for s in snrs]] = np.arange(len(snrs))
    mod = class_map[np.asarray(class_col, dtype=np.int64)]
    snr = snr_map[(np.asarray(snr_db, dtype=np.int64) - SNR_MIN) // SNR_STEP]
    rows = np.flatnonzero((mod >= 0) & (snr >= 0))
    cell = mod[rows] * len(snrs) + snr[rows]
    order = np.argsort(cell, kind="stable")  # by cell, rows ascending within a cell
    rows, cell = rows[order], cell[order]
    counts = np.bincount(cell, minlength=len(classes) * len(snrs))
    empty = [(classes[i // len(snrs)], snrs[i % len(snrs)]) for i in np.flatnonzero(counts == 0)]
    if empty:
        raise DataError(
            f"no frames for {len(empty)} requested (class, SNR) cell(s): {_cells_text(empty)}; "
            "the file lacks them (check data.classes, snr_min, snr_max)"
        )
    cap = int(frames_per_cell)
    if cap > 0 and counts.max() > cap:
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        keep = []
        for i, (start, count) in enumerate(zip(starts.tolist(), counts.tolist(), strict=True)):
            if count <= cap:
                keep.append(np.arange(start, start + count))
            else:
                rng = cell_rng(seed, _CAP, classes[i // len(snrs)], snrs[i % len(snrs)])
                keep.append(start + np.sort(rng.choice(count, size=cap, replace=False)))
        idx = np.concatenate(keep)
        rows, cell = rows[idx], cell[idx]
    return Selection(
        rows.astype(np.int64),
        (cell // len(snrs)).astype(np.int64),
        (cell % len(snrs)).astype(np.int64),
        classes,
        snrs,
    )


def split_counts(n: int, shares: Sequence[float], rng: np.random.Generator) -> list[int]:
    """Largest-remainder counts summing to n, each within one of n*share; ties broken by
    `rng` so no part is systematically favoured in small cells."""
    exact = np.asarray(shares, dtype=np.float64) * n
    counts = np.floor(exact + 1e-9).astype(np.int64)
    rest = int(n - counts.sum())
    if rest > 0:
        frac = exact - counts
        tiebreak = rng.random(len(frac))
        order = np.lexsort((tiebreak, -frac))
        counts[order[:rest]] += 1
    return counts.tolist()


def split(
    sel: Selection, shares: Sequence[float] = DEFAULT_SPLIT, seed: int = 42
) -> dict[str, Selection]:
    """train/val/test, disjoint and covering `sel`, stratified per (class, SNR) cell with
    per-cell counts within one frame of the shares; each part's rows ascending."""
    shares = [float(s) for s in shares]
    if len(shares) != 3 or min(shares) < 0 or abs(sum(shares) - 1) > 1e-6:
        raise DataError(f"split shares {shares}; expected three non-negative numbers summing to 1")
    n_snr = len(sel.snrs)
    cell = sel.cell()
    order = np.argsort(cell, kind="stable")
    counts = np.bincount(cell, minlength=len(sel.classes) * n_snr)
    parts: list[list[np.ndarray]] = [[], [], []]
    start = 0
    for i, count in enumerate(counts.tolist()):
        if count == 0:
            continue
        members = order[start : start + count]
        start += count
        members = members[np.argsort(sel.rows[members], kind="stable")]  # row order, canonical
        rng = cell_rng(seed, _SPLIT, sel.classes[i // n_snr], sel.snrs[i % n_snr])
        members = members[rng.permutation(count)]
        bounds = np.cumsum([0, *split_counts(count, shares, rng)])
        for k in range(3):
            parts[k].append(members[bounds[k] : bounds[k + 1]])
    out = {}
    for name, chunks in zip(SPLIT_NAMES, parts, strict=True):
        idx = np.concatenate(chunks) if chunks else np.empty(0, dtype=np.int64)
        idx = idx[np.argsort(sel.rows[idx], kind="stable")]
        out[name] = sel.take(idx)
    return out


def min_frames_per_cell(shares: Sequence[float]) -> int:
    """The fewest frames per (class, SNR) cell for which `split_counts` gives every part with
    a share > 0 at least one frame, whatever its random tie-breaks."""
    shares = [float(x) for x in shares]
    for n in range(1, 1_000_001):
        exact = [n * x for x in shares]
        floors = [math.floor(e + 1e-9) for e in exact]
        rest = n - sum(floors)
        frac = [e - f for e, f in zip(exact, floors, strict=True)]
        ok = True
        for x, f, fr in zip(shares, floors, frac, strict=True):
            if x <= 0 or f >= 1:
                continue
            ahead = sum(1 for o in frac if o > fr)  # parts surely served before this one
            tied = sum(1 for o in frac if o == fr)  # parts that may be served before it
            ok = ok and ahead + tied <= rest
        if ok:
            return n
    raise ValueError(f"no frames-per-cell count fills every part of {shares}")


def check_split(sel: Selection, parts: dict[str, Selection], shares: Sequence[float]) -> None:
    """Refuse a split that leaves validation (or test, when asked for) with no frames: a run
    on it would report 0 % everywhere and call epoch 1 its best. The message names the frames
    per cell and the smallest count that works."""
    shares = [float(x) for x in shares]
    labels = {"val": "validation", "test": "test"}
    for name, share in zip(SPLIT_NAMES[1:], shares[1:], strict=True):
        if share <= 0 or len(parts[name]) > 0:
            continue
        counts = np.bincount(sel.cell()) if len(sel) else np.zeros(1, dtype=np.int64)
        counts = counts[counts > 0] if (counts > 0).any() else counts
        lo, hi = int(counts.min()), int(counts.max())
        have = str(lo) if lo == hi else f"{lo}..{hi}"
        raise DataError(
            f"data.split {shares} leaves the {labels[name]} split with 0 frames: {have} frames per "
            f"(class, SNR) cell, and this split needs at least {min_frames_per_cell(shares)} "
            "per cell (raise data.frames_per_cell, make more frames per cell, or change the split)"
        )
