"""Runs (home): every run in a table updated cell by cell, filter, sort, picked columns
(hyperparameters included) and run actions.

The first scan reads run directories in batches (newest folders first) and posts each batch,
so the table fills progressively and first paint does not wait for 10,000 runs: the first
batch is read from the files, the rest from the run index (`run/index.py`), and added to the
table a batch at a time (`RunsTable.add_many`). Later polls
post only runs that `runs.RunCache` re-read (status.json, meta.json or events.jsonl changed),
plus active runs (their derived state depends on pid and heartbeat), and the table touches
only the cells whose text changed; rows move only when the sort order changed. The columns
and the sort are remembered per workspace (tui/models/prefs.py).
"""

from __future__ import annotations

import dataclasses
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.message import Message
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Header, Input, Static
from textual.worker import get_current_worker

from amc_tui.run import gcpause, index
from amc_tui.run.gcpause import paused_gc
from amc_tui.run.poll import RunFolders, Turns
from amc_tui.run.rundir import RunCache
from amc_tui.tui import keys
from amc_tui.tui.models import runs_view as rv
from amc_tui.tui.models.prefs import RunsPrefs, read_runs_prefs, write_runs_prefs
from amc_tui.tui.models.runs_extra import ExtraReader
from amc_tui.tui.screens.base import PollingScreen
from amc_tui.tui.screens.dialogs import PickColumns
from amc_tui.tui.widgets.runs_table import RunsTable

if TYPE_CHECKING:
    from amc_tui.run.rundir import RunInfo

FIRST_BATCH = 50  # rows enough to fill a 200x50 terminal: first paint waits for these only
# after the first rows (read from the run index: a batch is cheap to make). Each batch is
# drawn before the next is sent: 10,000 runs filled in a median 1.8 s in 5,000-row batches,
# 2.3 s in 2,500-row ones (paired runs); a batch holds the UI thread about 0.2 s.
BATCH = 5000
BATCH_ACK_TIMEOUT_S = 2.0
REBUILD_CHUNK = 200
FILTER_DEBOUNCE_S = 0.3
STATE_CYCLE = ("", "running", "queued", "submitted", "stalled", "completed", "failed", "stopped",
               "crashed", "unknown")  # fmt: skip
SUMMARY_STATES = ("running", "stalled", "queued", "submitted", "crashed", "failed", "unknown")


@dataclass
class RunsBatch(Message):
    """Runs read by the worker. `live` (set on the last batch of a poll) is every run
    directory on disk, so rows of deleted runs can go."""

    infos: list[RunInfo]
    final: bool
    live: set[str] | None = None
    error: str | None = None
    first: bool = False
    total: int = 0
    extras: dict[str, rv.RunExtra] = field(default_factory=dict)


@dataclass
class PrefsRead(Message):
    prefs: RunsPrefs


class RunsScreen(PollingScreen):
    """The home screen."""

    BINDINGS = keys.bindings("runs")
    POLL_S = 1.0

    def __init__(self) -> None:
        super().__init__(id="runs")
        self.infos: dict[str, RunInfo] = {}  # row key (the run dir) -> RunInfo
        self.extras: dict[str, rv.RunExtra] = {}  # row key -> best epoch event, config values
        # the poll worker's own: which runs changed since they were last posted
        self._cache = RunCache()
        self._extra_reader = ExtraReader()
        self._posted: dict[str, RunInfo] = {}  # run dir -> the cache's object last posted
        self._folders: RunFolders | None = None  # the runs folder's listing, made by a poll
        self._turns = Turns()  # ended runs are checked in turn (run/poll.py)
        self._first_scan_posted = False  # the poll worker's: a first scan has been posted whole
        self._placed: dict[str, tuple] = {}  # row key -> what placed it in the last sort
        self._due: set[str] = set()  # runs the next poll checks whatever their turn
        self._first_key: str | None = None  # the cursor's run at first paint, until loaded
        self._prefs_read = False
        self._refresh_all = False
        self.cells: dict[str, dict[str, Any]] = {}  # row key -> last rendered cells
        self.marked: list[str] = []
        self.filter_text = ""
        self.flt = rv.RunFilter()
        self.picked: list[str] | None = None  # the user's columns (None: the default set)
        self.columns: list[str] = list(rv.DEFAULT_COLUMNS)
        self.sort_column = "created"
        self.sort_reverse = True
        self.loaded = False
        self.scanned = 0
        self.batches: list[tuple[int, bool]] = []  # (runs, final) per batch of the first scan
        self._generation = 0
        self._painted = False
        self._batch_drawn = threading.Event()
        self._rebuilding = False
        self._filter_timer: Timer | None = None
        self._highlight: str | None = None  # a run to put the cursor on once its row shows

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="runs-summary")
        yield Input(placeholder="filter: words, state:running, tag:NAME", id="runs-filter")
        yield RunsTable(id="runs-table", cursor_type="row", zebra_stripes=True, cell_padding=0)
        yield Static("", id="runs-empty")  # why the table has no row, when it has none
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#runs-filter").display = False
        self.columns = rv.shown_columns(self.picked, self.app.size.width)
        self._add_columns(self.table)
        self.table.focus()
        self._summary()

    def on_unmount(self) -> None:
        gcpause.release()  # the rows frozen by the first scan go with the app

    @property
    def table(self) -> RunsTable:
        return self.query_one(RunsTable)

    def _add_columns(self, table: RunsTable) -> None:
        for key in self.columns:
            table.add_column(rv.header_label(key, self.sort_column, self.sort_reverse), key=key)

    # ------------------------------------------------------------------ polling (worker)

    def start_poll(self) -> None:
        active = {key for key, info in self.infos.items() if info.active} | self._due
        self._due = set()
        refresh_all, self._refresh_all = self._refresh_all, False
        self._scan(active, rv.needs_config(self.columns), refresh_all)

    @work(thread=True, exclusive=True, group="runs-poll", exit_on_error=False)
    def _scan(self, active: set[str], with_config: bool, refresh_all: bool) -> None:
        worker = get_current_worker()
        if not self._prefs_read:  # before the first rows, so they land in the right columns
            self._prefs_read = True
            self.post_message(PrefsRead(read_runs_prefs(self.amc.ws)))
        if self._folders is None:
            self._folders = RunFolders(self.amc.ws)
        try:
            paths = self._folders.list()
        except Exception as e:  # noqa: BLE001
            self.post_message(RunsBatch([], True, None, error=f"cannot list runs: {e}"))
            return
        first = not self._first_scan_posted  # the first scan: batches, newest folders first
        if first:  # newest folders first, so the top of the table fills first
            paths.sort(key=lambda p: _mtime(p), reverse=True)
        batch: dict[str, RunInfo] = {}
        fresh: dict[str, RunInfo] = {}  # runs the index just answered: no second stat
        sent = 0
        reader = self._extra_reader
        turn = self._turns.start(len(paths))
        for i, path in enumerate(paths):
            if worker.is_cancelled:
                return
            key = os.fspath(path)
            posted = self._posted.get(key)
            if (
                key not in active
                and not refresh_all
                and self._turns.rests(key, posted, turn)
                and not (with_config and not reader.has_config(posted))
            ):
                continue  # an ended run, not its turn to be checked
            info = fresh.pop(key, None)
            try:
                info = info or self._cache.read(path, copy=False)
            except Exception:  # noqa: BLE001 - read_run never raises; belt and braces
                continue
            wants_config = with_config and not reader.has_config(info)
            if (
                info is self._posted.get(key)
                and key not in active
                and not wants_config
                and not refresh_all
            ):
                continue  # not re-read since posted, and its state cannot change silently
            batch[key] = info
            limit = FIRST_BATCH if not sent else BATCH
            if first and len(batch) >= limit and i + 1 < len(paths):
                # back-pressure: wait until the UI has drawn this batch, so the reader
                # thread never starves the first paint of the GIL
                self._batch_drawn.clear()
                self._post(batch, final=False, with_config=with_config, first=True,
                           total=len(paths))  # fmt: skip
                sent += len(batch)
                batch = {}
                if sent == limit:  # the first rows are up: the rest from the run index
                    fresh = self._seed_from_index()
                self._batch_drawn.wait(BATCH_ACK_TIMEOUT_S)
        live = {os.fspath(p) for p in paths}
        self._cache.forget_missing(live)
        reader.forget_missing(live)
        for key in [k for k in self._posted if k not in live]:
            del self._posted[key]
        self._post(batch, final=True, with_config=with_config, live=live, first=first,
                   total=len(paths))  # fmt: skip
        self._first_scan_posted = True

    def _seed_from_index(self) -> dict[str, RunInfo]:
        """Fill the poll's cache from the run index in one query (a few stats per run), so the
        first scan does not read and parse every run's files; the first batch was read
        directly, so first paint never waits for this. Returns the runs it took: the index
        has just checked their files, so the scan uses them without checking again."""
        with paused_gc(keep=True):  # the cache holds them for the app's life
            try:
                found = index.scan(self.amc.ws)
            except Exception:  # noqa: BLE001 - a cache: the scan reads the runs itself
                return {}
            return {base: info for base, (key, info) in found.items()
                    if self._cache.seed(base, key, info)}  # fmt: skip

    def _post(self, batch: dict[str, RunInfo], final: bool, with_config: bool, **kw: Any) -> None:
        """Post copies of running runs (the cache re-derives their state in place, and the
        UI's infos must not change under it; other runs are never changed, and copying
        10,000 of them cost 0.1 s) and remember what was posted."""
        self._posted.update(batch)
        with paused_gc():
            infos = [dataclasses.replace(i) if i.stored_state == "running" else i
                     for i in batch.values()]  # fmt: skip
            extras = {str(i.dir): self._extra_reader.read(i, with_config) for i in infos}
        self.post_message(RunsBatch(infos, final, extras=extras, **kw))

    # ------------------------------------------------------------------ applying results (UI)

    @on(PrefsRead)
    def _prefs(self, msg: PrefsRead) -> None:
        prefs = msg.prefs
        valid = [c for c in prefs.columns or [] if c in rv.BY_KEY]
        self.picked = valid if prefs.columns is not None else None
        if prefs.sort_column == "created" or prefs.sort_column in rv.BY_KEY:
            self.sort_column, self.sort_reverse = prefs.sort_column, prefs.sort_reverse
        self._set_columns(rv.shown_columns(self.picked, self.app.size.width))
        for key in self.columns:  # the remembered sort's arrow (unchanged columns keep labels)
            self.table.set_label(key, rv.header_label(key, self.sort_column, self.sort_reverse))
        self._summary()

    @on(RunsBatch)
    def _apply(self, msg: RunsBatch) -> None:
        # rows of cells by the thousand: 10,000 runs filled in 2.3 s, 1.5 s with the collector
        # paused; those of the first scan stay for the app's life: kept out of its passes
        with paused_gc(keep=msg.first and bool(msg.infos)):
            self._apply_batch(msg)

    def _apply_batch(self, msg: RunsBatch) -> None:
        if msg.error:
            self.amc.report_error(msg.error)
        table = self.table
        now = self.amc.clock()
        new_rows: list[tuple[str, list[Any]]] = []  # added in one go (RunsTable.add_many)
        for info in msg.infos:
            key = str(info.dir)
            self.infos[key] = info
            if key in msg.extras:
                self.extras[key] = msg.extras[key]
            self.amc.known_runs[key] = info
            if self.flt.matches(info):
                self._put_row(table, key, info, now, new_rows)
            elif key in table.rows:
                table.remove_row(key)
                self.cells.pop(key, None)
        table.add_many(new_rows)
        added = bool(new_rows)
        moved = added or self._moved(msg.infos, now)
        if msg.final and msg.live is not None:
            live = msg.live
            for key in [k for k in self.infos if k not in live]:
                moved = True
                self._placed.pop(key, None)
                self.infos.pop(key, None)
                self.extras.pop(key, None)
                self.amc.known_runs.pop(key, None)
                self.cells.pop(key, None)
                if key in table.rows:
                    table.remove_row(key)
                if key in self.marked:
                    self.marked.remove(key)
            # clock-driven cells (elapsed, ETA) of running runs change without file changes
            for key, info in self.infos.items():
                if info.state == "running" and key in table.rows:
                    self._put_row(table, key, info, now)
        self.scanned += len(msg.infos)
        if self._highlight is not None and self._highlight in table.rows:  # the sort keeps it
            table.move_cursor(row=table.get_row_index(self._highlight), animate=False)
            self._highlight = None
        if not self._painted and table.row_count:
            self._painted = True
            self._first_key = table.cursor_key()
            self.call_after_refresh(self.amc.first_rows_painted)
        if msg.first:
            self.batches.append((len(msg.infos), msg.final))
        streaming = msg.first and not msg.final and len(self.batches) > 1
        if moved and not self._rebuilding and not (streaming and added):
            self._sort(table)  # values change with every poll: places follow them
        if msg.first and msg.final and self._first_key is not None:
            # the first rows came newest folder first; sorted, the view starts at the top
            # unless the user moved the cursor while the rest loaded
            if table.cursor_key() == self._first_key and self._highlight is None:
                table.move_cursor(row=0, animate=False)
            self._first_key = None
        if msg.final:
            self.loaded = True
        self._summary(progress=None if msg.final else (self.scanned, msg.total))
        if msg.final:
            self.poll_done()
        else:
            self.call_after_refresh(self._batch_drawn.set)

    def _put_row(
        self,
        table: RunsTable,
        key: str,
        info: RunInfo,
        now: float,
        new_rows: list[tuple[str, list[Any]]] | None = None,
    ) -> bool:
        """Add the row (to `new_rows`, when given, for the caller to add with the others) or
        update only its changed cells; True when a row was added."""
        cells = rv.row_cells(info, now, key in self.marked, self.extras.get(key), self.columns,
                             key)  # fmt: skip
        old = self.cells.get(key)
        self.cells[key] = cells
        if old is None or key not in table.rows:
            row = [cells[k] for k in self.columns]
            if new_rows is not None:
                new_rows.append((key, row))
            else:
                table.add_row(*row, key=key)
            return True
        for col in rv.changed_cells(old, cells):
            table.set_cell(key, col, cells[col])
        return False

    def _moved(self, infos: list[RunInfo], now: float) -> bool:
        """Whether any of these runs' place in the sort may have changed (its sort value, or
        what breaks ties): sorting 10,000 rows on every poll took 0.05 s of the UI thread."""
        moved = False
        for info in infos:
            key = str(info.dir)
            place = (rv.sort_key(info, self.sort_column, now, self.extras.get(key)),
                     rv.tie_order(info))  # fmt: skip
            if self._placed.get(key) != place:
                self._placed[key] = place
                moved = True
        return moved

    def _ordered_keys(self, keys: list[str]) -> list[str]:
        now = self.amc.clock()
        rows = [self.infos[k] for k in keys if k in self.infos]
        ordered = rv.order(rows, self.sort_column, self.sort_reverse, now, self.extras)
        return [str(i.dir) for i in ordered]

    def _sort(self, table: RunsTable | None = None) -> None:
        """Rows follow the sort; nothing moves (or redraws) when the order is unchanged, and
        the cursor stays on its run."""
        table = table or self.table
        if table.row_count:
            table.put_in_order(self._ordered_keys(table.row_keys()))

    def _set_columns(self, columns: list[str]) -> None:
        """Show these columns: the table is refilled (a user action, or the remembered
        choice arriving before the first rows)."""
        if columns == self.columns:
            return
        self.columns = columns
        table = self.table
        at = table.cursor_key()
        table.clear(columns=True)
        self._add_columns(table)
        if rv.needs_config(columns) and any(
            self.extras.get(k, rv.RunExtra()).config is None for k in self.infos
        ):
            self._refresh_all = True
            self.poll_now()
        self._rebuild(keep=at)

    def _rebuild(self, keep: str | None = None) -> None:
        """After a filter or column change: the visible set changes wholesale (a user
        action), so the table is refilled in sorted order, a chunk per frame, so typing never
        freezes."""
        table = self.table
        keep = keep or table.cursor_key()
        table.clear()
        self.cells.clear()
        self._generation += 1
        now = self.amc.clock()
        rows = rv.select(self.infos.values(), self.flt, self.sort_column, self.sort_reverse, now,
                         self.extras)  # fmt: skip
        self._rebuilding = True
        self._add_chunk(self._generation, [str(i.dir) for i in rows], 0, keep)

    def _add_chunk(self, generation: int, keys: list[str], start: int, keep: str | None) -> None:
        if generation != self._generation:
            return  # a newer filter took over
        table = self.table
        now = self.amc.clock()
        for key in keys[start : start + REBUILD_CHUNK]:
            info = self.infos.get(key)
            if info is not None:
                self._put_row(table, key, info, now)
        if start + REBUILD_CHUNK < len(keys):
            self.call_after_refresh(self._add_chunk, generation, keys, start + REBUILD_CHUNK, keep)
            return
        self._rebuilding = False
        self._sort(table)  # polls during the refill may have changed values
        if keep is not None and keep in table.rows:
            table.move_cursor(row=table.get_row_index(keep), animate=False)
        self._summary()

    def _summary(self, progress: tuple[int, int] | None = None) -> None:
        counts = rv.state_counts(list(self.infos.values()))
        parts = [f"{len(self.infos)} runs"]
        parts += [f"[{_style(s)}]{counts[s]} {s}[/]" for s in SUMMARY_STATES if counts.get(s)]
        if progress:
            parts.append(f"loading {progress[0]}/{progress[1]}")
        elif not self.loaded:
            parts.append("loading...")
        table = self.table
        if not self.flt.empty:
            parts.append(f"filter: {_esc(self.filter_text)} ({table.row_count} shown)")
        arrow = "↓" if self.sort_reverse else "↑"
        label = rv.BY_KEY[self.sort_column].label if self.sort_column in rv.BY_KEY else "created"
        parts.append(f"sort: {label} {arrow}")
        if self.marked:
            parts.append(f"marked: {len(self.marked)}")
        self.query_one("#runs-summary", Static).update(" · ".join(parts))
        self._empty_line(table)

    def _empty_line(self, table: RunsTable) -> None:
        """An empty table says why under its headers: the filter matches nothing (and how to
        clear it), or the workspace has no run yet (and how to start one)."""
        text = ""
        if self.loaded and not self._rebuilding and table.row_count == 0:
            if not self.flt.empty:
                text = (f'No run matches "{_esc(self.filter_text)}": escape clears the filter, '
                        "/ edits it")  # fmt: skip
            elif not self.infos:
                text = "No runs yet: n opens the New run form"
        self.set_class(bool(text), "-empty")
        self.query_one("#runs-empty", Static).update(text)

    # ------------------------------------------------------------------ helpers

    def highlight(self, run_dir: Path) -> None:
        """Put the cursor on this run (a run just launched) now, or when its row comes."""
        key = str(run_dir)
        if self.is_mounted and key in self.table.rows:
            self.table.move_cursor(row=self.table.get_row_index(key), animate=False)
        else:
            self._highlight = key
            self.poll_now()

    def recheck(self, run_dir: Path) -> None:
        """Read this run at the next poll, now (the app just stopped or resumed it)."""
        self._due.add(str(run_dir))
        self.poll_now()

    def current_key(self) -> str | None:
        return self.table.cursor_key()

    def current(self) -> RunInfo | None:
        key = self.current_key()
        info = self.infos.get(key) if key else None
        if info is None:
            self.notify("no run selected", severity="warning")
        return info

    def _save_prefs(self) -> None:
        prefs = RunsPrefs(self.picked, self.sort_column, self.sort_reverse)
        self._write_prefs(prefs)

    @work(thread=True, exclusive=True, group="runs-prefs", exit_on_error=False)
    def _write_prefs(self, prefs: RunsPrefs) -> None:
        try:
            write_runs_prefs(self.amc.ws, prefs)
        except Exception as e:  # noqa: BLE001 - the table works without remembering
            self.app.call_from_thread(self.amc.report_error, f"cannot save table settings: {e}")

    # ------------------------------------------------------------------ actions

    @on(DataTable.RowSelected, "#runs-table")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    @on(DataTable.HeaderSelected, "#runs-table")
    def _header_selected(self, event: DataTable.HeaderSelected) -> None:
        col = str(event.column_key.value)
        if col == self.sort_column:
            self._set_sort(col, not self.sort_reverse)
        else:
            self._set_sort(col, col in rv.DESCENDING)

    def on_resize(self) -> None:
        if self.picked is None and self.is_mounted:
            self._set_columns(rv.shown_columns(None, self.app.size.width))

    def action_open(self) -> None:
        if (info := self.current()) is not None:
            self.amc.open_live(info.dir)

    def action_analysis(self) -> None:
        if (info := self.current()) is not None:
            self.amc.open_analysis(info.dir)

    def action_explain(self) -> None:
        if (info := self.current()) is not None:
            self.amc.open_explain(info.dir)

    def action_new(self) -> None:
        self.amc.open_new_run()

    def action_runlog(self) -> None:
        key = self.current_key()
        info = self.infos.get(key) if key else None
        self.amc.open_runlog(info.id if info else None)

    def action_gpus(self) -> None:
        self.amc.open_gpus()

    def action_quit(self) -> None:
        self.app.exit(0)

    def action_stop(self) -> None:
        if (info := self.current()) is not None:
            self.amc.confirm_stop(info)

    def action_resume(self) -> None:
        if (info := self.current()) is not None:
            self.amc.confirm_resume(info)

    def action_mark(self) -> None:
        key = self.current_key()
        if key is None:
            return
        if key in self.marked:
            self.marked.remove(key)
        else:
            self.marked.append(key)
            if len(self.marked) > 2:
                dropped = self.marked.pop(0)
                self._refresh_mark(dropped)
        self._refresh_mark(key)
        self._summary()

    def _refresh_mark(self, key: str) -> None:
        table = self.table
        if key in table.rows and key in self.infos:
            self._put_row(table, key, self.infos[key], self.amc.clock())

    def action_compare(self) -> None:
        keys = list(self.marked)
        cur = self.current_key()
        if len(keys) < 2 and cur and cur not in keys:
            keys.append(cur)
        if len(keys) < 2:
            self.notify(
                "mark two runs with m (or mark one and highlight another)", severity="warning"
            )
            return
        a, b = (self.infos.get(k) for k in keys[:2])
        if a is None or b is None:
            return
        self.amc.open_compare(a.dir, b.dir)

    def action_sort(self) -> None:
        order = ("created", *self.columns)
        i = order.index(self.sort_column) if self.sort_column in order else 0
        col = order[(i + 1) % len(order)]
        self._set_sort(col, col in rv.DESCENDING)

    def action_reverse(self) -> None:
        self._set_sort(self.sort_column, not self.sort_reverse)

    def _set_sort(self, column: str, reverse: bool) -> None:
        old = self.sort_column
        self.sort_column, self.sort_reverse = column, reverse
        table = self.table
        for key in {old, column}:
            if key in self.columns:
                table.set_label(key, rv.header_label(key, column, reverse))
        self._sort(table)
        self._summary()
        self._save_prefs()

    def action_columns(self) -> None:
        def done(picked: list[str] | None) -> None:
            if picked is None:
                return
            self.picked = picked
            self._set_columns(rv.shown_columns(picked, self.app.size.width))
            if self.sort_column not in ("created", *self.columns):
                self._set_sort("created", True)
            else:
                self._save_prefs()

        choices = [(c.key, f"{c.label:<10} {rv.COLUMN_HELP[c.key]}") for c in rv.COLUMNS
                   if c.key != "name"]  # fmt: skip
        self.app.push_screen(PickColumns(choices, self.columns), done)

    def action_filter(self) -> None:
        """Focus the box at once, not after the keys already typed: `/calm` typed fast
        filters by "calm" instead of running c, a, l and m on the table."""
        inp = self.query_one("#runs-filter", Input)
        inp.display = True
        self.set_focus(inp)

    def action_state_filter(self) -> None:
        current = next(iter(self.flt.states)) if len(self.flt.states) == 1 else ""
        i = STATE_CYCLE.index(current) if current in STATE_CYCLE else 0
        nxt = STATE_CYCLE[(i + 1) % len(STATE_CYCLE)]
        words = [w for w in self.filter_text.split() if not w.startswith(("state:", "s:"))]
        if nxt:
            words.insert(0, f"state:{nxt}")
        self.set_filter(" ".join(words))

    def set_filter(self, text: str) -> None:
        self._cancel_filter_timer()
        self.filter_text = text.strip()
        self.flt = rv.RunFilter.parse(self.filter_text)
        inp = self.query_one("#runs-filter", Input)
        if inp.value != self.filter_text:
            with inp.prevent(Input.Changed):
                inp.value = self.filter_text
        inp.display = bool(self.filter_text) or inp.has_focus
        self._rebuild()

    def _cancel_filter_timer(self) -> None:
        if self._filter_timer is not None:
            self._filter_timer.stop()
            self._filter_timer = None

    @on(Input.Changed, "#runs-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        """Debounced: the table refills once typing pauses, not on every key."""
        self._cancel_filter_timer()
        if event.value.strip() != self.filter_text:
            value = event.value
            self._filter_timer = self.set_timer(FILTER_DEBOUNCE_S, lambda: self.set_filter(value))

    @on(Input.Submitted, "#runs-filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        if event.value.strip() != self.filter_text:
            self.set_filter(event.value)
        self._cancel_filter_timer()
        event.input.display = bool(self.filter_text)
        self.table.focus()

    def action_back(self) -> None:
        inp = self.query_one("#runs-filter", Input)
        if inp.has_focus or self.filter_text:
            self.table.focus()
            if self.filter_text or inp.value:
                self.set_filter("")
            self._cancel_filter_timer()
            inp.display = False  # an empty filter takes no room


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return 0.0


def _style(state: str) -> str:
    return rv.STATE_STYLES.get(state, "")


def _esc(text: str) -> str:
    return escape(text)
