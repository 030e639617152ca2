"""Groups: sweep groups, then one group's points, then one point's members (Enter opens a
member's Live view). Escape goes back up a level.

A group's points read as `amc-tui group show` does, within 80 columns: ranked by the sweep
metric at the best epoch (# 1 first; `-` for a point without the two completed runs a rank
needs), each with n, mean ± std, the 95 % CI of the mean and its runs done; the axes named
once above the table, so a point shows only its values. Under the table: the highlighted
point's label and runs, the best point and the axis effects (difference of means, 95 % CI),
wrapped, never cut.

Statistics are groups.summarize's; a completed member is read from disk once (a cache keyed
by run id and end time), so polling a finished group costs a few status reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, Static

from amc_tui import report
from amc_tui.runlog.group_entry import best_text, ci, mean_std, metric_title, progress_text
from amc_tui.sweeps.group import (
    groups_root,
    list_groups,
    progress,
    read_group,
    state_of,
    summarize,
)
from amc_tui.sweeps.sweep import format_value
from amc_tui.tui import keys
from amc_tui.tui.screens.base import PollingScreen

VALUES_WIDTH = 24  # a point's values, cut to fit 80 columns (the whole label is under the table)


@dataclass
class GroupsPolled(Message):
    level: str
    head: str = ""
    columns: tuple[str, ...] = ()
    rows: list[tuple[str, list[str]]] = field(default_factory=list)  # (row key, cells)
    error: str | None = None
    notes: str = ""  # under the table: the best point and the effects
    details: dict[str, str] = field(default_factory=dict)  # row key -> its line under the table


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class GroupsScreen(PollingScreen):
    BINDINGS = keys.bindings("groups")
    POLL_S = 2.0
    DEFAULT_CSS = """
    #grp-head { height: auto; padding: 0 1; background: $boost; }
    #grp-table { height: 1fr; }
    #grp-notes-box { height: auto; max-height: 50%; }
    #grp-notes-box.-empty { display: none; }
    #grp-notes { padding: 0 1; }
    """

    def __init__(self) -> None:
        super().__init__(classes="groups")
        self.level = "groups"  # groups | points | members
        self.group_name: str | None = None
        self.point_index: int | None = None
        self._cache: dict[Any, Any] = {}
        self._cursor: dict[str, str] = {}  # the row each level had selected
        self._notes = ""
        self._details: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("reading groups...", id="grp-head", markup=False)
        yield DataTable(id="grp-table", cursor_type="row", zebra_stripes=True)
        with VerticalScroll(id="grp-notes-box", classes="-empty"):
            yield Static("", id="grp-notes", markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()

    # ------------------------------------------------------------------ polling (worker)

    def start_poll(self) -> None:
        self._read(self.level, self.group_name, self.point_index)

    @work(thread=True, exclusive=True, group="groups-poll", exit_on_error=False)
    def _read(self, level: str, name: str | None, point: int | None) -> None:
        try:
            self.post_message(self._rows(level, name, point))
        except Exception as e:  # noqa: BLE001 - shown in place
            self.post_message(GroupsPolled(level, error=str(e)))

    def _rows(self, level: str, name: str | None, point: int | None) -> GroupsPolled:
        ws = self.amc.ws
        if level == "groups":
            rows = []
            for g in list_groups(ws):
                s = summarize(ws, g, self._cache)
                counts = progress(list(_states(s)))
                ranked = s.ranking()
                best = (f"{ranked[0].point} {mean_std(ranked[0].stat, g.metric, '-')}"
                        if ranked and ranked[0].stat.n and not ranked[0].dead else "-")  # fmt: skip
                rows.append((g.name, [g.name, s.state, g.strategy,
                                      f"{counts['done']}/{len(g.members)}", best]))  # fmt: skip
            head = f"{len(rows)} sweep group(s) · Enter: points · Esc: back"
            return GroupsPolled(level, head, ("group", "state", "kind", "done", "best"), rows)
        g = read_group(groups_root(ws) / str(name))
        if g is None:
            return GroupsPolled(level, error=f"group {name} is gone")
        s = summarize(ws, g, self._cache)
        if level == "points":
            return self._points(g, s)
        p = g.point(int(point or 0))
        why = {m.run_id: m.why_excluded for m in s.members}
        rows = []
        for m in g.point_members(p["index"]):
            info = s.infos.get(m["id"])
            state = info.state if info is not None else "missing"
            value = next((x.value(g.metric) for x in s.members if x.run_id == m["id"]), None)
            rows.append((m["name"], [m["name"], state, str(m["repeat"]), str(m.get("seed")),
                                     _metric(value, g.metric), why.get(m["id"]) or ""]))  # fmt: skip
        head = f"{g.name}:{p['key']} {p['label']}\nEnter: the member's Live view · Esc: points"
        cols = ("run", "state", "rep", "seed", metric_title(g.metric), "excluded")
        return GroupsPolled(level, head, cols, rows)

    def _points(self, g: Any, s: Any) -> GroupsPolled:
        """The points ranked by the sweep metric (as `group show`): #, point, its axis
        values, n, mean ± std, 95 % CI, runs done; the best point and the effects below."""
        metric = g.metric
        by_key = {ps.point: ps for ps in s.points}
        ranked = s.ranking()
        order = [r.point for r in ranked]
        rank_of = {r.point: r.rank for r in ranked}
        axes = [a["key"] for a in g.sweep.get("axes", [])]
        rows, details = [], {}
        for p in sorted(g.points, key=lambda p: order.index(p["key"])):
            c = progress(s.point_states(p["index"]))
            ps = by_key[p["key"]]
            stat = ps.stat(metric)
            values = p.get("values") or {}
            shown = ", ".join(format_value(values[a]) for a in axes if a in values)
            total = len(g.point_members(p["index"]))
            note = ps.health_note()  # runs that learned nothing: marked, never ranked silently
            rows.append((p["key"], [str(rank_of.get(p["key"]) or "-"), p["key"] + ("!" if note else ""),
                                    _cut(shown or p["label"], VALUES_WIDTH), str(ps.n),
                                    mean_std(stat, metric, "-"), ci(stat, metric, "-"),
                                    f"{c['done']}/{total}"]))  # fmt: skip
            details[p["key"]] = f"{p['key']} ({p['label']}): {progress_text(c)}" + (
                f" · [red]{note}[/]" if note else ""
            )
        states = progress_text(progress(list(_states(s))))
        head = (f"{g.name} · {s.state} · {g.strategy} · {states}\n"
                f"{metric_title(metric)} at the best epoch: mean ± std, 95 % CI of the mean; "
                f"# = rank · values: {', '.join(axes) or 'none (repeats only)'}")  # fmt: skip
        notes = [f"best point: {best_text(s)}"]
        effects = s.effects()
        if effects:
            notes.append("effects (difference of means, 95 % CI):")
            notes += [f"  {e.sentence()}" for e in effects]
        cols = ("#", "point", "values", "n", "mean ± std", "95 % CI", "done")
        return GroupsPolled("points", head, cols, rows, notes="\n".join(notes), details=details)

    # ------------------------------------------------------------------ applying (UI)

    @on(GroupsPolled)
    def _apply(self, msg: GroupsPolled) -> None:
        if msg.level != self.level:  # a poll of the level we just left
            self.poll_done()
            return
        if msg.error:
            self.amc.report_error(msg.error)
            self.query_one("#grp-head", Static).update(msg.error)
            self.poll_done()
            return
        self.query_one("#grp-head", Static).update(msg.head)
        table = self.query_one(DataTable)
        cols = [str(c.key.value) for c in table.columns.values()]
        keys = [str(k.value) for k in table.rows]
        if cols == list(msg.columns) and keys == [k for k, _ in msg.rows]:
            for key, cells in msg.rows:  # same rows: only the cells that changed
                for col, cell in zip(msg.columns, cells, strict=True):
                    if str(table.get_cell(key, col)) != cell:
                        table.update_cell(key, col, cell)
        else:
            keep = _row_key(table) or self._cursor.get(self.level)
            table.clear(columns=True)
            for col in msg.columns:
                table.add_column(col, key=col)
            for key, cells in msg.rows:
                table.add_row(*cells, key=key)
            if keep is not None and keep in table.rows:
                table.move_cursor(row=table.get_row_index(keep))
        if not msg.rows and self.level == "groups":
            self.query_one("#grp-head", Static).update(
                "no sweep groups yet: `amc-tui sweep configs/sweeps/demo.toml` starts one"
            )
        self._notes, self._details = msg.notes, msg.details
        self._show_notes()
        self.poll_done()

    def _show_notes(self) -> None:
        """The highlighted point's line, then the group's notes (best point, effects)."""
        key = _row_key(self.query_one(DataTable))
        text = "\n".join(t for t in (self._details.get(key or ""), self._notes) if t)
        self.query_one("#grp-notes", Static).update(text)
        self.query_one("#grp-notes-box").set_class(not text, "-empty")

    @on(DataTable.RowHighlighted, "#grp-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if self._details:
            self._show_notes()

    def _go(self, level: str) -> None:
        self.level = level
        table = self.query_one(DataTable)
        table.clear(columns=True)
        self._notes, self._details = "", {}
        self._show_notes()
        self.query_one("#grp-head", Static).update("reading...")
        self.poll_now()

    def action_open(self) -> None:
        table = self.query_one(DataTable)
        key = _row_key(table)
        if key is None:
            return
        self._cursor[self.level] = key
        if self.level == "groups":
            self.group_name = key
            self._cursor.pop("points", None)
            self._go("points")
        elif self.level == "points":
            self.point_index = int(key[1:])
            self._cursor.pop("members", None)
            self._go("members")
        else:
            run_dir = self.amc.ws.runs / key
            if (run_dir / "meta.json").is_file():
                self.amc.open_live(Path(run_dir))

    def action_back(self) -> None:
        table = self.query_one(DataTable)
        if (key := _row_key(table)) is not None:
            self._cursor[self.level] = key
        if self.level == "members":
            self._go("points")
        elif self.level == "points":
            self._go("groups")
        else:
            super().action_back()

    @on(DataTable.RowSelected, "#grp-table")
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()


def _states(summary: Any) -> list[str]:
    return [state_of(i) for i in summary.infos.values()]


def _metric(value: float | None, metric: str) -> str:
    return report.metric(metric, value, ".3f")


def _row_key(table: DataTable) -> str | None:
    if not table.row_count:
        return None
    try:
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
    except Exception:  # noqa: BLE001 - no row under the cursor
        return None
