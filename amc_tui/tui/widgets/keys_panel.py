"""The `?` keys panel, generated from the key registry (tui/keys.py): every key of the current
screen (hidden ones included), then the app's (the command palette among them), then what the
focused widget binds (cursor movement, scrolling) and the keys every Textual screen has (focus
next, copy), each line once.

Textual's own panel lists the focused widget first, so a table's dozen cursor keys pushed the
screen's actions below the fold of a 24-line terminal; the footer shows only the main keys.
"""

from __future__ import annotations

from itertools import groupby
from operator import itemgetter

from rich import box
from rich.table import Table
from rich.text import Text
from textual.app import App
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets._key_panel import BindingsTable, KeyPanel

from amc_tui.tui import keys


def panel_lines(app: App, screen: Screen) -> list[list[tuple[str, str]]]:
    """The panel's sections of (keys, text) lines: the screen's and the app's registry rows
    (a dialog has only its own), then the focused widget's bindings and Textual's own,
    leaving out a line already shown."""
    own = (keys.where_of(screen),) + (() if screen.is_modal else ("app",))  # a dialog's alone
    sections = [[(row.key_display(app), row.text) for row in keys.rows(where)] for where in own]
    ours = {where: {row.action for row in keys.rows(where)} for where in own}
    generic: list[Binding] = []
    for ns, items in groupby(screen.active_bindings.values(), key=itemgetter(0)):
        bindings = [b for _, b, _enabled, _tip in items if not b.system and b.description]
        if isinstance(ns, Screen | App):  # Textual's keys of every screen (ours are above)
            generic += [b for b in bindings if b.action not in ours.get(keys.where_of(ns), ())]
        else:
            sections.append(_by_action(app, bindings))
    sections.append(_by_action(app, generic))
    shown: set[tuple[str, str]] = set()
    out = []
    for lines in sections:
        fresh = [line for line in dict.fromkeys(lines) if line not in shown]
        shown.update(fresh)
        if fresh:
            out.append(fresh)
    return out


def _by_action(app: App, bindings: list[Binding]) -> list[tuple[str, str]]:
    by_action: dict[str, list[Binding]] = {}
    for b in bindings:
        by_action.setdefault(b.action, []).append(b)
    return [
        (" ".join(dict.fromkeys(app.get_key_display(b) for b in same)), same[0].description)
        for same in by_action.values()
    ]


class OrderedBindingsTable(BindingsTable):
    def render_bindings_table(self) -> Table:
        key_style = self.get_component_rich_style("bindings-table--key")
        desc_style = self.get_component_rich_style("bindings-table--description")
        table = Table(padding=(0, 0), show_header=False, box=box.SIMPLE)
        table.add_column("", justify="right")
        table.add_column("")
        for lines in panel_lines(self.app, self.screen):
            for key, text in lines:
                table.add_row(Text(key + " ", style=key_style), Text(text, desc_style))
            table.add_section()
        return table


class KeysPanel(KeyPanel):
    DEFAULT_CSS = """
    KeysPanel { width: 42; max-width: 50%; }
    """

    def compose(self):  # type: ignore[override]
        yield OrderedBindingsTable(shrink=True, expand=False)
