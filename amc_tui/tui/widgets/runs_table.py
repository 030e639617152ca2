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
from textual.widgets.data_table import DuplicateKey, Row, RowKey

from amc_tui.tui import keys


class RunsTable(DataTable):
    BINDINGS = keys.bindings("runs_table")

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._drawn_widths: tuple[int, ...] = ()

    def _widths(self) -> tuple[int, ...]:
        return tuple(c.content_width for c in self.columns.values())

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        """DataTable measures every new cell through Rich's console (tens of microseconds
        each: 10,000 runs took seconds); a one-line Text cell, which is every cell the Runs
        view makes, is as wide as its `cell_len` (`add_many` measures its rows as it adds
        them). Other cells go the DataTable's way."""
        columns = self.ordered_columns
        slow: list[RowKey] = []
        for row_key in new_rows:
            cells = self._data.get(row_key)
            row = self.rows.get(row_key)
            if cells is None or row is None:
                continue  # removed before the table was idle
            values = [cells.get(c.key) for c in columns]
            widths = [_width(v) for v in values]
            if row.label is not None or row.auto_height or None in widths:
                slow.append(row_key)
                continue
            for column, width in zip(columns, widths, strict=True):
                if width > column.content_width:  # type: ignore[operator]
                    column.content_width = width  # type: ignore[assignment]
        super()._update_dimensions(slow)
        widths_now = self._widths()
        if widths_now != self._drawn_widths:
            self._drawn_widths = widths_now
            self._clear_caches()
            self._update_count += 1  # lines cached at the old widths are never reused
            self.refresh()

    def add_many(self, rows: Sequence[tuple[str, Sequence[Text]]]) -> None:
        """`add_row` for many one-line rows at once. DataTable.add_row re-validates the cursor
        (a reactive with watchers) for every row: about a millisecond each, seconds for
        10,000 runs; here once for the lot. Columns are widened here, from the cells' text,
        rather than by measuring every row again when the table is idle."""
        if not rows:
            return
        was_empty = self.row_count == 0
        columns = self.ordered_columns
        most = [c.content_width for c in columns]
        for key, cells in rows:
            row_key = RowKey(key)
            if row_key in self._row_locations:
                raise DuplicateKey(f"The row key {row_key!r} already exists.")
            self._row_locations[row_key] = self.row_count
            self._data[row_key] = {c.key: cell for c, cell in zip(columns, cells, strict=True)}
            self.rows[row_key] = Row(row_key, 1, None, False)
            widths = [_width(cell) for cell in cells]
            if None in widths:
                self._new_rows.add(row_key)  # measured the DataTable's way when idle
                continue
            most = [max(m, w) for m, w in zip(most, widths, strict=True)]  # type: ignore[type-var]
        for column, width in zip(columns, most, strict=True):
            column.content_width = width
        self._require_update_dimensions = True
        self.cursor_coordinate = self.cursor_coordinate
        if was_empty and self.columns and self.show_cursor and self.cursor_type != "none":
            self._highlight_cursor()
        self._update_count += 1
        self.check_idle()

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


def _width(value: object) -> int | None:
    """Columns a one-line Text cell takes (its length when ASCII, the common case: a tenth
    of the cost of measuring); None for anything else."""
    if not isinstance(value, Text):
        return None
    plain = value.plain
    if "\n" in plain:
        return None
    return len(plain) if plain.isascii() else value.cell_len
