"""A coloured matrix with a keyboard cursor (per-cell metrics, confusion matrices, deltas).

Cells shrink to two characters (colour only) in 80 columns and grow to show their value when
there is room; the exact value always shows in the screen's info line via `Highlighted`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.events import Click
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from amc_tui.tui.heat import Scale, hex_color, text_color

MIN_CELL, MAX_CELL = 2, 6


def _clean(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


class Heatmap(Widget, can_focus=True):
    """rows x cols values coloured by a `Scale`; arrows move the cursor."""

    DEFAULT_CSS = """
    Heatmap { height: auto; width: 1fr; }
    """
    BINDINGS = [
        Binding("up", "move(-1, 0)", "Up", show=False),
        Binding("down", "move(1, 0)", "Down", show=False),
        Binding("left", "move(0, -1)", "Left", show=False),
        Binding("right", "move(0, 1)", "Right", show=False),
        Binding("home", "edge(0)", "First col", show=False),
        Binding("end", "edge(1)", "Last col", show=False),
    ]

    cursor: reactive[tuple[int, int]] = reactive((0, 0))

    class Highlighted(Message):
        """The cursor moved to (row, col)."""

        def __init__(self, heatmap: Heatmap, row: int, col: int) -> None:
            super().__init__()
            self.heatmap = heatmap
            self.row = row
            self.col = col

        @property
        def control(self) -> Heatmap:
            return self.heatmap

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.row_labels: list[str] = []
        self.col_labels: list[str] = []
        self.values: list[list[float | None]] = []
        self.scale = Scale()

    def set_data(
        self,
        row_labels: Sequence[Any],
        col_labels: Sequence[Any],
        values: Any,
        scale: Scale,
    ) -> None:
        self.row_labels = [str(r) for r in row_labels]
        self.col_labels = [str(c) for c in col_labels]
        self.values = [[_clean(v) for v in row] for row in values]
        self.scale = scale
        r, c = self.cursor
        self.cursor = (
            min(r, max(0, len(self.row_labels) - 1)),
            min(c, max(0, len(self.col_labels) - 1)),
        )
        self.refresh(layout=True)
        self.post_message(self.Highlighted(self, *self.cursor))

    def value_at(self, row: int, col: int) -> float | None:
        try:
            return self.values[row][col]
        except IndexError:
            return None

    # ------------------------------------------------------------------ geometry

    @property
    def label_width(self) -> int:
        return max((len(r) for r in self.row_labels), default=0) + 1

    def cell_width(self, width: int | None = None) -> int:
        n = max(1, len(self.col_labels))
        avail = (self.size.width if width is None else width) - self.label_width
        return max(MIN_CELL, min(MAX_CELL, avail // n))

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self.row_labels) + 1 if self.row_labels else 1

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return self.label_width + MIN_CELL * max(1, len(self.col_labels))

    # ------------------------------------------------------------------ drawing

    def _header(self, cw: int) -> Text:
        line = [" "] * (self.label_width + cw * len(self.col_labels))
        free_from = 0
        for j, label in enumerate(self.col_labels):
            start = self.label_width + j * cw
            start = start + max(0, cw - len(label))  # right-align over its cell
            if start < free_from or start + len(label) > len(line):
                continue
            line[start : start + len(label)] = list(label)
            free_from = start + len(label) + 1
        return Text("".join(line), style="dim")

    def render(self) -> Text:
        if not self.row_labels:
            return Text("no data", style="dim italic")
        cw = self.cell_width()
        show_values = cw >= 3
        out = Text(no_wrap=True, overflow="crop")
        out.append_text(self._header(cw))
        cur_r, cur_c = self.cursor
        for i, label in enumerate(self.row_labels):
            out.append("\n")
            out.append(label.rjust(self.label_width - 1) + " ", style="bold" if i == cur_r else "")
            row = self.values[i] if i < len(self.values) else []
            for j in range(len(self.col_labels)):
                v = row[j] if j < len(row) else None
                rgb = self.scale.rgb(v)
                text = self.scale.label(v, cw) if show_values else " " * cw
                if rgb is None:
                    style = Style(color="grey50")
                    text = "·".center(cw) if not show_values else text
                else:
                    style = Style(bgcolor=hex_color(rgb), color=text_color(rgb))
                if (i, j) == (cur_r, cur_c) and self.has_focus:
                    style += Style(reverse=True, bold=True)
                    if not show_values:
                        text = "[]"[:cw].ljust(cw)
                elif (i, j) == (cur_r, cur_c):
                    style += Style(bold=True, underline=True)
                out.append(text, style=style)
        return out

    # ------------------------------------------------------------------ interaction

    def watch_cursor(self, old: tuple[int, int], new: tuple[int, int]) -> None:
        if old != new:
            self.post_message(self.Highlighted(self, *new))
        self.refresh()

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def action_move(self, dr: int, dc: int) -> None:
        if not self.row_labels:
            return
        r, c = self.cursor
        r = min(max(0, r + dr), len(self.row_labels) - 1)
        c = min(max(0, c + dc), len(self.col_labels) - 1)
        self.cursor = (r, c)
        self.scroll_to_region_of_row(r)

    def action_edge(self, end: int) -> None:
        if self.col_labels:
            self.cursor = (self.cursor[0], len(self.col_labels) - 1 if end else 0)

    def scroll_to_region_of_row(self, row: int) -> None:
        """Keep the cursor's row visible inside a taller-than-screen scroll container."""
        parent = self.parent
        if isinstance(parent, Widget) and parent.allow_vertical_scroll:
            vr = self.virtual_region
            parent.scroll_to_region(Region(vr.x, vr.y + row, 1, 2), animate=False)

    def on_click(self, event: Click) -> None:
        cw = self.cell_width()
        col = (event.x - self.label_width) // cw
        row = event.y - 1
        if 0 <= row < len(self.row_labels) and 0 <= col < len(self.col_labels):
            self.cursor = (row, col)
