"""A coloured matrix with a keyboard cursor (per-cell metrics, confusion matrices, deltas).

The column header and the colour legend stay put while the rows scroll under them with the
cursor, so a matrix taller than the screen (17 modulations at 80x24) is read by moving the
cursor. Every column gets a label: labels too wide for one header line are staggered over up
to four lines. Cells show their value when it fits with a space beside it, else colour only;
the exact value always shows in the screen's readout via `Highlighted`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rich.style import Style
from rich.text import Text
from textual.containers import Vertical
from textual.events import Click, MouseScrollDown, MouseScrollUp, Resize
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from amc_tui.tui import keys
from amc_tui.tui.models.heat import Scale, hex_color, text_color

MIN_CELL, MAX_CELL = 2, 6
MAX_HEADER_LINES = 4
LEGEND_STEPS = 8


def _clean(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


class Heatmap(Widget, can_focus=True):
    """rows x cols values coloured by a `Scale`; arrows, PageUp/PageDown move the cursor."""

    DEFAULT_CSS = """
    Heatmap { height: auto; width: 1fr; }
    """
    BINDINGS = keys.bindings("heatmap")

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

    def __init__(
        self, *, legend: bool = True, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.row_labels: list[str] = []
        self.col_labels: list[str] = []
        self.values: list[list[float | None]] = []
        self.scale = Scale()
        self.legend = legend
        self.top = 0  # first data row on screen

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
        self.top = min(self.top, max(0, len(self.row_labels) - 1))
        self._follow()
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

    def header_lines(self, cw: int | None = None) -> int:
        """Header lines needed so every column label fits with a space after it."""
        cw = self.cell_width() if cw is None else cw
        longest = max((len(c) for c in self.col_labels), default=0)
        if longest <= cw - 1 or not self.col_labels:
            return 1
        return min(MAX_HEADER_LINES, math.ceil((longest + 1) / cw))

    def chrome_lines(self) -> int:
        """Lines that do not scroll: header and legend."""
        return self.header_lines() + (1 if self.legend and self.row_labels else 0)

    def visible_rows(self) -> int:
        """Data rows on screen at the current size."""
        return max(1, self.size.height - self.chrome_lines())

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        if not self.row_labels:
            return 1
        return (
            len(self.row_labels)
            + self.header_lines(self.cell_width(width))
            + (1 if self.legend else 0)
        )

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return self.label_width + MIN_CELL * max(1, len(self.col_labels))

    # ------------------------------------------------------------------ drawing

    def _header(self, cw: int) -> list[Text]:
        """Column labels: right-aligned over their cells on one line when they fit, else
        staggered over k lines, each starting at its column."""
        k = self.header_lines(cw)
        width = max(self.size.width, self.label_width + cw * len(self.col_labels))
        lines = [[" "] * width for _ in range(k)]
        spans: list[tuple[int, int, int]] = []  # (line, start, end) per column
        for j, label in enumerate(self.col_labels):
            line = j % k
            room = cw - 1 if k == 1 else k * cw - 1
            text = label[: max(1, room)]
            start = self.label_width + j * cw
            if k == 1:
                start += cw - len(text)
            start = max(self.label_width + j * cw - cw + 1, min(start, width - len(text)))
            end = min(width, start + len(text))
            lines[line][start:end] = list(text[: end - start])
            spans.append((line, start, end))
        out = [Text("".join(chars), style="dim") for chars in lines]
        c = self.cursor[1]
        if 0 <= c < len(spans):
            line, start, end = spans[c]
            out[line].stylize(Style(reverse=self.has_focus, bold=True, dim=False), start, end)
        return out

    def _legend(self, width: int) -> Text:
        text = Text(no_wrap=True, overflow="crop")
        lo, hi = self.scale.span()
        text.append(self.scale.end_text(lo) + " ", style="dim")
        for rgb in self.scale.legend_colors(LEGEND_STEPS):
            text.append(" ", style=Style(bgcolor=hex_color(rgb)))
        text.append(" " + self.scale.end_text(hi), style="dim")
        text.append("  · no data", style="grey50")
        n, vis = len(self.row_labels), self.visible_rows()
        if n > vis:
            last = min(n, self.top + vis)
            hint = f"rows {self.top + 1}-{last} of {n}"
            hint += " ▲" if self.top > 0 else ""
            hint += " ▼" if last < n else ""
            pad = width - text.cell_len - len(hint)
            text.append(" " * max(2, pad) + hint, style="bold")
        return text

    def render(self) -> Text:
        if not self.row_labels:
            return Text("no data", style="dim italic")
        cw = self.cell_width()
        labels = [self.scale.text(v) for row in self.values for v in row]
        show_values = cw >= 3 and all(len(t) <= cw - 1 for t in labels)
        out = Text(no_wrap=True, overflow="crop")
        for i, line in enumerate(self._header(cw)):
            if i:
                out.append("\n")
            out.append_text(line)
        cur_r, cur_c = self.cursor
        vis = self.visible_rows()
        for i in range(self.top, min(len(self.row_labels), self.top + vis)):
            label = self.row_labels[i]
            out.append("\n")
            style = Style(bold=True, reverse=self.has_focus) if i == cur_r else Style()
            out.append(label.rjust(self.label_width - 1), style=style)
            out.append(" ")
            row = self.values[i] if i < len(self.values) else []
            for j in range(len(self.col_labels)):
                out.append(*self._cell(row[j] if j < len(row) else None, cw, show_values,
                                       (i, j) == (cur_r, cur_c)))  # fmt: skip
        if self.legend:
            out.append("\n")
            out.append_text(self._legend(self.size.width))
        return out

    def _cell(self, v: float | None, cw: int, show_values: bool, current: bool) -> tuple:
        rgb = self.scale.rgb(v)
        text = self.scale.text(v).rjust(cw) if show_values else " " * cw
        if rgb is None:
            style = Style(color="grey50")
            text = "·".center(cw)
        else:
            style = Style(bgcolor=hex_color(rgb), color=text_color(rgb))
        if current and self.has_focus:
            style += Style(reverse=True, bold=True)
            if not show_values:
                text = "[]"[:cw].center(cw)
        elif current:
            style += Style(bold=True, underline=True)
        return text, style

    # ------------------------------------------------------------------ interaction

    def _follow(self) -> None:
        """Scroll so the cursor's row is on screen."""
        r = self.cursor[0]
        vis = self.visible_rows() if self.size.height else len(self.row_labels)
        if r < self.top:
            self.top = r
        elif r >= self.top + vis:
            self.top = r - vis + 1
        self.top = max(0, min(self.top, max(0, len(self.row_labels) - vis)))

    def watch_cursor(self, old: tuple[int, int], new: tuple[int, int]) -> None:
        self._follow()
        if old != new:
            self.post_message(self.Highlighted(self, *new))
        self.refresh()

    def on_resize(self, event: Resize) -> None:
        self._follow()
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

    def action_page(self, direction: int) -> None:
        self.action_move(direction * self.visible_rows(), 0)

    def action_edge(self, end: int) -> None:
        if self.col_labels:
            self.cursor = (self.cursor[0], len(self.col_labels) - 1 if end else 0)

    def action_row_edge(self, end: int) -> None:
        if self.row_labels:
            self.cursor = (len(self.row_labels) - 1 if end else 0, self.cursor[1])

    def _scroll(self, dr: int) -> None:
        vis = self.visible_rows()
        self.top = max(0, min(self.top + dr, max(0, len(self.row_labels) - vis)))
        r = min(max(self.cursor[0], self.top), self.top + vis - 1)
        self.cursor = (r, self.cursor[1])
        self.refresh()

    def on_mouse_scroll_down(self, event: MouseScrollDown) -> None:
        event.stop()
        self._scroll(1)

    def on_mouse_scroll_up(self, event: MouseScrollUp) -> None:
        event.stop()
        self._scroll(-1)

    def on_click(self, event: Click) -> None:
        cw = self.cell_width()
        col = (event.x - self.label_width) // cw
        row = event.y - self.header_lines(cw) + self.top
        if self.top <= row < len(self.row_labels) and 0 <= col < len(self.col_labels):
            self.cursor = (row, col)


class HeatBox(Vertical):
    """A column holding heatmaps and other widgets: each heatmap may grow to its share of the
    height left after `reserve` lines (kept for the widgets beside it) and scrolls inside
    that, so nothing else is pushed off screen."""

    DEFAULT_CSS = """
    HeatBox { height: 1fr; }
    """

    def __init__(self, *children: Widget, reserve: int = 0, id: str | None = None) -> None:
        super().__init__(*children, id=id)
        self.reserve = reserve

    def on_resize(self, event: Resize) -> None:
        self.fit()

    def fit(self) -> None:
        heats = list(self.query_children(Heatmap))
        if not heats or not self.size.height:
            return
        share = max(4, (self.size.height - self.reserve) // len(heats))
        for heat in heats:
            heat.styles.max_height = share
