"""The tables of `run/tables.py` over a sweep point: each run's numbers, then the mean and 95 %
CI over the point's runs (`stats.describe`), so "does DWA fix the SNR head at low SNR?" has an
answer with a CI.

- Band accuracy: per SNR band (below 0 dB, 0 to 9 dB, 10 dB and above) and head, each run's
  accuracy over the band's frames.
- Knees: the lowest SNR from which a run's overall modulation accuracy stays at or above 50 % /
  90 %; the mean over the runs that reach it, and how many do.
- Confused pairs: per band, the pairs with the most frames summed over the runs; each run's
  share of the true modulation's frames (its own noise floor left out, as for one run).

Reads each member's export (the one its per-cell accuracies came from); pandas inside functions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from amc_tui import report
from amc_tui.run import tables
from amc_tui.sweeps.stats import Member, Stat, describe

if TYPE_CHECKING:
    import pandas as pd

BAND_NAMES = ("< 0 dB", "0..9 dB", ">= 10 dB")  # tables.BAND_EDGES
HEADS = (("acc_mod", "mod"), ("acc_snr", "SNR"), ("acc_combined", "comb"))


@dataclass
class PointTables:
    point: str
    n: int  # runs with per-cell accuracies
    bands: dict[tuple[str, int], Stat] = field(default_factory=dict)  # (metric, band)
    knees: dict[float, tuple[Stat, int]] = field(default_factory=dict)  # level: (stat, reached)
    pairs: list[tuple[int, str, str, Stat]] = field(default_factory=list)  # band, true, pred


def band_accuracy(per_cell: pd.DataFrame, metric: str) -> dict[int, float]:
    """band -> accuracy over the band's frames (a band without frames is absent)."""
    df = per_cell[per_cell["n"] > 0]
    k, n = defaultdict(float), defaultdict(int)
    for snr, cnt, acc in zip(df["snr_db"], df["n"], df[metric], strict=True):
        b = tables.band_of(int(snr))
        k[b] += round(float(acc) * int(cnt))
        n[b] += int(cnt)
    return {b: k[b] / n[b] for b in n if n[b]}


def overall_knee(per_cell: pd.DataFrame, level: float) -> int | None:
    curve = [(lv.snr_db, lv.acc) for lv in tables.snr_levels(per_cell, "acc_mod")]
    return tables.knee_of(curve, level)


Shares = tuple[dict[tuple[int, str, str], tuple[int, int]], dict[tuple[int, str], int]]


def _shares(m: Member) -> Shares | None:
    """(band, true, pred) -> (count, frames of true in the band), and (band, true) -> frames,
    the run's noise floor left out; None when its export lacks the per-SNR confusion."""
    conf = tables.read_confusion_by_snr(m.export_dir) if m.export_dir else None
    if conf is None or m.per_cell is None:
        return None
    floor = tables.noise_floor(m.per_cell, "acc_mod")
    bands = tables.confusions(conf, floor, top=10_000) or []
    return {
        (tables.band_of(b.snrs[0]), p.true, p.pred): (p.count, p.n_true)
        for b in bands
        for p in b.pairs
    }, {(tables.band_of(b.snrs[0]), t): n for b in bands for t, n in _true_counts(conf, b).items()}


def _true_counts(conf: pd.DataFrame, band: tables.Band) -> dict[str, int]:
    g = conf[conf["snr_db"].isin(band.snrs)]
    return {str(t): int(c) for t, c in g.groupby("true")["count"].sum().items()}


def point_tables(point: str, members: Sequence[Member], top: int = 2) -> PointTables:
    """The point's tables over its usable members with per-cell accuracies."""
    ms = [m for m in members if m.usable and m.per_cell is not None and not m.per_cell.empty]
    out = PointTables(point, len(ms))
    if not ms:
        return out
    for metric, _ in HEADS:
        per_run = [band_accuracy(m.per_cell, metric) for m in ms]  # type: ignore[arg-type]
        for b in range(len(BAND_NAMES)):
            vals = [r.get(b) for r in per_run]
            if any(v is not None for v in vals):
                out.bands[metric, b] = describe(vals)
    for level in tables.KNEE_LEVELS:
        at = [overall_knee(m.per_cell, level) for m in ms]  # type: ignore[arg-type]
        out.knees[level] = (describe(at), sum(a is not None for a in at))
    got = [s for s in (_shares(m) for m in ms) if s is not None]
    if got:
        total: dict[tuple[int, str, str], int] = defaultdict(int)
        for pairs, _ in got:
            for key, (count, _) in pairs.items():
                total[key] += count
        for b in sorted({key[0] for key in total}):
            best = sorted((k for k in total if k[0] == b), key=lambda k: -total[k])[:top]
            for key in best:
                shares = [
                    pairs.get(key, (0, 0))[0] / trues[key[:2]]
                    for pairs, trues in got
                    if trues.get(key[:2])
                ]
                out.pairs.append((b, key[1], key[2], describe(shares)))
    return out


def _pm(stat: Stat, fmt: str = "pct") -> str:
    """`41.2 ± 1.3%` (mean ± the CI half-width), `-4.0 ± 1.2 dB`; the mean alone for n = 1."""
    if stat.n == 0:
        return report.MISSING
    if fmt == "pct":
        mean, half, unit = 100 * stat.mean, 100 * stat.half, "%"
    else:
        mean, half, unit = stat.mean, stat.half, " dB"
    if stat.uncertain:
        return f"{mean:.1f}{unit} (n = 1)"
    return f"{mean:.1f} ± {half:.1f}{unit}"


def band_rows(points: Sequence[PointTables]) -> tuple[list[str], list[list[str]]]:
    header = ["Point", "n"] + [f"{h} {b}" for _, h in HEADS[:2] for b in BAND_NAMES]
    rows = [
        [p.point, str(p.n)]
        + [
            _pm(p.bands.get((m, b), Stat(0, 0, 0, 0, 0)))
            for m, _ in HEADS[:2]
            for b in range(len(BAND_NAMES))
        ]  # fmt: skip
        for p in points
    ]
    return header, rows


def knee_rows(points: Sequence[PointTables]) -> tuple[list[str], list[list[str]]]:
    header = ["Point", *(f"{report.pct(v, 0)} from" for v in tables.KNEE_LEVELS)]
    rows = []
    for p in points:
        cells = []
        for level in tables.KNEE_LEVELS:
            stat, reached = p.knees.get(level, (Stat(0, 0, 0, 0, 0), 0))
            if not p.n:
                cells.append(report.MISSING)
                continue
            text = _pm(stat, "db").replace(" (n = 1)", "") if reached else "never"
            cells.append(f"{text} ({reached}/{p.n} runs)")
        rows.append([p.point, *cells])
    return header, rows


def pair_rows(points: Sequence[PointTables]) -> tuple[list[str], list[list[str]]]:
    header = ["Point", "SNR band", "True -> predicted", "Share of true"]
    rows = [
        [p.point, BAND_NAMES[b], f"{t} -> {q}", _pm(stat)]
        for p in points
        for b, t, q, stat in p.pairs
    ]
    return header, rows


def text_lines(points: Sequence[PointTables]) -> list[str]:
    """`group show`'s block: the three tables, mean ± 95 % CI half-width over each point's runs."""
    if not any(p.n for p in points):
        return []
    out = ["", "accuracy per SNR band (mean ± 95 % CI half-width over the point's runs):"]
    header, rows = band_rows(points)
    out.append(report.table(rows, [h.upper() for h in header]))
    out += ["", "reliable from: the lowest SNR from which modulation accuracy stays at or above "
            "the level (mean over the runs that reach it):"]  # fmt: skip
    header, rows = knee_rows(points)
    out.append(report.table(rows, [h.upper() for h in header]))
    header, rows = pair_rows(points)
    out += ["", "most confused pairs per SNR band (share of the true modulation's frames, noise "
            "floor left out):"]  # fmt: skip
    out.append(
        report.table(rows, [h.upper() for h in header]) if rows else f"  {tables.NOT_IN_EXPORT}"
    )
    return out
