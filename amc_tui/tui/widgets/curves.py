"""Line charts (textual-plotext) with explicit ticks: every y tick on its own row at the
chart's current size, integer ticks on an epoch or step axis, percent on accuracy charts.

A chart holds `Line`s (one per run and series, each with its colour) and draws them at render
time, when its size is known; `set_lines` only stores and refreshes, and skips unchanged data.
An accuracy chart may carry chance levels: each drawn dashed across the chart (a dash every
other column) and named in the legend, so a dead run's flat line reads as chance.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import RenderableType
from textual_plotext import PlotextPlot

from amc_tui.tui.models import axes
from amc_tui.tui.models.axes import PALETTE, Line, line

HD_MAX_POINTS = 60  # denser lines draw in braille


class Curves(PlotextPlot):
    """One chart: named lines against a shared x axis."""

    def __init__(self, title: str, xlabel: str = "epoch", *, percent: bool = False,
                 focusable: bool = False, id: str | None = None,
                 classes: str | None = None) -> None:  # fmt: skip
        super().__init__(id=id, classes=classes)
        self.can_focus = focusable  # a chart alone in a tab holds the focus there
        self.title = title
        self.xlabel = xlabel
        self.percent = percent
        self.lines: list[Line] = []
        self.ylim: tuple[float, float] | None = None
        self.xint = True
        self.smooth = 0.0
        self.empty = "waiting for data"
        self.chances: tuple[tuple[str, float], ...] = ()
        self._key: tuple | None = None

    @property
    def series(self) -> dict[str, tuple[list[float], list[float]]]:
        """label -> (x, y) of the raw (unsmoothed, unscaled) data."""
        return {ln.label or "": (list(ln.x), list(ln.y)) for ln in self.lines}

    def set_series(
        self,
        x: Sequence[float],
        series: dict[str, Sequence[float | None]],
        ylim: tuple[float, float] | None = None,
        chances: Sequence[tuple[str, float]] = (),
    ) -> bool:
        """Several series of one run over one x column, coloured by position."""
        lines = [
            line(n, x, ys, PALETTE[i % len(PALETTE)]) for i, (n, ys) in enumerate(series.items())
        ]
        return self.set_lines(lines, ylim=ylim, chances=chances)

    def set_lines(
        self,
        lines: Sequence[Line],
        *,
        title: str | None = None,
        xlabel: str | None = None,
        ylim: tuple[float, float] | None = None,
        xint: bool = True,
        smooth: float = 0.0,
        empty: str = "waiting for data",
        chances: Sequence[tuple[str, float]] = (),
    ) -> bool:
        """Replace what the chart shows; returns False (and draws nothing) when unchanged.
        `ylim` is in data units (0..1 for a share on a percent chart); `chances`: (legend,
        level) pairs in the same units, drawn dashed."""
        title = self.title if title is None else title
        xlabel = self.xlabel if xlabel is None else xlabel
        chances = tuple(chances)
        key = (tuple(lines), title, xlabel, ylim, xint, smooth, empty, chances)
        if key == self._key:
            return False
        self._key = key
        self.lines, self.title, self.xlabel = list(lines), title, xlabel
        self.ylim, self.xint, self.smooth, self.empty = ylim, xint, smooth, empty
        self.chances = chances
        self.refresh()
        return True

    # ------------------------------------------------------------------ drawing

    def _scaled(self) -> list[tuple[Line, list[float]]]:
        k = 100.0 if self.percent else 1.0
        return [(ln, [k * v for v in axes.ema(ln.y, self.smooth)]) for ln in self.lines if ln.x]

    def render(self) -> RenderableType:
        self._draw(self.size.width, self.size.height)
        return super().render()

    def _draw(self, width: int, height: int) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        title = self.title + (f" (smoothed {self.smooth:g})" if self.smooth else "")
        plt.title(title)
        plt.xlabel(self.xlabel)
        drawn = self._scaled()
        if not drawn:
            plt.text(self.empty, 0.5, 0.5, alignment="center")
            plt.xlim(0, 1)
            plt.ylim(0, 1)
            plt.xticks([])
            plt.yticks([])
            return
        for ln, ys in drawn:
            n = len(ln.x)
            marker = "braille" if n > HD_MAX_POINTS else ("hd" if n > 1 else "●")
            plt.plot(list(ln.x), ys, label=ln.label, color=ln.color, marker=marker)
        self._chance(drawn, width)
        self._y_axis(drawn, height)
        self._x_axis(drawn, width)

    def _chance(self, drawn: list[tuple[Line, list[float]]], width: int) -> None:
        """Each chance level as dashes across the x range (plotext has no dashed style)."""
        xs = [x for ln, _ in drawn for x in ln.x]
        lo, hi = min(xs), max(xs)
        k = 100.0 if self.percent else 1.0
        n = max(2, (width - 10) // 2)
        dash_x = [lo + (hi - lo) * i / (n - 1) for i in range(n)] if hi > lo else [lo]
        for label, level in self.chances:
            self.plt.scatter(dash_x, [k * level] * len(dash_x), marker="-", color="gray",
                             label=label)  # fmt: skip

    def _y_axis(self, drawn: list[tuple[Line, list[float]]], height: int) -> None:
        k = 100.0 if self.percent else 1.0
        if self.ylim is not None:
            lo, hi = k * self.ylim[0], k * self.ylim[1]
        else:
            ys = [v for _, vs in drawn for v in vs] + [k * c for _, c in self.chances]
            lo, hi = min(ys), max(ys)
        # plot rows: the height less the frame, the title, the x ticks and the x label
        rows = height - 2 - 1 - 1 - (1 if self.xlabel else 0)
        clamp = (0.0, 100.0) if self.percent else None
        lo, hi, ticks = axes.nice_axis(lo, hi, max(2, rows // 2 + 1), clamp=clamp)
        if self.ylim is not None:
            lo, hi = k * self.ylim[0], k * self.ylim[1]
            ticks = [t for t in ticks if lo - 1e-9 <= t <= hi + 1e-9]
        self.plt.ylim(lo, hi)
        self.plt.yticks(ticks, [axes.tick_label(t, ticks, self.percent) for t in ticks])

    def _x_axis(self, drawn: list[tuple[Line, list[float]]], width: int) -> None:
        xs = [x for ln, _ in drawn for x in ln.x]
        lo, hi = min(xs), max(xs)
        widest = max(len(axes.tick_label(v, [lo, hi])) for v in (lo, hi)) + 3
        max_ticks = max(2, (width - 8) // max(4, widest))
        a, b, ticks = axes.nice_axis(lo, hi, max_ticks, integer=self.xint)
        if lo == hi:
            lo, hi = a, b
        ticks = [t for t in ticks if lo - 1e-9 <= t <= hi + 1e-9] or [lo]
        self.plt.xlim(lo, hi)
        self.plt.xticks(ticks, [axes.tick_label(t, ticks) for t in ticks])
