"""Colour scales and value labels for heatmaps (per-cell metrics, confusion shares, deltas).

Pure: a value and a scale in, a hex colour and a short label out, so tests can check colours
without a terminal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from amc_tui import contract, report

# Red -> amber -> green: low accuracy reads as bad at a glance.
_STOPS = ((0.0, (165, 0, 38)), (0.5, (254, 224, 139)), (1.0, (26, 152, 80)))
# Blue (worse) -> grey -> green (better) for deltas.
_DIVERGING = ((0.0, (69, 117, 180)), (0.5, (60, 60, 60)), (1.0, (26, 152, 80)))
# Dark -> bright for confusion shares: the diagonal should glow.
_SEQUENTIAL = ((0.0, (20, 24, 40)), (0.5, (44, 127, 184)), (1.0, (255, 255, 204)))


def _lerp(stops: tuple, x: float) -> tuple[int, int, int]:
    x = min(1.0, max(0.0, x))
    for (x0, c0), (x1, c1) in zip(stops, stops[1:], strict=False):
        if x <= x1:
            f = 0.0 if x1 == x0 else (x - x0) / (x1 - x0)
            return tuple(round(a + (b - a) * f) for a, b in zip(c0, c1, strict=True))  # type: ignore[return-value]
    return stops[-1][1]


def hex_color(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def text_color(rgb: tuple[int, int, int]) -> str:
    """Black or white, whichever reads better on `rgb`."""
    r, g, b = rgb
    return "#000000" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "#ffffff"


@dataclass(frozen=True)
class Scale:
    """Maps values to colours. kind: "acc" (0..1, higher better), "error" (lo..hi, lower
    better), "share" (0..1 sequential), "delta" (symmetric around 0, positive = better)."""

    kind: str = "acc"
    lo: float = 0.0
    hi: float = 1.0
    percent: bool = True  # labels as percent (accuracies, shares, accuracy deltas)
    unit: str = ""  # the legend's unit for a plain number (" dB")

    def position(self, v: float) -> float:
        if self.kind == "delta":  # lo > hi marks an error metric: a drop is the improvement
            span = max(abs(self.lo), abs(self.hi)) or 1.0
            x = 0.5 + 0.5 * v / span
            return 1.0 - x if self.lo > self.hi else x
        span = (self.hi - self.lo) or 1.0
        x = (v - self.lo) / span
        return 1.0 - x if self.kind == "error" else x

    def rgb(self, v: float | None) -> tuple[int, int, int] | None:
        if v is None or not math.isfinite(v):
            return None
        stops = {"delta": _DIVERGING, "share": _SEQUENTIAL}.get(self.kind, _STOPS)
        return _lerp(stops, self.position(v))

    def text(self, v: float | None) -> str:
        """A cell's short value, whole (accuracies and shares in percent, deltas signed); a
        dot for no data."""
        if v is None or not math.isfinite(v):
            return "·"
        if self.percent and self.kind != "delta":
            return report.pct(v, 0, unit="")
        if self.percent:
            return report.points(v, 0, unit="")
        sign = "+" if self.kind == "delta" else ""
        return report.num(v, f"{sign}.1f" if abs(v) < 10 else f"{sign}.0f")

    def label(self, v: float | None, width: int) -> str:
        """`text` cut to `width` characters, right-aligned (no data centred)."""
        if v is None or not math.isfinite(v):
            return "·".center(width)
        return self.text(v)[:width].rjust(width)

    def span(self) -> tuple[float, float]:
        """The value range the colours cover, low to high."""
        if self.kind == "delta":
            s = max(abs(self.lo), abs(self.hi)) or 1.0
            return -s, s
        return self.lo, self.hi

    def end_text(self, v: float) -> str:
        """A legend end: `0%`, `100%`, `-12pt`, `6.0 dB`."""
        if self.percent and self.kind == "delta":
            return report.points(v, 0)
        if self.percent:
            return report.pct(v, 0)
        sign = "+" if self.kind == "delta" else ""
        return report.num(v, f"{sign}.1f", unit=self.unit)

    def legend_colors(self, n: int = 8) -> list[tuple[int, int, int]]:
        """`n` colours from the low end of `span` to the high end."""
        lo, hi = self.span()
        return [self.rgb(lo + (hi - lo) * i / max(1, n - 1)) or (0, 0, 0) for i in range(n)]


def metric_scale(metric: str, values: list[float | None]) -> Scale:
    """The scale for a per-cell metric: shares fixed 0..1, any other metric (MAE in dB) over
    its own range, coloured so that the better end is green."""
    if contract.is_percent(metric):
        return Scale("acc", 0.0, 1.0)
    finite = [v for v in values if v is not None and math.isfinite(v)]
    kind = "error" if contract.lower_is_better(metric) else "acc"
    unit = " dB" if metric.endswith("_db") else ""
    return Scale(kind, 0.0, max(finite) if finite else 1.0, percent=False, unit=unit)


def delta_scale(values: list[float | None], metric: str = "acc_combined") -> Scale:
    """A symmetric scale for changes in `metric` (B - A), green where B is better."""
    finite = [abs(v) for v in values if v is not None and math.isfinite(v)]
    span = max(finite) if finite else 1.0
    # for an error metric a negative delta is the improvement: flip so green = better
    lo, hi = (span, -span) if contract.lower_is_better(metric) else (-span, span)
    unit = " dB" if metric.endswith("_db") else ""
    return Scale("delta", lo, hi, percent=contract.is_percent(metric), unit=unit)
