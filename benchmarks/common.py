"""Shared pieces of the benchmark suite: the figure record, timers and the machine summary.

Why best-of-N: the suite often runs on a machine shared with other work, where the mean mostly
measures the neighbours; the fastest of a few repeats is the closest to what our code can do,
and the machine's load average is recorded next to the figures so a reader can judge them.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

FIGURE_KEYS = ("name", "value", "unit", "baseline", "baseline_value", "ratio")


@dataclass
class Figure:
    """One measured figure and its baseline, measured in the same run.

    ratio = value / baseline_value for rates (higher is better) and baseline_value / value for
    times (lower is better), so a ratio above 1 always means "better than the baseline"."""

    name: str
    value: float
    unit: str
    baseline: str
    baseline_value: float
    ratio: float
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if not d["extra"]:
            d.pop("extra")
        if not d["note"]:
            d.pop("note")
        return d


def rate_figure(
    name: str, value: float, unit: str, baseline: str, baseline_value: float, **kw: Any
) -> Figure:
    """A rate (higher is better): ratio = value / baseline."""
    ratio = value / baseline_value if baseline_value > 0 else float("nan")
    return Figure(name, _r(value), unit, baseline, _r(baseline_value), _r(ratio, 3), **kw)


def time_figure(
    name: str, seconds: float, baseline: str, baseline_seconds: float, **kw: Any
) -> Figure:
    """A duration (lower is better): ratio = baseline / value."""
    ratio = baseline_seconds / seconds if seconds > 0 else float("nan")
    unit = "s (ratio = baseline / value)"
    return Figure(name, _r(seconds, 4), unit, baseline, _r(baseline_seconds, 4), _r(ratio, 3), **kw)


def _r(x: float, digits: int = 1) -> float:
    """Rounded for the JSON: `digits` decimals, but never fewer than 5 significant digits, so
    a ratio recomputed from the rounded figures agrees with the stored one (a 0.0012 s time
    rounded to 4 decimals was off by 4 %)."""
    if x != x or x in (float("inf"), float("-inf")):
        return x
    fixed, significant = round(float(x), digits), float(f"{float(x):.5g}")
    return fixed if abs(fixed - x) <= abs(significant - x) else significant


def best_time(fn: Callable[[], Any], repeats: int = 3, min_s: float = 0.0) -> float:
    """The fastest of `repeats` calls of fn (seconds); keeps repeating until `min_s` total."""
    best = float("inf")
    spent, k = 0.0, 0
    while k < repeats or spent < min_s:
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        best = min(best, dt)
        spent += dt
        k += 1
        if k >= 50:
            break
    return best


def machine(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the figures were measured on (torch and numpy versions read if importable)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    try:
        import psutil

        info["ram_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except Exception:  # noqa: BLE001 - optional detail
        pass
    with contextlib.suppress(OSError):
        info["loadavg_1m_at_start"] = round(os.getloadavg()[0], 2)
    for mod in ("numpy", "h5py", "torch", "timm", "textual"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - report what is there
            info[mod] = None
    info["device"] = "cpu"
    if "torch" in sys.modules:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["device"] = torch.cuda.get_device_name(0)
    info.update(extra or {})
    return info
