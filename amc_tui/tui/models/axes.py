"""Chart axes and series shaping, pure so tests check them without a terminal: nice tick
values that each land on their own text row, tick labels, EMA smoothing, one colour per run
and the `Line`s a chart draws (widgets/curves.py draws them).

plotext picks y ticks by dividing the rows evenly, so on a short chart two ticks share a row
and one label is lost (0.50 drawn as 0.67); the charts set every tick explicitly from here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from amc_tui import contract

NICE_STEPS = (1.0, 2.0, 2.5, 5.0)
SMOOTHING = (0.0, 0.6, 0.9)  # EMA weights a key cycles through, as in experiment trackers
# plotext colour names: one per run, in mark order, the same in every chart
RUN_COLORS = ("cyan", "orange", "green", "magenta", "red", "blue", "yellow", "white")


def _steps(span: float, integer: bool) -> list[float]:
    """Candidate steps from fine to coarse that cover `span`."""
    base = 10 ** math.floor(math.log10(span)) if span > 0 else 1.0
    out = [m * base * f for f in (0.01, 0.1, 1.0, 10.0, 100.0) for m in NICE_STEPS]
    if integer:
        out = [s for s in out if s >= 1 and float(s).is_integer()]
    return sorted(set(out))


def nice_axis(
    lo: float,
    hi: float,
    max_ticks: int,
    *,
    integer: bool = False,
    clamp: tuple[float, float] | None = None,
) -> tuple[float, float, list[float]]:
    """(lo', hi', ticks): the range widened to whole steps of a 1-2-2.5-5 series with at most
    `max_ticks` ticks, each tick a multiple of the step. `clamp` bounds the widened range
    (percent charts stop at 0 and 100); `integer` keeps ticks on whole numbers (epochs)."""
    max_ticks = max(2, max_ticks)
    if hi < lo:
        lo, hi = hi, lo
    if hi - lo < 1e-12:
        pad = 1.0 if integer else (abs(lo) * 0.1 or 0.5)
        lo, hi = lo - pad, hi + pad
        if clamp is not None:
            lo, hi = max(lo, clamp[0]), min(hi, clamp[1])
    for step in _steps(hi - lo, integer):
        a, b = math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step
        if clamp is not None:
            a, b = max(a, clamp[0]), min(b, clamp[1])
        first = math.ceil(a / step - 1e-9) * step
        ticks = []
        t = first
        while t <= b + step * 1e-9:
            ticks.append(round(t, 10))
            t += step
        if len(ticks) <= max_ticks:
            return a, b, ticks
    return lo, hi, [lo, hi]


def tick_label(v: float, ticks: Sequence[float], percent: bool = False) -> str:
    """A tick's text with as few decimals as its neighbours need (`50%`, `0.25`, `12k`)."""
    step = min((abs(b - a) for a, b in zip(ticks, ticks[1:], strict=False)), default=1.0)
    decimals = 0 if step >= 1 or step == 0 else min(4, math.ceil(-math.log10(step) - 1e-9))
    if decimals and not float(round(step * 10**decimals, 6)).is_integer():
        decimals += 1
    if percent:
        return f"{v:.{decimals}f}%"
    if decimals == 0 and max((abs(t) for t in ticks), default=0) >= 10_000:
        return f"{v / 1000:g}k"
    return f"{v:.{decimals}f}"


def ema(values: Sequence[float], alpha: float) -> list[float]:
    """Debiased exponential moving average (weight `alpha` on the past), the smoothing
    experiment trackers draw; alpha 0 returns the values unchanged."""
    if alpha <= 0:
        return [float(v) for v in values]
    out, acc, weight = [], 0.0, 0.0
    for v in values:
        acc = alpha * acc + (1 - alpha) * float(v)
        weight = alpha * weight + (1 - alpha)
        out.append(acc / weight)
    return out


def finite_pairs(
    xs: Sequence[float | None], ys: Sequence[float | None]
) -> tuple[list[float], list[float]]:
    """The (x, y) points where both are finite numbers: no data is left out, never 0."""
    px, py = [], []
    for x, y in zip(xs, ys, strict=False):
        if contract.is_number(x) and contract.is_number(y):
            px.append(float(x))  # type: ignore[arg-type]
            py.append(float(y))  # type: ignore[arg-type]
    return px, py


def run_color(index: int) -> str:
    return RUN_COLORS[index % len(RUN_COLORS)]


def time_unit(max_s: float) -> tuple[float, str]:
    """(divisor, name) for a time axis that spans `max_s` seconds."""
    if max_s >= 3 * 3600:
        return 3600.0, "h"
    if max_s >= 180:
        return 60.0, "min"
    return 1.0, "s"


# plotext colour names, one per series of a single run, stable across redraws
PALETTE = ("cyan", "orange", "green", "magenta", "red", "blue", "yellow")


@dataclass(frozen=True)
class Line:
    label: str | None  # legend text; None = not in the legend
    x: tuple[float, ...]
    y: tuple[float, ...]
    color: str


def line(label: str | None, xs: Sequence, ys: Sequence, color: str) -> Line:
    """A Line from raw columns: points where x or y is not a finite number are left out."""
    px, py = finite_pairs(xs, ys)
    return Line(label, tuple(px), tuple(py), color)
