"""The tables AMC papers lead with, over one export, by stated rules (docs/ANALYSIS.md).

- The noise floor: the SNRs where the modulation head is not clearly above chance: its Wilson
  95 % lower bound over the SNR's frames does not pass chance (1 / classes) plus a tenth of the
  way from chance to 100 % (`FLOOR_MARGIN`; with ~10 k frames an SNR a point above chance is
  "significant" yet still noise). Named in one line instead of listed cell by cell.
- Hardest cells: (modulation, SNR) cells above the floor, ranked by the Wilson upper bound of
  their accuracy (a cell is hard when even its best case is low), never one with fewer than
  `MIN_N` frames; cells too small are pooled into SNR bands of the same width first.
- Confusions: the most confused modulation pairs per SNR band, with count and share of the
  true modulation's frames (needs the export's per-SNR confusion).
- Knees: per modulation, the lowest SNR from which its accuracy stays at or above 50% / 90 %.

Pure: numpy and pandas imported inside functions (the rule of `run/analysis.py`), nothing
written. Each surface (show, the app, RUNLOG, plot) renders the same `Tables`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amc_tui import contract
from amc_tui.data.classes import CLASS_INDEX
from amc_tui.report import pct, table
from amc_tui.run.analysis import read_per_cell

if TYPE_CHECKING:
    import pandas as pd

Z95 = 1.959963984540054  # two-sided 95 %: the Wilson interval's z
MIN_N = 30  # frames a ranked cell (or pooled band) must hold
HARDEST_N = 5
TOP_PAIRS = 3
KNEE_LEVELS = (0.5, 0.9)
# SNR bands of the confusion table: below 0 dB, 0 to 9 dB, 10 dB and above.
BAND_EDGES = (0, 10)
ACC_METRICS = ("acc_mod", "acc_snr", "acc_combined")
NOT_IN_EXPORT = "not in this export"
FLOOR_MARGIN = 0.10  # the floor's bar: chance + this share of the way from chance to 100 %
LABELS = {"acc_mod": "modulation accuracy", "acc_snr": "SNR accuracy",
          "acc_combined": "combined accuracy"}  # fmt: skip


def wilson(k: float, n: float, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of k successes in n trials; (nan, nan) without trials."""
    if n <= 0:
        return math.nan, math.nan
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if k <= 0 else max(0.0, centre - half)  # exact at the edges (no 1e-17)
    hi = 1.0 if k >= n else min(1.0, centre + half)
    return lo, hi


def _check(metric: str) -> None:
    if metric not in ACC_METRICS:
        raise ValueError(f"metric must be one of {', '.join(ACC_METRICS)}, got {metric!r}")


def _cells(per_cell: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Cells with frames, with k = correct frames (acc x n, exact: the trainer wrote k / n)."""
    df = per_cell[per_cell["n"] > 0][["modulation", "snr_db", "n", metric]].copy()
    df["snr_db"] = df["snr_db"].astype(int)
    df["k"] = (df[metric].astype(float) * df["n"]).round().astype(int)
    return df


def chance_of(n_mod: int, n_snr: int, metric: str) -> float | None:
    """1 / the classes the head chooses among: the modulations for acc_mod, the SNRs for
    acc_snr, both for acc_combined; None for another metric or no classes."""
    classes = {"acc_mod": n_mod, "acc_snr": n_snr, "acc_combined": n_mod * n_snr}.get(metric)
    return 1.0 / classes if classes else None


def chance(per_cell: pd.DataFrame, metric: str = "acc_mod") -> float | None:
    """`chance_of` the classes present in the split (cells with frames)."""
    _check(metric)
    df = per_cell[per_cell["n"] > 0]
    return chance_of(df["modulation"].nunique(), df["snr_db"].nunique(), metric)


def floor_bar(chance_level: float) -> float:
    """The accuracy an SNR's Wilson lower bound must pass to be above the noise floor."""
    return chance_level + FLOOR_MARGIN * (1.0 - chance_level)


@dataclass(frozen=True)
class SnrLevel:
    """One SNR's accuracy pooled over the modulations, its Wilson interval, above chance?"""

    snr_db: int
    n: int
    k: int
    acc: float
    lo: float
    hi: float
    above: bool


def snr_levels(per_cell: pd.DataFrame, metric: str = "acc_mod") -> list[SnrLevel]:
    """Per SNR with frames: above the floor = the Wilson lower bound passes `floor_bar`."""
    _check(metric)
    if per_cell.empty:
        return []
    floor = floor_bar(chance(per_cell, metric) or 0.0)
    df = _cells(per_cell, metric)
    out = []
    for snr, g in df.groupby("snr_db", sort=True):
        n, k = int(g["n"].sum()), int(g["k"].sum())
        lo, hi = wilson(k, n)
        out.append(SnrLevel(int(snr), n, k, k / n, lo, hi, lo > floor))
    return out


@dataclass(frozen=True)
class Floor:
    """The SNRs at the noise floor for `metric` (`at_chance`, ascending), and up to where they
    run unbroken from the lowest SNR (`below`: every SNR up to it is at the floor; None when
    the lowest is above it)."""

    metric: str
    chance: float | None
    at_chance: list[int]
    snrs: list[int]

    @property
    def below(self) -> int | None:
        top = None
        for s in self.snrs:
            if s not in self.at_chance:
                break
            top = s
        return top

    def text(self) -> str:
        """The one line that names the floor instead of listing it."""
        head = {"acc_mod": "modulation", "acc_snr": "SNR", "acc_combined": "combined"}[self.metric]
        if not self.snrs or self.chance is None:
            return "no frames: no noise floor"
        rule = (
            f"Wilson 95% lower bound under {pct(floor_bar(self.chance), 1)}: chance "
            f"{pct(self.chance, 1)} plus a tenth of the way to 100%"
        )
        if not self.at_chance:
            return f"the {head} head is above the noise floor at every SNR ({rule})"
        if len(self.at_chance) == len(self.snrs):
            return f"the {head} head is at the noise floor at every SNR ({rule})"
        below, who = self.below, f"the {head} head is at the noise floor"
        parts = []
        if below is not None:
            word = "at" if below == self.snrs[0] else "at and below"
            parts.append(f"{word} {below} dB {who}")
        rest = [s for s in self.at_chance if below is None or s > below]
        if rest:
            listed = ", ".join(str(s) for s in rest)
            parts.append(f"also at {listed} dB" if parts else f"{who} at {listed} dB")
        what = "; ".join(parts)
        return f"{what} ({rule})"


def noise_floor(per_cell: pd.DataFrame, metric: str = "acc_mod") -> Floor:
    levels = snr_levels(per_cell, metric) if not per_cell.empty else []
    return Floor(
        metric,
        chance(per_cell, metric) if not per_cell.empty else None,
        [lv.snr_db for lv in levels if not lv.above],
        [lv.snr_db for lv in levels],
    )


# --------------------------------------------------------------------------- hardest


@dataclass(frozen=True)
class Cell:
    """A (modulation, SNR band) of the hardest list: snr_lo == snr_hi for a single cell."""

    modulation: str
    snr_lo: int
    snr_hi: int
    n: int
    k: int
    acc: float
    lo: float
    hi: float

    @property
    def snr(self) -> str:
        return f"{self.snr_lo}" if self.snr_lo == self.snr_hi else f"{self.snr_lo}..{self.snr_hi}"


@dataclass
class Hardest:
    metric: str
    min_n: int
    width: int  # SNRs pooled per band (1: single cells)
    floor: Floor
    cells: list[Cell] = field(default_factory=list)
    too_small: int = 0  # bands left out for n < min_n
    ranked: int = 0  # bands that qualified

    def text(self) -> str:
        """What the list is: rank rule, pooling, what was left out."""
        pooled = f", cells pooled {self.width} SNRs a band" if self.width > 1 else ""
        small = f"; {self.too_small} under n = {self.min_n} left out" if self.too_small else ""
        return (
            f"Ranked by the Wilson 95% upper bound of {LABELS[self.metric]}, n >= {self.min_n}"
            f"{pooled}{small}; {self.floor.text()}."
        )


def floor_metric(metric: str) -> str:
    """The head whose chance level marks the noise floor for `metric`: combined accuracy needs
    the modulation, so its floor is the modulation head's."""
    return "acc_snr" if metric == "acc_snr" else "acc_mod"


def hardest(
    per_cell: pd.DataFrame, metric: str = "acc_combined", n: int = HARDEST_N, min_n: int = MIN_N
) -> Hardest:
    """The `n` hardest (modulation, SNR band) cells above the noise floor (module docstring).
    Band width: the fewest SNRs whose pooled median cell reaches `min_n` frames; a band never
    spans an SNR at the floor."""
    import numpy as np  # numpy, pandas: off the CLI's and the app's start path

    _check(metric)
    floor = noise_floor(per_cell, floor_metric(metric))
    out = Hardest(metric, min_n, 1, floor)
    if per_cell.empty:
        return out
    df = _cells(per_cell, metric)
    keep = [s for s in floor.snrs if s not in floor.at_chance]
    df = df[df["snr_db"].isin(keep)]
    if df.empty:
        return out
    median = float(np.median(df["n"]))
    out.width = width = max(1, min(len(keep), math.ceil(min_n / median)))
    band, b, run = {}, 0, 0  # bands never span an SNR at the floor
    for s in floor.snrs:
        if s not in keep or run == width:
            b, run = b + 1, 0
        if s in keep:
            band[s], run = b, run + 1
    df["band"] = df["snr_db"].map(band)
    cells = []
    for (mod, _), g in df.groupby(["modulation", "band"], sort=False):
        nn, k = int(g["n"].sum()), int(g["k"].sum())
        if nn < min_n:
            out.too_small += 1
            continue
        lo, hi = wilson(k, nn)
        cells.append(
            Cell(str(mod), int(g["snr_db"].min()), int(g["snr_db"].max()), nn, k, k / nn, lo, hi)
        )
    cells.sort(key=lambda c: (c.hi, c.acc, CLASS_INDEX.get(c.modulation, 10_000), c.snr_lo))
    out.ranked = len(cells)
    out.cells = cells[:n]
    return out


# --------------------------------------------------------------------------- confusions


def read_confusion_by_snr(export_dir: str | os.PathLike[str]) -> pd.DataFrame | None:
    """confusion_mod_by_snr.csv (snr_db, true, pred, count); None when the export has no such
    file (written before it existed) or it cannot be read."""
    import pandas as pd  # pandas (~0.3 s): off the CLI's and the app's start path

    path = Path(export_dir) / contract.CONFUSION_BY_SNR_FILE
    try:
        df = pd.read_csv(path, dtype={"true": str, "pred": str})
    except (OSError, ValueError, pd.errors.ParserError):
        return None
    if tuple(df.columns) != contract.CONFUSION_BY_SNR_COLUMNS:
        return None
    df["snr_db"] = df["snr_db"].astype(int)
    df["count"] = df["count"].astype(int)
    return df


def band_of(snr: int) -> int:
    """0: below 0 dB, 1: 0 to 9 dB, 2: 10 dB and above (BAND_EDGES)."""
    return sum(snr >= e for e in BAND_EDGES)


def band_label(snrs: list[int]) -> str:
    lo, hi = min(snrs), max(snrs)
    return f"{lo} dB" if lo == hi else f"{lo}..{hi} dB"


@dataclass(frozen=True)
class Pair:
    true: str
    pred: str
    count: int
    n_true: int  # frames of `true` in the band

    @property
    def share(self) -> float:
        return self.count / self.n_true if self.n_true else math.nan


@dataclass(frozen=True)
class Band:
    label: str
    snrs: list[int]
    n: int
    pairs: list[Pair]


def confusions(
    conf: pd.DataFrame | None, floor: Floor | None = None, top: int = TOP_PAIRS
) -> list[Band] | None:
    """Per SNR band (BAND_EDGES, the SNRs of `floor.at_chance` left out), the `top` off-diagonal
    (true, pred) pairs by count, then share, then class order. None without the file."""
    if conf is None:
        return None
    skip = set(floor.at_chance) if floor else set()
    df = conf[~conf["snr_db"].isin(skip)]
    out = []
    for b in sorted({band_of(int(s)) for s in df["snr_db"]}):
        g = df[[band_of(int(s)) == b for s in df["snr_db"]]]
        n_true = g.groupby("true")["count"].sum().to_dict()
        off = g[g["true"] != g["pred"]].groupby(["true", "pred"])["count"].sum()
        pairs = [Pair(str(t), str(p), int(c), int(n_true[t])) for (t, p), c in off.items()]
        order = CLASS_INDEX.get
        pairs.sort(key=lambda q: (-q.count, -q.share, order(q.true, 10_000), order(q.pred, 10_000)))
        snrs = sorted({int(s) for s in g["snr_db"]})
        out.append(Band(band_label(snrs), snrs, int(g["count"].sum()), pairs[:top]))
    return out


# --------------------------------------------------------------------------- knees


@dataclass(frozen=True)
class Knee:
    """The lowest SNR from which `modulation`'s accuracy stays >= each level at every higher
    SNR with frames (None: never); `first` is the lowest SNR with frames (a knee there may lie
    below the measured range)."""

    modulation: str
    at: dict[float, int | None]
    first: int
    n_min: int


def knee_of(curve: list[tuple[int, float]], level: float) -> int | None:
    """The lowest SNR of an ascending (snr, accuracy) curve from which every point is at or
    above `level`; None when the highest SNR is below it."""
    knee = None
    for snr, acc in reversed(curve):
        if acc < level:
            break
        knee = int(snr)
    return knee


def knees(
    per_cell: pd.DataFrame, metric: str = "acc_mod", levels: tuple[float, ...] = KNEE_LEVELS
) -> list[Knee]:
    _check(metric)
    if per_cell.empty:
        return []
    df = _cells(per_cell, metric)
    out = []
    for mod, g in df.groupby("modulation", sort=False):
        g = g.sort_values("snr_db")
        accs = list(zip(g["snr_db"].astype(int), g["k"] / g["n"], strict=True))
        at = {level: knee_of(accs, level) for level in levels}
        out.append(Knee(str(mod), at, int(accs[0][0]), int(g["n"].min())))
    out.sort(key=lambda q: (CLASS_INDEX.get(q.modulation, 10_000), q.modulation))
    return out


def knee_text(knee: Knee, level: float) -> str:
    """`6 dB`, `<= -20 dB` (reached at the lowest SNR measured), `never`."""
    at = knee.at.get(level)
    if at is None:
        return "never"
    return f"<= {at} dB" if at == knee.first else f"{at} dB"


# --------------------------------------------------------------------------- all of them


@dataclass
class Tables:
    """Every table of one export; `confusions` None when the export predates its file."""

    export: str
    hardest: Hardest
    confusions: list[Band] | None
    knees: list[Knee]
    mod_floor: Floor


def export_tables(export_dir: str | os.PathLike[str], metric: str = "acc_combined") -> Tables:
    per_cell = read_per_cell(export_dir)
    mod_floor = noise_floor(per_cell, "acc_mod")
    return Tables(
        Path(export_dir).name,
        hardest(per_cell, metric),
        confusions(read_confusion_by_snr(export_dir), mod_floor),
        knees(per_cell),
        mod_floor,
    )


def hardest_rows(h: Hardest) -> tuple[list[str], list[list[str]]]:
    header = ["Modulation", "SNR (dB)", "n", "Accuracy", "95% CI"]
    rows = [
        [c.modulation, c.snr, str(c.n), pct(c.acc, 1), f"{pct(c.lo, 1)}..{pct(c.hi, 1)}"]
        for c in h.cells
    ]
    return header, rows


def confusion_rows(bands: list[Band]) -> tuple[list[str], list[list[str]]]:
    header = ["SNR band", "True -> predicted", "Count", "Share of true"]
    rows = [
        [b.label, f"{p.true} -> {p.pred}", f"{p.count} / {p.n_true}", pct(p.share, 1)]
        for b in bands
        for p in b.pairs
    ]
    return header, rows


def knee_rows(ks: list[Knee]) -> tuple[list[str], list[list[str]]]:
    header = ["Modulation", *(f"{pct(v, 0)} from" for v in KNEE_LEVELS), "min n"]
    rows = [[k.modulation, *(knee_text(k, v) for v in KNEE_LEVELS), str(k.n_min)] for k in ks]
    return header, rows


def summary_lines(t: Tables) -> dict[str, Any]:
    """The one-line notes under each table (shared wording)."""
    return {
        "hardest": t.hardest.text(),
        "confusions": NOT_IN_EXPORT
        if t.confusions is None
        else "Top pairs per SNR band, SNRs at the noise floor left out; share = count / "
        "frames of the true modulation in the band.",
        "knees": "The lowest SNR from which modulation accuracy stays at or above the level.",
    }


def text_lines(t: Tables, label: str) -> list[str]:
    """`show`'s short form of every table, plain text (`report.table`)."""
    notes = summary_lines(t)
    out = [f"hardest cells ({label}): {notes['hardest']}"]
    if t.hardest.cells:
        header, rows = hardest_rows(t.hardest)
        out += ["  " + line for line in table(rows, [h.upper() for h in header]).splitlines()]
    else:
        out.append(f"  no cell or band above the noise floor holds n >= {t.hardest.min_n} frames")
    out.append(f"confused pairs ({label}): {notes['confusions']}")
    if t.confusions:
        header, rows = confusion_rows(t.confusions)
        if rows:
            out += ["  " + line for line in table(rows, [h.upper() for h in header]).splitlines()]
    if t.knees:
        out.append(f"reliable from ({label}): {notes['knees']}")
        header, rows = knee_rows(t.knees)
        out += ["  " + line for line in table(rows, [h.upper() for h in header]).splitlines()]
    return out


def as_dict(t: Tables, label: str) -> dict[str, Any]:
    """The tables as JSON-safe builtins (`show --json`); NaN never appears (no data: None)."""

    def num(v: float) -> float | None:
        return None if v is None or not math.isfinite(v) else float(v)

    h = t.hardest
    return {
        "export": t.export,
        "label": label,
        "noise_floor": {
            "chance": t.mod_floor.chance,
            "bar": floor_bar(t.mod_floor.chance) if t.mod_floor.chance is not None else None,
            "at_floor_db": t.mod_floor.at_chance,
            "at_and_below_db": t.mod_floor.below,
            "text": t.mod_floor.text(),
        },
        "hardest": {
            "metric": h.metric,
            "min_n": h.min_n,
            "band_width": h.width,
            "too_small": h.too_small,
            "text": h.text(),
            "cells": [
                {
                    "modulation": c.modulation,
                    "snr_lo": c.snr_lo,
                    "snr_hi": c.snr_hi,
                    "n": c.n,
                    "k": c.k,
                    "acc": num(c.acc),
                    "ci_lo": num(c.lo),
                    "ci_hi": num(c.hi),
                }
                for c in h.cells
            ],  # fmt: skip
        },
        "confusions": None
        if t.confusions is None
        else [
            {
                "band": b.label,
                "snrs": b.snrs,
                "n": b.n,
                "pairs": [
                    {
                        "true": p.true,
                        "pred": p.pred,
                        "count": p.count,
                        "n_true": p.n_true,
                        "share": num(p.share),
                    }
                    for p in b.pairs
                ],
            }
            for b in t.confusions
        ],  # fmt: skip
        "knees": [
            {
                "modulation": k.modulation,
                "min_n": k.n_min,
                **{f"from_{round(100 * v)}_db": k.at.get(v) for v in KNEE_LEVELS},
            }
            for k in t.knees
        ],  # fmt: skip
    }
