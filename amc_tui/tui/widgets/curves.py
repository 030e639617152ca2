"""Line charts over epochs or steps (textual-plotext), redrawn only when their data changes."""

from __future__ import annotations

from collections.abc import Sequence

from textual_plotext import PlotextPlot

from amc_tui.tui.fmt import is_num

# plotext colour names, one per series, stable across redraws
PALETTE = ("cyan", "orange", "green", "magenta", "red", "blue", "yellow")


def _pairs(xs: Sequence[float], ys: Sequence[float | None]) -> tuple[list[float], list[float]]:
    px, py = [], []
    for x, y in zip(xs, ys, strict=False):
        if is_num(y):
            px.append(float(x))
            py.append(float(y))  # type: ignore[arg-type]
    return px, py


class Curves(PlotextPlot):
    """One chart: several named series against a shared x axis."""

    def __init__(self, title: str, xlabel: str = "epoch", *, id: str | None = None,
                 classes: str | None = None) -> None:  # fmt: skip
        super().__init__(id=id, classes=classes)
        self.title = title
        self.xlabel = xlabel
        self._key: tuple | None = None
        self.series: dict[str, tuple[list[float], list[float]]] = {}

    def on_mount(self) -> None:
        super().on_mount()
        self._draw()

    def set_series(
        self,
        x: Sequence[float],
        series: dict[str, Sequence[float | None]],
        ylim: tuple[float, float] | None = None,
    ) -> bool:
        """Replace the data; returns False (and draws nothing) when it is unchanged."""
        data = {name: _pairs(x, ys) for name, ys in series.items()}
        key = (tuple((n, tuple(px), tuple(py)) for n, (px, py) in data.items()), ylim)
        if key == self._key:
            return False
        self._key = key
        self.series = data
        self._ylim = ylim
        self._draw()
        return True

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(self.title)
        plt.xlabel(self.xlabel)
        empty = True
        for i, (name, (px, py)) in enumerate(self.series.items()):
            if not px:
                continue
            empty = False
            marker = "braille" if len(px) > 60 else "hd"
            plt.plot(px, py, label=name, color=PALETTE[i % len(PALETTE)], marker=marker)
        ylim = getattr(self, "_ylim", None)
        if ylim is not None and not empty:
            plt.ylim(*ylim)
        if empty:
            plt.text("waiting for data", 0.5, 0.5, alignment="center")
            plt.xlim(0, 1)
            plt.ylim(0, 1)
        self.refresh()
