"""Which runs a chart overlays and in which colour: the run on screen plus the runs marked on
the Runs screen, any number. A run's colour is its place in the mark order (an unmarked run
on screen comes after the marked ones), so it is the same in every chart of every screen.

`OverlayFeed` keeps one incremental event reader per overlaid run for the Live screen's poll
worker (byte offsets, never a re-read).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amc_tui.run.rundir import EventTailer, RunDir
from amc_tui.tui.models.axes import run_color
from amc_tui.tui.models.live_model import LiveModel, LiveView


def marked_runs(app: Any) -> list[Path]:
    """Run directories marked on the Runs screen, in mark order (read, never changed)."""
    keys = getattr(app, "marked_runs", None)
    if keys is None:
        for screen in getattr(app, "screen_stack", []):
            if isinstance(getattr(screen, "marked", None), list | tuple | set):
                keys = screen.marked
                break
    return [Path(k) for k in keys or []]


@dataclass(frozen=True)
class Overlay:
    dirs: tuple[Path, ...]  # the run on screen first, then the other marked runs
    colors: dict[Path, str]

    @property
    def multi(self) -> bool:
        return len(self.dirs) > 1


def caption(ov: Overlay, shown_has_epochs: bool) -> str:
    """What the Live screen says above charts that overlay other runs ("" with one run): that
    the other lines are the runs marked on the Runs screen, and which run the screen shows,
    also while that run has no line yet (a legend of marked runs alone misleads)."""
    if not ov.multi:
        return ""
    marked = ", ".join(d.name for d in ov.dirs[1:])
    shown = ov.dirs[0].name
    if shown_has_epochs:
        return f"overlay: {marked} (marked on Runs) + this run, {shown}"
    return f"overlay: {marked} (marked on Runs); {shown}: no epoch yet"


def overlay(current: Path, marked: Sequence[Path]) -> Overlay:
    current = Path(current)
    order = list(dict.fromkeys([*map(Path, marked), current]))
    colors = {d: run_color(i) for i, d in enumerate(order)}
    others = [d for d in order if d != current]
    return Overlay((current, *others), colors)


class OverlayFeed:
    """Event models of the overlaid runs other than the one on screen, fed incrementally."""

    def __init__(self) -> None:
        self.models: dict[Path, tuple[Any, LiveModel]] = {}
        self.names: dict[Path, str] = {}

    def poll(self, dirs: Sequence[Path]) -> dict[Path, LiveView]:
        """A view per run in `dirs` (call from a worker thread: file I/O)."""

        out: dict[Path, LiveView] = {}
        for d in dirs:
            if d not in self.models:
                self.models[d] = (EventTailer(RunDir(d).events), LiveModel())
                self.names[d] = d.name
            tailer, model = self.models[d]
            while batch := tailer.poll(max_bytes=4 << 20):
                model.feed(batch)
            out[d] = model.view()
        for d in [d for d in self.models if d not in dirs]:
            del self.models[d]
        return out
