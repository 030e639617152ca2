"""The run index: runs/.amc-tui/index.sqlite, a cache of what listing parses from each run
directory, so `ls` and the app cost one directory scan and a few stats per run instead of
reading and parsing every run's files.

The run directories stay the truth. A row holds what `rundir.info_fields` made of the run's
files (`rundir.read_parts`: status.json and meta.json parsed, the last epoch event, the best
epoch's, earlier attempts' time; meta.json whole) and a running run's ETA events, under its
`rundir.run_key`: the (inode, mtime, size) of the run folder, status.json and events.jsonl.
Every listing stats those and re-reads a run whose stamps differ, so a file changed behind
the index's back is listed as it now is. A stamp younger than `RACY_S` when read is never
trusted (a second write within the filesystem's timestamp tick could keep mtime and size):
such a row is re-read until it is older. The state of a stored `running` is derived when a
row becomes a RunInfo (lock, pid, heartbeat age), never stored. The schema is a fingerprint
of rundir.py: a change to how a run is read (a new status.json field a RunInfo keeps, say)
rebuilds the index once.

A row may hold a memo: what a caller made of a settled run (`settled`: ended, never a live
state), `ls`'s line, under the caller's fingerprint of its own code, kept only beside the key
it was made with (a rewrite of the row drops it). Plain `ls` (`list_memos`) then costs three
stats and one small unmarshal per settled run: no RunInfo, no Path.

Several processes: WAL (readers never wait for the writer, nor it for them), a short busy
timeout, and one short write transaction per listing that only an index that is free takes:
a listing that finds another process writing keeps its rows for next time. Trainers never
touch the index. A corrupt index (or one of another schema) is deleted and rebuilt, with one
line on stderr; an index that cannot be opened or written (read-only filesystem) is skipped:
listing reads every run directory, said once per process.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import sqlite3
import sys
import time
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from amc_tui.run import rundir
from amc_tui.run.gcpause import paused_gc
from amc_tui.run.rundir import (
    RunInfo,
    _folders,
    _sort_key,
    info_fields,
    info_from_fields,
    is_run_dir,
    read_parts,
    run_key,
)
from amc_tui.workspace import Workspace

INDEX_FILE = "index.sqlite"
Row = tuple[dict[str, Any], list[dict[str, Any]] | None]  # (RunInfo fields, ETA events)
# A row holds what rundir.py's code made of the files, so the schema is that code's own: a
# fingerprint of rundir.py (any change to how a RunInfo is read rebuilds the index once), of
# this file's row version and of the Python version (marshal's format is Python's own).
ROW_VERSION = 3
EXTRA = ("meta", "best_event")  # RunInfo fields stored apart (`list_runs(extras=False)`)
_SOURCE = Path(rundir.__file__)
SCHEMA = (
    zlib.crc32(_SOURCE.read_bytes() + f"{ROW_VERSION} {sys.version_info[:2]}".encode()) & 0x7FFFFFFF
)
RACY_S = 2.0  # a file changed this recently may change again within its mtime tick
BUSY_MS = 100  # waiting for another writer longer than this: skip writing this time
CHUNK = 500  # paths per `IN (...)` query

_said: set[str] = set()  # degradation notices already printed by this process


def index_path(ws: Workspace) -> Path:
    return ws.state_dir / INDEX_FILE


def _say(line: str) -> None:
    if line not in _said:
        _said.add(line)
        print(f"amc-tui: {line}", file=sys.stderr, flush=True)


def _connect(path: Path) -> sqlite3.Connection:
    """Open (and create) the index; raises sqlite3.Error when it is unusable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=BUSY_MS / 1000, isolation_level=None)
    try:
        db.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
        if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")  # a cache: losing the last write is fine
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version != SCHEMA:
            db.execute("BEGIN IMMEDIATE")
            if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA:  # not made meanwhile
                db.execute("DROP TABLE IF EXISTS runs")
                db.execute("CREATE TABLE runs (path TEXT PRIMARY KEY, key BLOB NOT NULL, "
                           "core BLOB NOT NULL, extra BLOB NOT NULL, memo BLOB)")  # fmt: skip
                db.execute(f"PRAGMA user_version = {SCHEMA}")
            db.execute("COMMIT")
        db.execute("SELECT count(*) FROM runs").fetchone()  # a corrupt file fails here
    except BaseException:
        db.close()
        raise
    return db


def _delete(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}{suffix}")


def open_index(ws: Workspace) -> sqlite3.Connection | None:
    """The workspace's index, rebuilt when corrupt; None when it cannot be used here."""
    path = index_path(ws)
    try:
        return _connect(path)
    except sqlite3.DatabaseError as e:
        if isinstance(e, sqlite3.OperationalError) and "locked" in str(e):
            return None  # another process is rebuilding it: scan directly this time
        if not isinstance(e, sqlite3.OperationalError) or "malformed" in str(e):
            return _rebuild(path, e)
        _say(f"the run index {path} cannot be used ({e}); listing reads every run directory")
        return None
    except OSError as e:
        _say(f"the run index {path} cannot be used ({e}); listing reads every run directory")
        return None


def _rebuild(path: Path, error: Exception) -> sqlite3.Connection | None:
    _delete(path)
    _say(f"the run index {path} was damaged ({error}); rebuilt from the run directories")
    try:
        return _connect(path)
    except (sqlite3.Error, OSError) as e:
        _say(f"the run index {path} cannot be used ({e}); listing reads every run directory")
        return None


def _key_bytes(key: tuple[Any, ...]) -> bytes:
    return marshal.dumps(key[:3])  # the cheapest exact spelling of three stamps


def _newest_ns(key: tuple[Any, ...]) -> int:
    return max(stamp[1] if stamp else 0 for stamp in key[:3])


class _Rows:
    """Rows of one listing: lookups answered from the index, changes written once at the end."""

    def __init__(self, path: Path, db: sqlite3.Connection | None, extras: bool = True) -> None:
        self.path, self.db, self.extras = path, db, extras
        self.stored: dict[str, tuple[bytes, bytes, bytes | None, bytes | None]] = {}
        self.writes: list[tuple[str, bytes, bytes, bytes]] = []
        self.memos: list[tuple[bytes, str, bytes]] = []  # (memo, path, key) of settled runs
        self.now_ns = time.time_ns()
        self.racy_ns = int(RACY_S * 1e9)

    def load(self, paths: Iterable[str] | None, memo: bool = False) -> None:
        if self.db is None:
            return
        cols = "path, key, core, " + ("extra" if self.extras else "NULL")
        cols += ", memo" if memo else ", NULL"
        try:
            if paths is None:
                rows = self.db.execute(f"SELECT {cols} FROM runs").fetchall()
            else:
                wanted, rows = list(paths), []
                for i in range(0, len(wanted), CHUNK):
                    part = wanted[i : i + CHUNK]
                    marks = ",".join("?" * len(part))
                    rows += self.db.execute(
                        f"SELECT {cols} FROM runs WHERE path IN ({marks})", part
                    ).fetchall()
        except sqlite3.DatabaseError as e:  # damage found only now, deep in the file
            self.db.close()
            self.db = None if isinstance(e, sqlite3.OperationalError) else _rebuild(self.path, e)
            return
        self.stored = {p: (k, core, extra, m) for p, k, core, extra, m in rows}

    def memo(self, base: str, tag: int) -> tuple[tuple[Any, ...], bool, Any]:
        """The run's key, whether its stamps are old enough to trust, and the memo stored
        with its row under `tag` (None: none, or the run changed since)."""
        key = run_key(base)
        trusted = self.now_ns - _newest_ns(key) >= self.racy_ns
        hit = self.stored.get(base)
        if trusted and hit is not None and hit[3] is not None and hit[0] == _key_bytes(key):
            with contextlib.suppress(ValueError, EOFError, TypeError, IndexError):
                got, value = marshal.loads(hit[3])
                if got == tag:
                    return key, trusted, value
        return key, trusted, None

    def row(
        self, base: str, key: tuple[Any, ...] | None = None
    ) -> tuple[tuple[Any, ...], Row | None]:
        """The run's key and row (its RunInfo fields and ETA events); None when the folder
        is not a run (foreign)."""
        key = run_key(base) if key is None else key
        text = _key_bytes(key)
        trusted = self.now_ns - _newest_ns(key) >= self.racy_ns
        hit = self.stored.get(base)
        if hit is not None and hit[0] == text and trusted:
            try:
                row = marshal.loads(hit[1])
                if hit[2] is not None:  # meta.json and the best epoch's event
                    row[0].update(marshal.loads(hit[2]))
                return key, row
            except (ValueError, EOFError, TypeError, AttributeError, IndexError):
                pass  # a damaged row: read the run
        if not is_run_dir(base):  # the folder changed: is it (still) a run?
            return key, None
        parts = read_parts(base)
        fields = info_fields(base, parts)
        if trusted:  # what only some readers need apart, so `ls` does not unmarshal it
            core = {k: v for k, v in fields.items() if k not in EXTRA}
            extra = {k: fields[k] for k in EXTRA}
            with contextlib.suppress(ValueError):  # a value marshal cannot hold: not cached
                self.writes.append((base, text, marshal.dumps((core, parts["eta"])),
                                    marshal.dumps(extra)))  # fmt: skip
        return key, (fields, parts["eta"])

    def save(self, live: set[str] | None) -> None:
        """One short transaction: changed rows, and (`live`: every run on disk) rows of runs
        that are gone. Skipped when another process is writing (next listing writes)."""
        if self.db is None:
            return
        gone = [p for p in self.stored if p not in live] if live is not None else []
        try:
            if self.writes or gone or self.memos:
                self.db.execute("BEGIN IMMEDIATE")
                self.db.executemany("INSERT OR REPLACE INTO runs (path, key, core, extra) "
                                    "VALUES (?, ?, ?, ?)", self.writes)  # fmt: skip
                self.db.executemany("DELETE FROM runs WHERE path = ?", [(p,) for p in gone])
                # a memo is kept only beside the row (stamps) it was made from
                self.db.executemany("UPDATE runs SET memo = ? WHERE path = ? AND key = ?",
                                    self.memos)  # fmt: skip
                self.db.execute("COMMIT")
        except sqlite3.Error as e:
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("ROLLBACK")
            if "locked" not in str(e) and "busy" not in str(e):  # another writer: next time
                _say(f"the run index {self.path} cannot be written ({e}); listing reads the "
                     "changed runs every time")  # fmt: skip
        finally:
            self.db.close()
            self.db = None


def scan(
    ws: Workspace, use_index: bool = True, extras: bool = True
) -> dict[str, tuple[tuple[Any, ...], RunInfo]]:
    """{run dir: (its run_key, its RunInfo)} for every run of the workspace, through the
    index (refreshing the rows of runs that changed); `use_index=False` reads every run."""
    with paused_gc():  # 0.78 s -> 0.44 s for 10,000 runs
        rows = _Rows(index_path(ws), open_index(ws) if use_index else None, extras)
        rows.load(None)
        out: dict[str, tuple[tuple[Any, ...], RunInfo]] = {}
        try:
            for base in _folders(ws):
                key, row = rows.row(base)
                if row is not None:
                    out[base] = (key, info_from_fields(base, *row))
        finally:
            rows.save(set(out))
    return out


def list_runs(
    ws: Workspace, state: str | None = None, with_last_epoch: bool = True, extras: bool = True
) -> list[RunInfo]:
    """`rundir.list_runs` through the index: every run, newest first; `state` filters on
    the derived state. `extras=False` (`ls`) leaves RunInfo.meta and .best_event empty for
    runs the index answers: a third of what a row holds."""
    runs = [info for _, info in scan(ws, extras=extras).values()]
    if not with_last_epoch:
        for info in runs:
            info.last_epoch = info.epoch_clock = None
    if state:
        runs = [r for r in runs if r.state == state]
    runs.sort(key=_sort_key, reverse=True)
    return runs


SETTLED = frozenset({"completed", "failed", "stopped"})  # stored states a memo may describe


def settled(info: RunInfo) -> bool:
    """A run whose listing no longer changes while its files do not: ended (recorded as
    completed, failed or stopped, with its end time), readable, no Slurm end to record. Live
    states (running, stalled, crashed) and queued runs never are."""
    return (
        info.state in SETTLED
        and info.stored_state == info.state
        and (info.ended_at is not None or info.started_at is None)
        and not (info.slurm_job_id and not info.slurm_settled)
    )


def list_memos(
    ws: Workspace, tag: int, make: Callable[[RunInfo], Any]
) -> list[tuple[RunInfo | None, Any]]:
    """Every run as (RunInfo, None), or (None, memo) for a settled run whose memo the index
    holds: what `make` (a caller's summary of a settled run, marshal-able) returned for it
    when its row was last read, under the caller's `tag` (a fingerprint of the code that
    made it: another tag is not used). A run that changed since is read again, and its memo
    is made again (`make(info)` for each settled RunInfo returned here), so a memo never
    outlives the stamps it was made with. Costs `ls` three stats and one small unmarshal per
    settled run: no RunInfo, no Path. Runs in folder order (the caller sorts)."""
    with paused_gc():
        rows = _Rows(index_path(ws), open_index(ws), extras=False)
        rows.load(None, memo=True)
        out: list[tuple[RunInfo | None, Any]] = []
        live: set[str] = set()
        try:
            for base in _folders(ws):
                key, trusted, value = rows.memo(base, tag)
                if value is not None:
                    live.add(base)
                    out.append((None, value))
                    continue
                key, row = rows.row(base, key)
                if row is None:
                    continue
                live.add(base)
                info = info_from_fields(base, *row)
                if trusted and settled(info):
                    with contextlib.suppress(ValueError):  # not marshal-able: not kept
                        rows.memos.append((marshal.dumps((tag, make(info))), base, _key_bytes(key)))
                out.append((info, None))
        finally:
            rows.save(live)
    return out


def read_runs(ws: Workspace, paths: Iterable[str | os.PathLike[str]]) -> dict[str, RunInfo]:
    """Some runs (a group's members) through the index: {dir: RunInfo} for those that are
    runs; costs the rows asked for, not the workspace."""
    wanted = [os.fspath(p) for p in paths]
    rows = _Rows(index_path(ws), open_index(ws))
    rows.load(wanted)
    out: dict[str, RunInfo] = {}
    try:
        for base in wanted:
            key, row = rows.row(base)
            if row is not None:
                out[base] = info_from_fields(base, *row)
    finally:
        rows.save(None)
    return out
