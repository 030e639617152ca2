"""What each Live chart draws from one or more runs' `LiveView`s: which series, against which
x (epoch, global step or training time) and in which colour.

One run: every series of a chart (train and val loss; combined, modulation and SNR accuracy)
in the series palette. Several runs: one line per run in the run's colour, of the chart's
headline series, so runs compare like for like. The accuracy chart carries its chance levels
(`chart_chances`: 1 / the classes of the start event).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from amc_tui.report import pct
from amc_tui.run.tables import chance_of
from amc_tui.tui.models import axes
from amc_tui.tui.models.axes import PALETTE, Line, line
from amc_tui.tui.models.live_model import LiveView
from amc_tui.tui.models.overlay import Overlay

X_MODES = ("epoch", "step", "time")


@dataclass(frozen=True)
class Chart:
    key: str
    title: str  # one run
    series: tuple[tuple[str, str], ...]  # (LiveView.series name, legend) for one run
    headline: str  # the series several runs are compared on
    overlay_title: str
    percent: bool = False
    ylim: tuple[float, float] | None = None


CHARTS = (
    Chart("loss", "loss", (("train_loss", "train"), ("val_loss", "val")), "val_loss",
          "val loss"),
    Chart("acc", "val accuracy", (("val_acc_combined", "combined"), ("val_acc_mod", "mod"),
                                  ("val_acc_snr", "snr")), "val_acc_combined",
          "val combined accuracy", percent=True),
    Chart("steps", "step loss", (("step", "loss"),), "step", "step loss"),
    Chart("weights", "task weight share", (("w_mod", "mod"), ("w_snr", "snr")), "w_mod",
          "modulation task weight share", percent=True, ylim=(0.0, 1.0)),
)  # fmt: skip


def time_scale(views: dict[Path, LiveView]) -> tuple[float, str]:
    """(seconds per unit, unit) for the time axis over every run shown."""
    longest = max(
        [t for v in views.values() for t in [*v.step_time, *v.epoch_time] if t is not None],
        default=0.0,
    )
    return axes.time_unit(longest)


def xs(view: LiveView, mode: str, steps: bool, div: float) -> list[float | None]:
    """The x column of a view's epoch points (or its step points when `steps`)."""
    if steps:
        col = {"epoch": view.step_epoch, "step": view.step_x, "time": view.step_time}[mode]
        return [c / div for c in col] if mode == "time" else list(col)
    if mode == "epoch":
        return list(view.epochs)
    col = view.epoch_step if mode == "step" else view.epoch_time
    return [None if c is None else (c / div if mode == "time" else c) for c in col]


def xlabel(mode: str, unit: str) -> str:
    return f"training time ({unit})" if mode == "time" else mode


def chart_lines(
    chart: Chart, views: dict[Path, LiveView], ov: Overlay, mode: str, names: dict[Path, str]
) -> list[Line]:
    """The lines of `chart`: every series of the run on screen, or with several runs the
    headline series of each in its run colour (a run without data adds no line)."""
    div, _ = time_scale(views)
    steps = chart.key == "steps"
    if not ov.multi:
        view = views.get(ov.dirs[0])
        if view is None:
            return []
        x = xs(view, mode, steps, div)
        if steps:
            return [line("loss", x, view.step_loss, PALETTE[0])]
        return [
            line(label, x, view.series.get(name, []), PALETTE[i % len(PALETTE)])
            for i, (name, label) in enumerate(chart.series)
        ]
    out = []
    for d in ov.dirs:
        view = views.get(d)
        if view is None:
            continue
        x = xs(view, mode, steps, div)
        y = view.step_loss if steps else view.series.get(chart.headline, [])
        ln = line(names.get(d, d.name), x, y, ov.colors[d])
        if ln.x:
            out.append(ln)
    return out


def chart_chances(
    chart: Chart, views: dict[Path, LiveView], ov: Overlay
) -> tuple[tuple[str, float], ...]:
    """The chance levels the accuracy chart draws: for one run those of its modulation and SNR
    heads (combined chance is near 0); for several, that of the headline (combined) when every
    run shares it. From each run's start event (its classes and SNRs); none when unknown."""
    if chart.key != "acc":
        return ()
    levels = set()
    for d in ov.dirs if ov.multi else ov.dirs[:1]:
        start = (views.get(d) or LiveView()).start or {}
        n_mod, n_snr = start.get("classes"), start.get("snrs")
        if not isinstance(n_mod, list) or not isinstance(n_snr, list):
            return ()
        levels.add((len(n_mod), len(n_snr)))
    if len(levels) != 1:
        return ()
    n_mod, n_snr = levels.pop()
    heads = (("acc_combined", "chance"),) if ov.multi else (
        ("acc_mod", "chance mod"), ("acc_snr", "chance SNR"))  # fmt: skip
    out = []
    for metric, name in heads:
        level = chance_of(n_mod, n_snr, metric)
        if level is not None:
            out.append((f"{name} {pct(level, 1)}", level))
    return tuple(out)
