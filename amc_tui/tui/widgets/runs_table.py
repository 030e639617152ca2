"""The Runs table widget: a DataTable whose drawn rows always match its column widths.

DataTable measures columns when it is idle and caches rendered lines under a counter that
only changes with the data, the cursor and the scroll position. A frame drawn between a
change and that measurement (a burst of keys keeps the table busy while polls add rows or
widen cells) is cached at the old widths, and the table draws those squashed lines again
whenever the cursor and scroll return to where they were, until a resize. Here a change of
any column width discards those lines. Cells grow their column when their text gets wider
(`11/20` after `9/20`), and rows are put in a given order by run key.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey

from amc_tui.tui import keys


class RunsTable(DataTable):
    BINDINGS = keys.bindings("runs_table")

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._drawn_widths: tuple[int, ...] = ()

    def _widths(self) -> tuple[int, ...]:
        return tuple(c.content_width for c in self.columns.values())

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        super()._update_dimensions(new_rows)
        widths = self._widths()
        if widths != self._drawn_widths:
            self._drawn_widths = widths
            self._clear_caches()
            self._update_count += 1  # lines cached at the old widths are never reused
            self.refresh()

    def set_cell(self, row: str, column: str, value: Text) -> None:
        """Update a cell, widening its column when the new text needs more room."""
        col = self.columns.get(column)  # type: ignore[call-overload]
        wider = col is not None and value.cell_len > col.content_width
        self.update_cell(row, column, value, update_width=wider)

    def set_label(self, column: str, label: str) -> None:
        """A new header text (the sort arrow); the column grows to fit it."""
        col = self.columns.get(column)  # type: ignore[call-overload]
        if col is None or col.label.plain == label:
            return
        col.label = Text(label)
        col.content_width = max(col.content_width, col.label.cell_len)
        self._require_update_dimensions = True
        self._clear_caches()
        self._update_count += 1
        self.refresh()

    def row_keys(self) -> list[str]:
        """Run keys in display order."""
        return [str(r.key.value) for r in self.ordered_rows]

    def cursor_key(self) -> str | None:
        rows = self.ordered_rows
        if not rows or not 0 <= self.cursor_row < len(rows):
            return None
        return str(rows[self.cursor_row].key.value)

    def put_in_order(self, keys: Sequence[str], name_column: str = "name") -> bool:
        """Order rows as `keys` (rows not listed go last), keeping the cursor on its run.
        Nothing is touched when the order is already right (no redraw, no flicker)."""
        rank = {k: i for i, k in enumerate(keys)}
        current = self.row_keys()
        wanted = sorted(current, key=lambda k: rank.get(k, len(rank)))
        if wanted == current:
            return False
        at = self.cursor_key()
        self.sort(name_column, key=lambda cell: rank.get(getattr(cell, "run_key", ""), len(rank)))
        if at is not None:
            self.move_cursor(row=self.get_row_index(at), animate=False)
        return True
