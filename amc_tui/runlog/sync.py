"""RUNLOG.md entries (DESIGN section 6), rendered from a run's own files alone.

An entry is a pure function of the run directory (config.toml, status.json, meta.json, the
first `start` event, export/*/summary.json and per_cell.csv), so the trainer (after each epoch
and at the end), the launcher (crashed/stopped runs) and `amc-tui runlog sync` all write the
same bytes. `runlog_entry` renders the body; this module wraps it in its
`<!-- amc-tui:begin/end ID -->` markers and merges it into RUNLOG.md under a file lock with an
atomic replace. Text outside the markers is the user's and is kept byte for byte.

The trainer imports this module: no textual, no tomli_w, no torch here or in what it imports.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path
from typing import Any

from amc_tui.fsutil import disk_full_message, is_disk_full
from amc_tui.run.rundir import RunDir, read_meta, read_status, run_dirs, run_workspace
from amc_tui.runlog.entry import read_source, render_body
from amc_tui.runlog.group_entry import (
    sync_group_of,  # a sweep member's end: its group's entry
    sync_groups,  # sweep groups' entries
)
from amc_tui.runlog.store import HEADER, lock, read, write

BEGIN = "<!-- amc-tui:begin {id} -->"
END = "<!-- amc-tui:end {id} -->"
_BEGIN_RE = re.compile(r"<!-- amc-tui:begin (\S+) -->")


def not_written_reason(e: BaseException) -> str:
    """Why RUNLOG.md could not be updated, in one line (kept as status.json `runlog_error`):
    the free space for a full disk, the OS reason and file for another OSError, else the
    exception's first line."""

    if isinstance(e, OSError) and is_disk_full(e):
        return disk_full_message(e.filename or "RUNLOG.md")
    if isinstance(e, OSError) and e.strerror:
        return f"{e.strerror}: {e.filename}" if e.filename else e.strerror
    first = (str(e).strip().splitlines() or [""])[0]
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


def runlog_path_for(run_dir: str | os.PathLike[str]) -> Path:
    """The workspace RUNLOG.md of a run: meta.json "workspace", else two folders up."""
    return run_workspace(RunDir(Path(run_dir))) / "RUNLOG.md"


# --------------------------------------------------------------------------- render


def render_entry(run_dir: str | os.PathLike[str]) -> str:
    """The run's RUNLOG entry, markers included, ending with a newline."""
    src = read_source(run_dir)
    return (
        f"{BEGIN.format(id=src.run.id)}\n{render_body(src)}\n\n---\n{END.format(id=src.run.id)}\n"
    )


# --------------------------------------------------------------------------- file ops


def entry_offsets(text: str) -> dict[str, tuple[int, int]]:
    """{run id: (start, end)} character offsets of each entry, end marker and its newline
    included. A begin marker with no end marker spans only its own line."""
    out: dict[str, tuple[int, int]] = {}
    for m in _BEGIN_RE.finditer(text):
        run_id = m.group(1)
        if run_id in out:
            continue
        end_marker = END.format(id=run_id)
        stop = text.find(end_marker, m.end())
        nxt = _BEGIN_RE.search(text, m.end())
        if stop < 0 or (nxt is not None and nxt.start() < stop):
            eol = text.find("\n", m.end())
            out[run_id] = (m.start(), len(text) if eol < 0 else eol + 1)
            continue
        end = stop + len(end_marker)
        if text.startswith("\n", end):
            end += 1
        out[run_id] = (m.start(), end)
    return out


def _merge(text: str, entries: dict[str, str]) -> tuple[str, list[str]]:
    """`text` with each entry replaced in place or appended; (new text, ids changed).
    One pass over the offsets, so syncing 1,000 entries stays linear."""
    offsets = entry_offsets(text)
    changed: list[str] = []
    pieces: list[str] = []
    pos = 0
    for (a, b), run_id in sorted((offsets[i], i) for i in entries if i in offsets):
        pieces.append(text[pos:a])
        pieces.append(entries[run_id])
        if text[a:b] != entries[run_id]:
            changed.append(run_id)
        pos = b
    pieces.append(text[pos:])
    out = "".join(pieces)
    for run_id, entry in entries.items():
        if run_id in offsets:
            continue
        if out and not out.endswith("\n"):
            out += "\n"
        if out and not out.endswith("\n\n"):
            out += "\n"
        out += entry
        changed.append(run_id)
    return (out if changed else text), changed


def sync_entries(runlog_path: str | os.PathLike[str], entries: dict[str, str]) -> list[str]:
    """Write rendered entries into RUNLOG.md under the lock; ids whose entry changed."""
    path = Path(runlog_path)
    if path.is_dir():  # refused before the lock file is made: a failed sync leaves nothing
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    with lock(path):
        old = read(path)
        new, changed = _merge(HEADER if old is None else old, entries)
        if changed or old is None:
            write(path, new)
    return changed


def sync_entry(
    run_dir: str | os.PathLike[str], runlog_path: str | os.PathLike[str] | None = None
) -> bool:
    """Render the run's entry and put it in RUNLOG.md (in place, or appended); True when the
    file changed. Safe to call from any process at any time."""
    entry = render_entry(run_dir)
    run_id = _BEGIN_RE.match(entry).group(1)  # type: ignore[union-attr]
    path = Path(runlog_path) if runlog_path else runlog_path_for(run_dir)
    changed = bool(sync_entries(path, {run_id: entry}))

    sync_group_of(run_dir, path)
    return changed


def sync_all(ws: Any) -> list[str]:
    """Rebuild missing or stale entries for every started run of the workspace; ids changed
    (nothing is written when all are current)."""

    dirs = []
    for d in run_dirs(ws):
        status = read_status(RunDir(d))
        if status.get("started_at") is not None:
            meta = read_meta(RunDir(d))
            dirs.append((meta.get("created_at") or status.get("started_at") or 0, d.name, d))
    dirs.sort(key=lambda x: (float(x[0]) if isinstance(x[0], int | float) else 0.0, x[1]))
    entries: dict[str, str] = {}
    for _, _, d in dirs:
        entry = render_entry(d)
        entries[_BEGIN_RE.match(entry).group(1)] = entry  # type: ignore[union-attr]

    return (sync_entries(ws.runlog, entries) if entries else []) + sync_groups(ws)
