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
    doc: str = ""  # what docs/TUI.md's key table says it does (the text when empty)

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
    Key("app", "ctrl+q", "quit", "Quit", show=False, priority=True,
        doc="quit (runs keep running)"),
    Key("app", "question_mark,f1", "help", "Keys", show=False,
        doc="show / hide the keys panel: the screen's keys first (every footer ends with it)"),
    Key("app", "G", "groups", "Groups", show=False,
        doc="Groups: sweep groups, their points, a point's members"),
    Key("app", "ctrl+p", "command_palette", "palette", show=False, priority=True,
        doc='command palette: every action of the screen, plus "Go to ..."'),
    # Runs (home)
    Key("runs", "escape", "back", "Clear filter", show=False, doc="clear the filter"),
    Key("runs", "enter", "open", "Open", show=False, doc="live view of the highlighted run"),
    Key("runs", "n", "new", "New", doc="New run: the config form"),
    Key("runs", "s", "stop", "Stop", doc="stop the highlighted run (asks first)"),
    Key("runs", "r", "resume", "Resume", doc="resume it (a completed run: as a new run, asked)"),
    Key("runs", "a", "analysis", "Analysis", doc="its analysis (exports)"),
    Key("runs", "m,space", "mark", "Mark",
        doc="mark it for compare (two runs; or mark one and highlight another)"),
    Key("runs", "c", "compare", "Compare", doc="compare the two runs"),
    Key("runs", "slash", "filter", "Filter", doc="filter: `state:`, `tag:`, words"),
    Key("runs", "f", "state_filter", "Filter by state", show=False,
        doc="cycle the state filter (running, queued, ...)"),
    Key("runs", "o", "sort", "Sort", doc="next sort column (ties: newest first)"),
    Key("runs", "O", "reverse", "Reverse sort", show=False, doc="reverse the sort"),
    Key("runs", "C", "columns", "Pick columns", show=False,
        doc="pick the columns (`space` or `enter` toggles one, `d` defaults, `escape` applies)"),
    Key("runs", "l", "runlog", "RUNLOG", show=False, doc="RUNLOG, at the highlighted run's entry"),
    Key("runs", "x", "explain", "Explain", show=False,
        doc="Explain: the highlighted run's attribution maps (`amc-tui explain RUN`)"),
    Key("runs", "g", "gpus", "GPUs", show=False, doc="GPUs"),
    Key("runs", "q", "quit", "Quit", doc="quit (runs keep running)"),
    Key("runs", "question_mark,f1", "app.help", "Keys"),  # each footer ends so: the rest
    Key("runs_table", "enter", "select_cursor", "Open", show=False,
        doc="live view of the highlighted run"),  # what enter does there
    # New run
    Key("new_run", "escape", "back", "Back", doc="back (the form's edits are dropped)"),
    Key("new_run", "ctrl+s", "save", "Save config", priority=True, doc="save as a new config"),
    Key("new_run", "ctrl+l", "launch", "Launch", priority=True,
        doc="launch; the run's live view replaces the form (`n` reopens it, last launched)"),
    Key("new_run", "ctrl+t", "next_tab", "Next tab", priority=True,
        doc="next tab (general, data, image, model, train, loss, run, queue)"),
    Key("new_run", "f1", "app.help", "Keys"),  # `?` in a field is text
    # Live
    Key("live", "escape", "back", "Back", doc="back"),
    Key("live", "p", "next_plot", "Plot", doc="next chart (below 120 columns)"),
    Key("live", "x", "next_x", "X axis", doc="curves' x axis: epoch, step, time"),
    Key("live", "z", "next_smoothing", "Smooth", show=False, doc="smoothing: none, 0.6, 0.9"),
    Key("live", "s", "stop", "Stop", doc="stop the run (asks first)"),
    Key("live", "r", "resume", "Resume", doc="resume the run"),
    Key("live", "a", "analysis", "Analysis", doc="its analysis"),
    Key("live", "l", "runlog", "RUNLOG", doc="RUNLOG, at its entry"),
    Key("live", "question_mark,f1", "app.help", "Keys"),
    # Analysis
    Key("analysis", "escape", "back", "Back", doc="back"),
    Key("analysis", "m", "next_metric", "Metric", doc="next heatmap metric"),
    Key("analysis", "e", "next_export", "Export", doc="next export (`epoch_NNN`, `final`)"),
    Key("analysis", "E", "prev_export", "Prev export", show=False, doc="previous export"),
    Key("analysis", "t", "next_tab", "Tab", doc="next tab"),
    Key("analysis", "c", "next_curve", "Curve mod",
        doc="SNR curve of all modulations, then of each in turn"),
    Key("analysis", "h", "focus_heatmap", "Heatmap", show=False, doc="focus the heatmap"),
    Key("analysis", "x", "explain", "Explain", show=False,
        doc="Explain: its attribution maps (`amc-tui explain` makes them)"),
    Key("analysis", "question_mark,f1", "app.help", "Keys"),
    # Explain
    Key("explain", "escape", "back", "Back", doc="back"),
    Key("explain", "m", "next_mod", "Modulation", doc="next modulation"),
    Key("explain", "M", "prev_mod", "Prev mod", show=False, doc="previous modulation"),
    Key("explain", "b", "next_band", "Band", doc="next SNR band (low, mid, high)"),
    Key("explain", "h", "next_head", "Head", doc="next head (modulation, SNR)"),
    Key("explain", "r", "toggle_random", "Random",
        doc="the map with randomised weights instead of the trained one (the sanity check)"),
    Key("explain", "e", "next_export", "Export", doc="next export (method, split)"),
    Key("explain", "question_mark,f1", "app.help", "Keys"),
    # Compare
    Key("compare", "escape", "back", "Back", doc="back"),
    Key("compare", "t", "next_tab", "Tab", doc="next tab"),
    Key("compare", "x", "swap", "Swap A/B", doc="swap A and B"),
    Key("compare", "question_mark,f1", "app.help", "Keys"),
    # RUNLOG
    Key("runlog", "escape", "back", "Back", doc="back"),
    Key("runlog", "j", "focus_index", "Jump", doc="jump via the index"),
    Key("runlog", "i", "toggle_index", "Index", doc="show or hide the index"),
    Key("runlog", "R", "reload", "Reload", doc="reload RUNLOG.md"),
    Key("runlog", "question_mark,f1", "app.help", "Keys"),
    # GPUs
    Key("gpus", "escape", "back", "Back", doc="back"),
    Key("gpus", "R", "refresh_now", "Refresh", doc="sample now"),
    Key("gpus", "question_mark,f1", "app.help", "Keys"),
    # Groups
    Key("groups", "escape", "back", "Back", doc="back a level"),
    Key("groups", "enter", "open", "Open", show=False, doc="open a group, a point, a member's live view"),
    Key("groups", "question_mark,f1", "app.help", "Keys"),
    # dialogs
    Key("confirm", "y", "answer(True)", "Yes", doc="confirm"),
    Key("confirm", "n,escape", "answer(False)", "No", doc="cancel"),
    Key("prompt", "escape", "cancel", "Cancel", doc="cancel (`enter` submits)"),
    Key("pick_columns", "escape,C", "done", "Done", doc="apply the columns"),
    Key("pick_columns", "d", "defaults", "Defaults", doc="the default columns"),
    # the heatmap's cell cursor (Analysis, Compare)
    Key("heatmap", "up", "move(-1, 0)", "Up", show=False,
        doc="move the cell cursor (value and n shown)"),
    Key("heatmap", "down", "move(1, 0)", "Down", show=False, doc="... down"),
    Key("heatmap", "left", "move(0, -1)", "Left", show=False, doc="... left"),
    Key("heatmap", "right", "move(0, 1)", "Right", show=False, doc="... right"),
    Key("heatmap", "pageup", "page(-1)", "Page up", show=False, doc="a page up"),
    Key("heatmap", "pagedown", "page(1)", "Page down", show=False, doc="a page down"),
    Key("heatmap", "home", "edge(0)", "First col", show=False, doc="first column"),
    Key("heatmap", "end", "edge(1)", "Last col", show=False, doc="last column"),
    Key("heatmap", "ctrl+home", "row_edge(0)", "First row", show=False, doc="first row"),
    Key("heatmap", "ctrl+end", "row_edge(1)", "Last row", show=False, doc="last row"),
)  # fmt: skip


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
