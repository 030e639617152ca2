"""The explain export (`export/explain/<method>-<split>/`): its layout, the SNR bands and rings
it is summarised by, the sanity rule, and reading it back. Torch-free: the trainer-side writer
(`train/explain.py`), the figures, the app and RUNLOG all use this one definition.

Why a sanity rule with every map: a saliency method can draw convincing pictures that do not
depend on what the model learned (Adebayo et al., NeurIPS 2018, "Sanity Checks for Saliency
Maps"). The same maps are computed for the same frames with the model's weights re-initialised,
and the rank correlation of |map| between the two models is reported; a correlation at or above
`SANITY_THRESHOLD` means the map explains the input, not the model, and is called meaningless.

Layout of one export folder:

- `params.json`: what the cells were computed with (method, split, frames per cell, the
  checkpoint file and its size and mtime, IG steps); a rerun with other parameters starts over;
- `cells/<modulation>@<band>.npz`: per cell, written atomically as it finishes (a rerun skips
  the cells already there): `image` (C, H, W) mean input image; `mod`, `snr` (C, H, W) mean
  |attribution| of each head with each frame's map scaled to sum 1; `mod_random`, `snr_random`
  the same with randomised weights; `sim_mod`, `sim_snr` (n,) per-frame rank correlations;
  `correct_mod`, `correct_snr` (n,) whether the trained model got each frame right;
- `summary.json`, written last: parameters, classes, bands, channel ranges, per cell {n,
  similarity, accuracy, rings per head}, and `sanity` {randomized_similarity {mod, snr,
  overall}, threshold, passed, verdict}.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amc_tui import report
from amc_tui.errors import UserError
from amc_tui.fsutil import read_json
from amc_tui.run.rundir import RunDir

if TYPE_CHECKING:
    import numpy as np

EXPLAIN_DIR = "explain"
SUMMARY_FILE = "summary.json"
PARAMS_FILE = "params.json"
CELLS_DIR = "cells"
HEADS = ("mod", "snr")
HEAD_NAMES = {"mod": "modulation", "snr": "SNR"}
METHODS = ("ig", "occlusion", "input")  # input: the image itself, weight-independent (a control)
METHOD_NAMES = {"ig": "integrated gradients", "occlusion": "occlusion", "input": "input (control)"}
SPLITS = ("test", "val")
DEFAULT_FRAMES = 16  # frames per cell: 17 x 3 cells x 16 frames is ~1 min of IG on 2 CPU cores

# SNR bands (dB, inclusive): below -4 dB the constellation is mostly noise, from 10 dB on its
# points are resolved; RadioML's SNRs are even, so every SNR lands in exactly one band.
BANDS: tuple[tuple[str, float, float], ...] = (
    ("low", -math.inf, -6),
    ("mid", -4, 8),
    ("high", 10, math.inf),
)
BAND_NAMES = tuple(b[0] for b in BANDS)

# Rings by the distance from the origin in units of the frame's RMS amplitude (frames are
# scaled to unit power before binning): the centre, the unit ring where a unit-power
# constellation's points sit, and the outer tail (noise, outer QAM/APSK points).
RING_EDGES = (0.5, 1.25)
RING_NAMES = ("centre", "ring", "outer")

# The model-randomisation test: mean per-frame Spearman correlation of |map| (trained vs
# re-initialised weights) at or above this is "meaningless". The paper sets no threshold;
# 0.5 is ours: a pixel ranking that much alike without the learned weights is the input's.
SANITY_THRESHOLD = 0.5


def band_of(snr_db: float) -> str | None:
    for name, lo, hi in BANDS:
        if lo <= snr_db <= hi:
            return name
    return None


def band_text(name: str) -> str:
    """`low (<= -6 dB)`, `mid (-4..8 dB)`, `high (>= 10 dB)`."""
    _, lo, hi = next(b for b in BANDS if b[0] == name)
    if lo == -math.inf:
        return f"{name} (<= {hi:g} dB)"
    if hi == math.inf:
        return f"{name} (>= {lo:g} dB)"
    return f"{name} ({lo:g}..{hi:g} dB)"


def parse_cells(
    text: str | None, classes: Sequence[str], bands: Sequence[str] = BAND_NAMES
) -> tuple[list[str], list[str]]:
    """`--cells`: `MOD,MOD[@BAND,BAND]`, `@BAND` (every modulation) or empty (every cell).
    Names are matched without regard to case; an unknown one raises UserError naming the
    valid ones."""
    mods_text, _, bands_text = (text or "").partition("@")

    def pick(part: str, valid: Sequence[str], what: str) -> list[str]:
        names = [n.strip() for n in part.split(",") if n.strip()]
        if not names:
            return list(valid)
        by_lower = {v.lower(): v for v in valid}
        out = []
        for n in names:
            if n.lower() not in by_lower:
                raise UserError(f"--cells: unknown {what} {n!r}; choose from {', '.join(valid)}")
            out.append(by_lower[n.lower()])
        return [v for v in valid if v in out]

    return pick(mods_text, classes, "modulation"), pick(bands_text, bands, "SNR band")


def export_dir(run_dir: str | os.PathLike[str], method: str, split: str) -> Path:
    return RunDir(Path(run_dir)).export / EXPLAIN_DIR / f"{method}-{split}"


def cell_file(folder: Path, mod: str, band: str) -> Path:
    return folder / CELLS_DIR / f"{mod}@{band}.npz"


def checkpoint_of(run: RunDir) -> Path:
    """The weights explained: best.pt, else last.pt; UserError (one line) when neither."""
    for p in (run.best_ckpt, run.last_ckpt):
        if p.is_file():
            return p
    raise UserError(f"{run.name}: no checkpoint to explain (neither best.pt nor last.pt)")


# --------------------------------------------------------------------------- maths


def _ranks(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata  # scipy (~0.3 s): only where maps are compared

    return rankdata(x, axis=-1)


def rank_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman correlation of |a| and |b| per frame (first axis), over the pixels where
    either map is non-zero: a pixel both maps leave at exactly 0 (an empty histogram bin under
    a method that multiplies by the input) is 0 for any weights and would only add ties.
    A frame with fewer than 3 such pixels or a constant map gives NaN."""
    import numpy as np  # numpy: only the maths and the cell files; `ls` reads RUNLOG entries

    a = np.abs(np.asarray(a, dtype=np.float64)).reshape(len(a), -1)
    b = np.abs(np.asarray(b, dtype=np.float64)).reshape(len(b), -1)
    out = np.full(len(a), np.nan)
    for i in range(len(a)):
        keep = (a[i] != 0) | (b[i] != 0)
        if keep.sum() < 3:
            continue
        ra, rb = _ranks(a[i, keep]), _ranks(b[i, keep])
        ra, rb = ra - ra.mean(), rb - rb.mean()
        den = math.sqrt(float((ra * ra).sum() * (rb * rb).sum()))
        if den > 0:
            out[i] = float((ra * rb).sum() / den)
    return out


def normalized(maps: np.ndarray) -> np.ndarray:
    """|map| of each frame scaled to sum 1 (a frame whose map is all zero stays zero), so
    every frame weighs the same in a cell's mean."""
    import numpy as np  # numpy: only the maths and the cell files; `ls` reads RUNLOG entries

    m = np.abs(np.asarray(maps, dtype=np.float64))
    s = m.reshape(len(m), -1).sum(axis=1)
    s[s == 0] = 1.0
    return m / s.reshape((-1,) + (1,) * (m.ndim - 1))


def pixel_radius(size: int, half_width: float) -> np.ndarray:
    """(size, size) distance of each bin's centre from the origin, for a channel whose bins
    span [-half_width, half_width] on both axes."""
    import numpy as np  # numpy: only the maths and the cell files; `ls` reads RUNLOG entries

    centres = (np.arange(size) + 0.5) * (2 * half_width / size) - half_width
    return np.hypot(centres[None, :], centres[:, None])


def ring_shares(maps: np.ndarray, ranges: Sequence[float]) -> dict[str, float]:
    """Share of a (C, H, W) map's mass in each ring (RING_NAMES), channels pooled: channel c
    spans +-ranges[c] (the zoomed channels count their own, smaller, radii)."""
    import numpy as np  # numpy: only the maths and the cell files; `ls` reads RUNLOG entries

    m = np.abs(np.asarray(maps, dtype=np.float64))
    totals = np.zeros(len(RING_NAMES))
    for c in range(m.shape[0]):
        ring = np.digitize(pixel_radius(m.shape[-1], ranges[c]), RING_EDGES)
        totals += np.bincount(ring.ravel(), weights=m[c].ravel(), minlength=len(RING_NAMES))
    total = totals.sum()
    shares = totals / total if total > 0 else totals
    return {n: round(float(s), 4) for n, s in zip(RING_NAMES, shares, strict=True)}


def verdict(similarity: float | None, threshold: float = SANITY_THRESHOLD) -> tuple[bool, str]:
    """(passed, one line) of the model-randomisation test."""
    if similarity is None or not math.isfinite(similarity):
        return False, "sanity check not available (no frame gave a comparable map)"
    rho = f"rho = {similarity:.2f}"
    if similarity >= threshold:
        return False, (
            f"MEANINGLESS: the map does not depend on the weights ({rho} with randomised "
            f"weights, >= {threshold:g})"
        )
    return True, f"passes the sanity check ({rho} with randomised weights, < {threshold:g})"


def mean_or_none(values: Sequence[float]) -> float | None:
    vals = [float(v) for v in values if v is not None and math.isfinite(v)]
    return round(sum(vals) / len(vals), 4) if vals else None


# --------------------------------------------------------------------------- files


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    import numpy as np  # numpy: only the maths and the cell files; `ls` reads RUNLOG entries

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def load_cell(folder: Path, mod: str, band: str) -> dict[str, np.ndarray] | None:
    """A cell's arrays, or None when missing or unreadable."""
    import numpy as np  # numpy: only the maths and the cell files; `ls` reads RUNLOG entries

    try:
        with np.load(cell_file(folder, mod, band)) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, KeyError):
        return None


@dataclass(frozen=True)
class ExplainExport:
    """One finished export folder (its summary.json read)."""

    folder: Path
    summary: dict[str, Any]

    @property
    def method(self) -> str:
        return str(self.summary.get("method", "?"))

    @property
    def split(self) -> str:
        return str(self.summary.get("split", "?"))

    @property
    def cells(self) -> list[dict[str, Any]]:
        return list(self.summary.get("cells") or [])

    @property
    def sanity(self) -> dict[str, Any]:
        return dict(self.summary.get("sanity") or {})

    def cell(self, mod: str, band: str) -> dict[str, np.ndarray] | None:
        return load_cell(self.folder, mod, band)

    def rho(self, head: str = "overall") -> float | None:
        """The randomised-weights similarity of one head (or `overall`)."""
        value = (self.sanity.get("randomized_similarity") or {}).get(head)
        return float(value) if isinstance(value, int | float) else None

    def sanity_line(self, head: str = "overall") -> str:
        threshold = self.sanity.get("threshold", SANITY_THRESHOLD)
        return verdict(self.rho(head), float(threshold))[1]


def read_export(folder: str | os.PathLike[str]) -> ExplainExport | None:
    summary = read_json(Path(folder) / SUMMARY_FILE)
    return ExplainExport(Path(folder), summary) if isinstance(summary, dict) else None


def list_exports(run_dir: str | os.PathLike[str]) -> list[ExplainExport]:
    """A run's finished explain exports, the default method first (ig, occlusion, input),
    test before val."""
    root = RunDir(Path(run_dir)).export / EXPLAIN_DIR
    try:
        folders = [p for p in root.iterdir() if p.is_dir()]
    except OSError:
        return []
    found = [e for p in folders if (e := read_export(p)) is not None]

    def key(e: ExplainExport) -> tuple[int, int, str]:
        m = METHODS.index(e.method) if e.method in METHODS else len(METHODS)
        s = SPLITS.index(e.split) if e.split in SPLITS else len(SPLITS)
        return m, s, e.folder.name

    return sorted(found, key=key)


def head_rings(export: ExplainExport, head: str, what: str = "map") -> dict[str, float] | None:
    """Ring shares of one head's attribution (`what` = "map"), of the same with randomised
    weights ("random") or of the mean image ("image"), over the export's cells with frames,
    each cell weighing the same."""
    table, key = {"map": ("rings", head), "random": ("rings_random", head),
                  "image": ("rings", "image")}[what]  # fmt: skip
    rows = [c[table][key] for c in export.cells
            if c.get("n") and isinstance(c.get(table), dict) and key in c[table]]  # fmt: skip
    if not rows:
        return None
    return {n: round(sum(r[n] for r in rows) / len(rows), 4) for n in RING_NAMES}


def rings_text(rings: dict[str, float] | None) -> str:
    if not rings:
        return "-"
    return ", ".join(f"{n} {report.pct(rings[n], 0)}" for n in RING_NAMES)
