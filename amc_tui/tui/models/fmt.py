"""Plain formatting helpers shared by the screens: durations, percentages, ages.

Pure functions (no Textual), so they are unit-tested directly and the same text shows in every
screen. Whether a metric reads as percent is `contract.is_percent`'s call, never decided here.
"""

from __future__ import annotations

import math
import numbers
import time
from typing import Any

from amc_tui import contract

STATE_STYLES: dict[str, str] = {
    "queued": "bold #8fa1b3",
    "submitted": "bold #87afd7",  # a Slurm job waits for a node
    "running": "bold #5fd7ff",
    "completed": "bold #87d75f",
    "failed": "bold #ff5f5f",
    "stopped": "bold #d7af5f",
    "crashed": "bold #ff5fd7",
    "stalled": "bold #ffaf00 reverse",  # the trainer lives but its heartbeat is old
    "unknown": "italic #8a8a8a",  # status.json unreadable: nothing acts on the run
    "foreign": "dim",  # a folder under runs/ that is not a run (`ls --all`)
}
DASH = "-"


def is_num(x: Any) -> bool:
    """A finite real number (numpy scalars included), not a bool."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def duration(seconds: float | None) -> str:
    """`1h02m`, `3m05s`, `42s`; a dash for unknown."""
    if not is_num(seconds) or seconds < 0:  # type: ignore[operator]
        return DASH
    s = int(round(seconds))  # type: ignore[arg-type]
    if s >= 86400:
        return f"{s // 86400}d{(s % 86400) // 3600:02d}h"
    if s >= 3600:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def pct(x: float | None, digits: int = 1, sign: bool = True) -> str:
    """A share 0..1 as `87.3%` (`87.3` without the sign); a dash for unknown."""
    return f"{100 * x:.{digits}f}{'%' if sign else ''}" if is_num(x) else DASH


def num(x: float | None, digits: int = 3) -> str:
    return f"{x:.{digits}f}" if is_num(x) else DASH


def metric(
    x: float | None, name: str, digits: int = 1, num_digits: int = 3, sign: bool = True
) -> str:
    """A value of metric `name` (bare or dotted) as people read it: a share as percent with
    `digits` decimals, any other metric (loss, MAE in dB) as a number with `num_digits`."""
    return pct(x, digits, sign) if contract.is_percent(name) else num(x, num_digits)


def metric_delta(d: float | None, name: str, digits: int = 1) -> str:
    """A change in metric `name`: percentage points for a share (`+1.2 pts`), else a signed
    number with one more decimal."""
    if not is_num(d):
        return DASH
    if contract.is_percent(name):
        return f"{100 * d:+.{digits}f} pts"  # type: ignore[operator]
    return f"{d:+.{digits + 1}f}"


def rate(x: float | None) -> str:
    """Throughput in samples/s with a k suffix above 10 000."""
    if not is_num(x):
        return DASH
    return f"{x / 1000:.1f}k samples/s" if x >= 10_000 else f"{x:.0f} samples/s"  # type: ignore[operator]


def ago(t: float | None, now: float) -> str:
    """`12s ago` for a unix time; a dash for unknown."""
    if not is_num(t):
        return DASH
    return f"{duration(max(0.0, now - t))} ago"  # type: ignore[operator]


def clock_time(t: float | None) -> str:
    """Local `YYYY-MM-DD HH:MM` for a unix time."""
    if not is_num(t):
        return DASH

    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))  # type: ignore[arg-type]


def fmt_value(v: Any) -> str:
    """A config value as a short display string (compare, diff tables)."""
    if v is None:
        return DASH
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, str):
        return v if v else '""'
    return str(v)
