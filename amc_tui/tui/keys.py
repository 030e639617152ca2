"""The key registry: every key the app binds, in one table. A row says where the key works,
which key it is, the action it runs, the text the footer and the keys panel show, whether the
footer shows it, and whether it beats the focused widget (priority).

Each screen, dialog and widget builds its BINDINGS from its rows (`bindings(where)`); the keys
panel (`?`, widgets/keys_panel.py) and the command palette (app.py) list the rows of the
screen on show and the app's. `where` is a screen's name in the screen registry
(tui/registry.py), or a name in `HOLDERS`: "app" (keys that work everywhere), a dialog or a
widget. tests/test_tui_keys.py checks that every class's BINDINGS are its rows, that no class
binds a key outside this table, and that the panel lists every row.

The footer rule: a screen's shown rows, its `? Keys` row last (F1 as well; `f1 Keys` on New
run, where `?` in a field is text) and the palette key fit 80 columns whole; what does not fit
is `show=False` and listed by the panel. tests/test_tui_fit.py draws every screen's footer at
80x24 and compares it with these rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.binding import Binding

from amc_tui.tui import registry

if TYPE_CHECKING:
    from textual.app import App


@dataclass(frozen=True)
class Key:
    where: str  # a screen of the screen registry, or a name in HOLDERS
    key: str  # Textual key names; "m,space" binds both
    action: str
    text: str  # what the footer and the keys panel call it
    show: bool = True  # in the footer
    priority: bool = False  # beats the focused widget (a key typed in a text box included)

    def binding(self) -> Binding:
        return Binding(self.key, self.action, self.text, show=self.show, priority=self.priority)

    def key_display(self, app: App) -> str:
        """The row's keys as the footer draws them (`m space`, `^q`)."""
        shown = (app.get_key_display(Binding(k.strip(), self.action)) for k in self.key.split(","))
        return " ".join(dict.fromkeys(shown))


# Key holders that are not screens of the registry: the app, the dialogs, the widgets.
HOLDERS: dict[str, str] = {
    "app": "amc_tui.tui.app:AmcApp",
    "confirm": "amc_tui.tui.screens.dialogs:Confirm",
    "prompt": "amc_tui.tui.screens.dialogs:Prompt",
    "pick_columns": "amc_tui.tui.screens.dialogs:PickColumns",
    "runs_table": "amc_tui.tui.widgets.runs_table:RunsTable",
    "heatmap": "amc_tui.tui.widgets.heatmap:Heatmap",
}

KEYS: tuple[Key, ...] = (
    # everywhere
    Key("app", "ctrl+q", "quit", "Quit", show=False, priority=True),
    Key("app", "question_mark,f1", "help", "Keys", show=False),
    Key("app", "G", "groups", "Groups", show=False),
    Key("app", "ctrl+p", "command_palette", "palette", show=False, priority=True),
    # Runs (home)
    Key("runs", "escape", "back", "Clear filter", show=False),
    Key("runs", "enter", "open", "Open", show=False),
    Key("runs", "n", "new", "New"),
    Key("runs", "s", "stop", "Stop"),
    Key("runs", "r", "resume", "Resume"),
    Key("runs", "a", "analysis", "Analysis"),
    Key("runs", "m,space", "mark", "Mark"),
    Key("runs", "c", "compare", "Compare"),
    Key("runs", "slash", "filter", "Filter"),
    Key("runs", "f", "state_filter", "Filter by state", show=False),
    Key("runs", "o", "sort", "Sort"),
    Key("runs", "O", "reverse", "Reverse sort", show=False),
    Key("runs", "C", "columns", "Pick columns", show=False),
    Key("runs", "l", "runlog", "RUNLOG", show=False),
    Key("runs", "g", "gpus", "GPUs", show=False),
    Key("runs", "q", "quit", "Quit"),
    Key("runs", "question_mark,f1", "app.help", "Keys"),  # each footer ends so: the rest
    Key("runs_table", "enter", "select_cursor", "Open", show=False),  # what enter does there
    # New run
    Key("new_run", "escape", "back", "Back"),
    Key("new_run", "ctrl+s", "save", "Save config", priority=True),
    Key("new_run", "ctrl+l", "launch", "Launch", priority=True),
    Key("new_run", "ctrl+t", "next_tab", "Next tab", priority=True),
    Key("new_run", "f1", "app.help", "Keys"),  # `?` in a field is text
    # Live
    Key("live", "escape", "back", "Back"),
    Key("live", "p", "next_plot", "Plot"),
    Key("live", "x", "next_x", "X axis"),
    Key("live", "z", "next_smoothing", "Smooth", show=False),
    Key("live", "s", "stop", "Stop"),
    Key("live", "r", "resume", "Resume"),
    Key("live", "a", "analysis", "Analysis"),
    Key("live", "l", "runlog", "RUNLOG"),
    Key("live", "question_mark,f1", "app.help", "Keys"),
    # Analysis
    Key("analysis", "escape", "back", "Back"),
    Key("analysis", "m", "next_metric", "Metric"),
    Key("analysis", "e", "next_export", "Export"),
    Key("analysis", "E", "prev_export", "Prev export", show=False),
    Key("analysis", "t", "next_tab", "Tab"),
    Key("analysis", "c", "next_curve", "Curve mod"),
    Key("analysis", "h", "focus_heatmap", "Heatmap", show=False),
    Key("analysis", "question_mark,f1", "app.help", "Keys"),
    # Compare
    Key("compare", "escape", "back", "Back"),
    Key("compare", "t", "next_tab", "Tab"),
    Key("compare", "x", "swap", "Swap A/B"),
    Key("compare", "question_mark,f1", "app.help", "Keys"),
    # RUNLOG
    Key("runlog", "escape", "back", "Back"),
    Key("runlog", "j", "focus_index", "Jump"),
    Key("runlog", "i", "toggle_index", "Index"),
    Key("runlog", "R", "reload", "Reload"),
    Key("runlog", "question_mark,f1", "app.help", "Keys"),
    # GPUs
    Key("gpus", "escape", "back", "Back"),
    Key("gpus", "R", "refresh_now", "Refresh"),
    Key("gpus", "question_mark,f1", "app.help", "Keys"),
    # Groups
    Key("groups", "escape", "back", "Back"),
    Key("groups", "enter", "open", "Open"),
    Key("groups", "question_mark,f1", "app.help", "Keys"),
    # dialogs
    Key("confirm", "y", "answer(True)", "Yes"),
    Key("confirm", "n,escape", "answer(False)", "No"),
    Key("prompt", "escape", "cancel", "Cancel"),
    Key("pick_columns", "escape,C", "done", "Done"),
    Key("pick_columns", "d", "defaults", "Defaults"),
    # the heatmap's cell cursor (Analysis, Compare)
    Key("heatmap", "up", "move(-1, 0)", "Up", show=False),
    Key("heatmap", "down", "move(1, 0)", "Down", show=False),
    Key("heatmap", "left", "move(0, -1)", "Left", show=False),
    Key("heatmap", "right", "move(0, 1)", "Right", show=False),
    Key("heatmap", "pageup", "page(-1)", "Page up", show=False),
    Key("heatmap", "pagedown", "page(1)", "Page down", show=False),
    Key("heatmap", "home", "edge(0)", "First col", show=False),
    Key("heatmap", "end", "edge(1)", "Last col", show=False),
    Key("heatmap", "ctrl+home", "row_edge(0)", "First row", show=False),
    Key("heatmap", "ctrl+end", "row_edge(1)", "Last row", show=False),
)


def holders() -> dict[str, str]:
    """where -> "module:Class" of every key holder: the registry's screens and HOLDERS."""
    return {**{name: e.target for name, e in registry.SCREENS.items()}, **HOLDERS}


def rows(where: str | None) -> list[Key]:
    return [k for k in KEYS if k.where == where]


def bindings(where: str) -> list[Binding]:
    """The BINDINGS of the holder `where`, in table order."""
    if where not in holders():
        raise KeyError(f"no key holder {where!r} (tui/registry.py SCREENS or keys.HOLDERS)")
    return [k.binding() for k in rows(where)]


def where_of(node: object) -> str | None:
    """Whose keys a screen, dialog, widget or the app (an instance or a class) has: its own
    class's, or the registered class it derives from."""
    by_target = {target: where for where, target in holders().items()}
    cls = node if isinstance(node, type) else type(node)
    for c in cls.__mro__:
        if (where := by_target.get(registry.target_of(c))) is not None:
            return where
    return None
