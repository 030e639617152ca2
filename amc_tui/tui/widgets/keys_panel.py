"""The `?` keys panel: every key of the current screen (hidden ones included), then the app's
(the command palette among them), then the focused widget's generic keys (cursor movement,
scrolling) and the ones every Textual screen has (focus next, copy).

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


def _actions(classes: list[type]) -> set[str]:
    out: set[str] = set()
    for cls in classes:
        for b in cls.__dict__.get("BINDINGS", []):
            out.add(b.action if isinstance(b, Binding) else str(b[1]))
    return out


BASE_ACTIONS = _actions([Screen, App])


def _generic(binding: Binding, node: object) -> bool:
    """A key every Textual screen or app has (focus next, copy, ...), unless ours binds
    the same action (quit)."""
    ours = [
        c
        for c in type(node).__mro__
        if c not in (Screen, App) and c.__module__.startswith("amc_tui")
    ]
    return binding.action in BASE_ACTIONS and binding.action not in _actions(ours)


class OrderedBindingsTable(BindingsTable):
    def render_bindings_table(self) -> Table:
        own: list[tuple[int, list[Binding]]] = []  # (rank, bindings): 0 screen, 1 app
        widget: list[list[Binding]] = []
        generic: list[Binding] = []
        for ns, items in groupby(self.screen.active_bindings.values(), key=itemgetter(0)):
            bindings = [b for _, b, _enabled, _tip in items if not b.system and b.description]
            if isinstance(ns, Screen | App):
                own.append((0 if isinstance(ns, Screen) else 1,
                            [b for b in bindings if not _generic(b, ns)]))  # fmt: skip
                generic += [b for b in bindings if _generic(b, ns)]
            else:
                widget.append(bindings)
        own.sort(key=itemgetter(0))
        key_style = self.get_component_rich_style("bindings-table--key")
        desc_style = self.get_component_rich_style("bindings-table--description")
        table = Table(padding=(0, 0), show_header=False, box=box.SIMPLE)
        table.add_column("", justify="right")
        table.add_column("")

        def section(bindings: list[Binding]) -> None:
            by_action: dict[str, list[Binding]] = {}
            for b in bindings:
                by_action.setdefault(b.action, []).append(b)
            for same in by_action.values():
                keys = " ".join(dict.fromkeys(self.app.get_key_display(b) for b in same))
                table.add_row(
                    Text(keys + " ", style=key_style), Text(same[0].description, desc_style)
                )
            if by_action:
                table.add_section()

        for _rank, bindings in own:
            section(bindings)
        for bindings in widget:
            section(bindings)
        section(generic)
        return table


class KeysPanel(KeyPanel):
    DEFAULT_CSS = """
    KeysPanel { width: 42; max-width: 50%; }
    """

    def compose(self):  # type: ignore[override]
        yield OrderedBindingsTable(shrink=True, expand=False)
