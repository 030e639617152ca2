"""The run index: runs/.amc-tui/index.sqlite, a cache of what listing parses from each run
directory, so `ls` and the app cost one directory scan and a few stats per run instead of
reading and parsing every run's files.

The run directories stay the truth. A row holds `rundir.read_parts` (status.json and meta.json
as parsed dicts, the last epoch event, earlier attempts' time, a running run's ETA events)
under its `rundir.run_key`: the (inode, mtime, size) of status.json, meta.json and
events.jsonl. Every listing stats those files and re-reads a run whose stamps differ, so a
file changed behind the index's back is listed as it now is. A stamp younger than `RACY_S`
when read is never trusted (a second write within the filesystem's timestamp tick could keep
mtime and size): such a row is re-read until it is older. The state is derived when a row is
turned into a RunInfo (lock, pid, heartbeat age), never stored.

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
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from amc_tui.run.rundir import (
    RunInfo,
    _folders,
    _sort_key,
    info_from_parts,
    is_run_dir,
    read_parts,
    run_key,
)
from amc_tui.workspace import Workspace

INDEX_FILE = "index.sqlite"
# bump SCHEMA when a row's parts change meaning; marshal's format is Python's own, so the
# Python version is part of it: an index of another schema is rebuilt
SCHEMA = 2 * 10_000 + sys.version_info[0] * 100 + sys.version_info[1]
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
            db.execute("DROP TABLE IF EXISTS runs")
            db.execute("CREATE TABLE runs (path TEXT PRIMARY KEY, key TEXT NOT NULL, "
                       "parts BLOB NOT NULL)")  # fmt: skip
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


def _key_text(key: tuple[Any, ...]) -> str:
    return "%s %s %s" % key[:3]  # noqa: UP031 - the fastest of the spellings


def _racy(key: tuple[Any, ...], now_ns: int) -> bool:
    newest = max((stamp[1] for stamp in key[:3] if stamp), default=0)
    return now_ns - newest < RACY_S * 1e9


class _Rows:
    """Rows of one listing: lookups answered from the index, changes written once at the end."""

    def __init__(self, path: Path, db: sqlite3.Connection | None) -> None:
        self.path, self.db = path, db
        self.stored: dict[str, tuple[str, str]] = {}
        self.writes: list[tuple[str, str, str]] = []
        self.now_ns = time.time_ns()

    def load(self, paths: Iterable[str] | None) -> None:
        if self.db is None:
            return
        try:
            if paths is None:
                rows = self.db.execute("SELECT path, key, parts FROM runs").fetchall()
            else:
                wanted, rows = list(paths), []
                for i in range(0, len(wanted), CHUNK):
                    part = wanted[i : i + CHUNK]
                    marks = ",".join("?" * len(part))
                    rows += self.db.execute(
                        f"SELECT path, key, parts FROM runs WHERE path IN ({marks})", part
                    ).fetchall()
        except sqlite3.DatabaseError as e:  # damage found only now, deep in the file
            self.db.close()
            self.db = None if isinstance(e, sqlite3.OperationalError) else _rebuild(self.path, e)
            return
        self.stored = {p: (k, parts) for p, k, parts in rows}

    def parts(self, base: str) -> tuple[tuple[Any, ...], dict[str, Any] | None]:
        """The run's key and parts; parts None when the folder is not a run (foreign)."""
        key = run_key(base)
        text = _key_text(key)
        hit = self.stored.get(base)
        if hit is not None and hit[0] == text and not _racy(key, self.now_ns):
            with contextlib.suppress(ValueError, EOFError, TypeError):
                return key, marshal.loads(hit[1])
        if not is_run_dir(base):  # the folder changed: is it (still) a run?
            return key, None
        parts = read_parts(base)
        if not _racy(key, self.now_ns):
            with contextlib.suppress(ValueError):  # a value marshal cannot hold: not cached
                self.writes.append((base, text, marshal.dumps(parts)))
        return key, parts

    def save(self, live: set[str] | None) -> None:
        """One short transaction: changed rows, and (`live`: every run on disk) rows of runs
        that are gone. Skipped when another process is writing (next listing writes)."""
        if self.db is None:
            return
        gone = [p for p in self.stored if p not in live] if live is not None else []
        try:
            if self.writes or gone:
                self.db.execute("BEGIN IMMEDIATE")
                self.db.executemany("INSERT OR REPLACE INTO runs VALUES (?, ?, ?)", self.writes)
                self.db.executemany("DELETE FROM runs WHERE path = ?", [(p,) for p in gone])
                self.db.execute("COMMIT")
        except sqlite3.Error:
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("ROLLBACK")
        finally:
            self.db.close()
            self.db = None


def scan(ws: Workspace, use_index: bool = True) -> dict[str, tuple[tuple[Any, ...], RunInfo]]:
    """{run dir: (its run_key, its RunInfo)} for every run of the workspace, through the
    index (refreshing the rows of runs that changed); `use_index=False` reads every run."""
    rows = _Rows(index_path(ws), open_index(ws) if use_index else None)
    rows.load(None)
    out: dict[str, tuple[tuple[Any, ...], RunInfo]] = {}
    try:
        for base in _folders(ws):
            key, parts = rows.parts(base)
            if parts is not None:
                out[base] = (key, info_from_parts(base, parts))
    finally:
        rows.save(set(out))
    return out


def list_runs(
    ws: Workspace, state: str | None = None, with_last_epoch: bool = True
) -> list[RunInfo]:
    """`rundir.list_runs` through the index: every run, newest first; `state` filters on
    the derived state."""
    runs = [info for _, info in scan(ws).values()]
    if not with_last_epoch:
        for info in runs:
            info.last_epoch = info.epoch_clock = None
    if state:
        runs = [r for r in runs if r.state == state]
    runs.sort(key=_sort_key, reverse=True)
    return runs


def read_runs(ws: Workspace, paths: Iterable[str | os.PathLike[str]]) -> dict[str, RunInfo]:
    """Some runs (a group's members) through the index: {dir: RunInfo} for those that are
    runs; costs the rows asked for, not the workspace."""
    wanted = [os.fspath(p) for p in paths]
    rows = _Rows(index_path(ws), open_index(ws))
    rows.load(wanted)
    out: dict[str, RunInfo] = {}
    try:
        for base in wanted:
            key, parts = rows.parts(base)
            if parts is not None:
                out[base] = info_from_parts(base, parts)
    finally:
        rows.save(None)
    return out
