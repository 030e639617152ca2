"""A log's last lines as the Live screen shows train.log: long lines wrap at the panel's
width (nothing is cut at 80 columns; a resize wraps them again), and the panel follows the
end as lines arrive unless the user scrolls up. Then its border says "paused, End to follow"
and the view stays on the same lines, as new ones arrive and old ones drop off the top,
until End, or scrolling back down to the end, follows again.

Lines come in through `add()` (the appended lines, the unfinished last one, and whether the
file started over); reading the file is the caller's job, off the UI thread.

Following is a flag the user's scrolling sets, never a guess from the scroll position: a
panel rewritten, resized or shorter than its lines keeps following, which is what a guess
from the position (Textual's `Log`: at the end before a write) gets wrong.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.geometry import Size
from textual.reactive import var
from textual.scroll_view import ScrollView
from textual.strip import Strip

PAUSED = "paused, End to follow"
# colour and cursor escapes, and control characters but the tab (expanded before)
_CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|[\x00-\x08\x0a-\x1f\x7f]")


def clean(line: str) -> str:
    """A line as drawn: tabs expanded, escapes dropped, other control characters shown as
    the replacement character."""
    line = line.expandtabs()
    return _CONTROL.sub(lambda m: "" if m.group().startswith("\x1b") else "\ufffd", line)


class LogView(ScrollView, can_focus=True):
    """The last `max_lines` lines of a log, wrapped, following the end unless paused."""

    DEFAULT_CSS = """
    LogView {
        background: $surface;
        color: $text;
        overflow-x: hidden;
        overflow-y: auto;
        scrollbar-gutter: stable;
        scrollbar-size-vertical: 1;
        border-subtitle-color: $warning;
        &:focus { background-tint: $foreground 5%; }
    }
    """

    following: var[bool] = var(True)

    def __init__(self, max_lines: int = 200, *, id: str | None = None,
                 classes: str | None = None) -> None:  # fmt: skip
        super().__init__(id=id, classes=classes)
        self.max_lines = max_lines
        self._lines: deque[str] = deque()
        self._wrapped: deque[list[str]] = deque()  # each line's rows at `_width`
        self._partial = ""  # the unfinished last line
        self._partial_rows: list[str] = []
        self._rows: list[str] = []  # every row, in order
        self._width = 0  # the width lines are wrapped at (0: not laid out yet)

    @property
    def lines(self) -> list[str]:
        """The lines held, the unfinished last one included."""
        return [*self._lines, self._partial] if self._partial else list(self._lines)

    # ------------------------------------------------------------------ content

    def add(self, lines: Iterable[str], partial: str = "", reset: bool = False) -> None:
        """Append `lines`; `partial` replaces the unfinished last line; `reset` drops what
        was held first (the file was replaced or truncated) and follows again."""
        if reset:
            self._lines.clear()
            self._wrapped.clear()
            self.following = True
        for line in lines:
            line = clean(line)
            self._lines.append(line)
            self._wrapped.append(self._wrap(line))
        dropped = 0
        while len(self._lines) > self.max_lines:
            self._lines.popleft()
            dropped += len(self._wrapped.popleft())
        self._partial = clean(partial)
        self._partial_rows = self._wrap(self._partial) if self._partial else []
        self._layout(shift=dropped)

    def clear(self) -> None:
        self.add([], reset=True)

    def _wrap(self, line: str) -> list[str]:
        if self._width <= 0 or cell_len(line) <= self._width:
            return [line]
        rows = Text(line).wrap(self.app.console, self._width, overflow="fold")
        return [row.plain for row in rows] or [""]

    def _layout(self, shift: int = 0, top: int | None = None) -> None:
        """Rebuild the rows; keep the end in view when following, else the same text (the
        rows that dropped off the top, `shift`, or the row `top` after a re-wrap)."""
        self._rows = [row for rows in self._wrapped for row in rows] + self._partial_rows
        self.virtual_size = Size(self._width, len(self._rows))
        if self.following:
            y = self.max_scroll_y
        elif top is not None:
            y = top
        else:
            y = self.scroll_y - shift
        self._scroll(y)
        self.refresh()

    def _scroll(self, y: float) -> None:
        # forced: the vertical scrollbar of a panel that just overflowed is not shown yet,
        # and Textual ignores a scroll of a panel without one
        y = max(0, min(y, self.max_scroll_y))
        self.scroll_to(y=y, animate=False, immediate=True, force=True)

    def on_resize(self, event: events.Resize) -> None:
        width = self.scrollable_content_region.width
        if width == self._width:
            self._layout()
            return
        # the line at the top of the view stays at the top after wrapping at the new width
        first = self._line_at(round(self.scroll_y))
        self._width = width
        self._wrapped = deque(self._wrap(line) for line in self._lines)
        self._partial_rows = self._wrap(self._partial) if self._partial else []
        top = sum(len(rows) for rows in list(self._wrapped)[:first])
        self._layout(top=top)

    def _line_at(self, row: int) -> int:
        for i, rows in enumerate(self._wrapped):
            row -= len(rows)
            if row < 0:
                return i
        return len(self._wrapped)

    # ------------------------------------------------------------------ following

    def watch_following(self, following: bool) -> None:
        self.border_subtitle = "" if following else PAUSED

    def follow(self) -> None:
        self.following = True
        self._scroll(self.max_scroll_y)

    def _pause(self) -> None:
        if self.max_scroll_y > 0:
            self.following = False

    def _follow_at_end(self) -> None:
        if self.scroll_y >= self.max_scroll_y:
            self.following = True

    def action_scroll_end(self) -> None:
        self.follow()

    def action_scroll_up(self) -> None:
        self._pause()
        self.scroll_up(animate=False)

    def action_page_up(self) -> None:
        self._pause()
        self.scroll_page_up(animate=False)

    def action_scroll_home(self) -> None:
        self._pause()
        self.scroll_home(animate=False)

    def action_scroll_down(self) -> None:
        self.scroll_down(animate=False)
        self._follow_at_end()

    def action_page_down(self) -> None:
        self.scroll_page_down(animate=False)
        self._follow_at_end()

    def _on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        if not (event.ctrl or event.shift):
            self._pause()
        super()._on_mouse_scroll_up(event)

    def _on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        super()._on_mouse_scroll_down(event)
        self._follow_at_end()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self.is_vertical_scrollbar_grabbed:  # dragged: follows when let go at the end
            self.following = round(new_value) >= self.max_scroll_y

    # ------------------------------------------------------------------ drawing

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        style = self.rich_style
        i = round(self.scroll_y) + y
        if i >= len(self._rows):
            return Strip.blank(width, style)
        row = self._rows[i]
        text = Text(row, style=style, no_wrap=True, end="")
        return Strip(text.render(self.app.console), cell_len(row)).crop_extend(0, width, style)
