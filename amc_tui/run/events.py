"""The event stream of a run (`events.jsonl`): append-only writes and tolerant readers.

One JSON object per line, `{"t": <unix s>, "kind": <str>, ...}`. Readers ignore unknown kinds
and keys and a torn last line, and never parse a whole large file to answer one question
(`last_event` reads backwards, `EventTailer` resumes from a byte offset).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amc_tui import contract
from amc_tui.fsutil import append_line, plain

if TYPE_CHECKING:
    from amc_tui.run.rundir import RunDir

EVENTS_FILE = "events.jsonl"


def append_event(run: RunDir, kind: str, **fields: Any) -> dict[str, Any]:
    """Append one `{"t", "kind", ...}` line to events.jsonl."""
    event = {"t": round(time.time(), 3), "kind": kind, **fields}
    append_line(run.events, json.dumps(event, default=plain, separators=(",", ":")))
    return event


def _parse_line(raw: bytes) -> dict[str, Any] | None:
    try:
        obj = json.loads(raw)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) and "kind" in obj else None


class EventTailer:
    """Incremental reader of events.jsonl by byte offset.

    Each `poll()` returns the complete lines written since the last call; a torn last line is
    kept for later; if the file shrank (replaced or truncated) it starts over from 0.
    """

    def __init__(self, path: str | os.PathLike[str], offset: int = 0) -> None:
        self.path = Path(path)
        self.offset = offset
        self.reset_count = 0

    def poll(self, max_bytes: int = 16 << 20) -> list[dict[str, Any]]:
        try:
            size = self.path.stat().st_size
        except OSError:
            return []
        if size < self.offset:
            self.offset = 0
            self.reset_count += 1
        if size == self.offset:
            return []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            chunk = f.read(min(size - self.offset, max_bytes))
        end = chunk.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        events = []
        for raw in chunk[: end + 1].splitlines():
            ev = _parse_line(raw)
            if ev is not None:
                events.append(ev)
        return events


def read_events(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every complete event in a file (for exports and tests; listing uses last_event)."""
    out: list[dict[str, Any]] = []
    tailer = EventTailer(path)
    while batch := tailer.poll():
        out.extend(batch)
    return out


def epoch_events(run_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every epoch event of a run, in order (the trajectory every screen and the RUNLOG
    draw). Read in bounded chunks, so a large event file never loads at once."""
    out: list[dict[str, Any]] = []
    tailer = EventTailer(Path(run_dir) / EVENTS_FILE)
    while batch := tailer.poll(max_bytes=8 << 20):
        out.extend(ev for ev in batch if ev.get("kind") == "epoch")
    return out


def epoch_event(run_dir: str | os.PathLike[str], epoch: int) -> dict[str, Any] | None:
    """The epoch event of `epoch` (the last one: a resumed run may repeat an epoch), parsing
    only the lines that hold an epoch event (writers write `"kind":"epoch"`; a file written
    another way is read whole)."""
    found = None
    seen = False
    try:
        with open(Path(run_dir) / EVENTS_FILE, "rb") as f:
            for raw in f:
                if b'"kind":"epoch"' not in raw and b'"kind": "epoch"' not in raw:
                    continue
                seen = True
                ev = _parse_line(raw)
                if ev is not None and ev.get("kind") == "epoch" and ev.get("epoch") == epoch:
                    found = ev
    except OSError:
        return None
    if seen:
        return found
    return next((ev for ev in reversed(epoch_events(run_dir)) if ev.get("epoch") == epoch), None)


def first_event(
    path: str | os.PathLike[str], kind: str, max_lines: int = 200
) -> dict[str, Any] | None:
    """The first event of `kind` among the first `max_lines` lines (the start event)."""
    needle = kind.encode()
    try:
        with open(path, "rb") as f:
            for i, raw in enumerate(f):
                if i >= max_lines:
                    break
                ev = _parse_line(raw) if needle in raw else None
                if ev is not None and ev.get("kind") == kind:
                    return ev
    except OSError:
        pass
    return None


def _lines_backwards(f: Any, block: int, limit: int) -> Iterator[bytes]:
    """The complete lines of an open binary file from its end backwards, reading at most
    `limit` bytes in `block`-sized reads."""
    pos = f.seek(0, os.SEEK_END)
    tail = b""
    scanned = 0
    while pos > 0 and scanned < limit:
        step = min(block, pos)
        pos -= step
        f.seek(pos)
        buf = f.read(step) + tail
        scanned += step
        lines = buf.split(b"\n")
        tail = lines[0] if pos > 0 else b""
        body = lines[1:] if pos > 0 else lines
        yield from reversed(body)


def _kind_needles(*kinds: str) -> tuple[bytes, ...]:
    return tuple(n for k in kinds for n in (f'"kind":"{k}"'.encode(), f'"kind": "{k}"'.encode()))


def last_event(
    path: str | os.PathLike[str], kind: str = "epoch", block: int = 64 << 10, limit: int = 64 << 20
) -> dict[str, Any] | None:
    """The last complete event of `kind`, found by reading blocks backwards from the end, so
    listing never parses a whole event file."""
    try:
        f = open(path, "rb")  # noqa: SIM115
    except OSError:
        return None
    needles = _kind_needles(kind)
    with f:
        for raw in _lines_backwards(f, block, limit):
            if any(n in raw for n in needles):
                ev = _parse_line(raw)
                if ev is not None and ev.get("kind") == kind:
                    return ev
        return None


def eta_events(
    path: str | os.PathLike[str], block: int = 64 << 10, limit: int = 64 << 20
) -> list[dict[str, Any]]:
    """The `start` and `epoch` events that `contract.EpochClock` needs for a run's ETA, in
    file order: read backwards from the end only until the latest full epoch is known (two
    epoch events with no start between them, or an epoch after a start that did not begin
    mid-epoch), so a long run's file is never parsed whole."""
    try:
        f = open(path, "rb")  # noqa: SIM115
    except OSError:
        return []
    needles = _kind_needles("start", "epoch")
    found: list[dict[str, Any]] = []
    epochs_after = 0  # epoch events after the earliest start seen (or the end)
    with f:
        for raw in _lines_backwards(f, block, limit):
            ev = _parse_line(raw) if any(n in raw for n in needles) else None
            kind = ev.get("kind") if ev is not None else None
            if ev is None or kind not in ("start", "epoch"):
                continue
            found.append(ev)
            if kind == "epoch":
                epochs_after += 1
                if epochs_after >= 2:  # the later one is not the first after any start
                    break
            else:
                if epochs_after and not contract.start_share(ev):
                    break  # the epoch after this start is a full one
                epochs_after = 0
    found.reverse()
    return found


def _time_of(raw: bytes | None) -> float | None:
    ev = _parse_line(raw) if raw else None
    t = ev.get("t") if ev else None
    return float(t) if isinstance(t, int | float) and not isinstance(t, bool) else None


_EARLIER: dict[tuple[str, float], float] = {}


def earlier_attempts_s(
    path: str | os.PathLike[str], before: float, first_began: float | None = None
) -> float:
    """Seconds trained by the attempts whose start event is before `before` (a resumed run's
    earlier attempts): each from its start event's `started_at` (status.json's clock of that
    attempt: when it was launched, so its start-up counts as the current attempt's does; the
    event's time for older trainers; the first attempt from `first_began` at the latest) to
    its end event, or to its last event when the trainer died without one; an attempt that
    failed before its start event (the trainer's preflight) from its end event's started_at.
    One pass parsing only start/end lines; cached, since earlier attempts never change."""
    key = (os.fspath(path), before)
    if key in _EARLIER:
        return _EARLIER[key]
    total, begun, prev = 0.0, None, None
    try:
        with open(path, "rb") as f:
            for raw in f:
                ev = _parse_line(raw) if b'"start"' in raw or b'"end"' in raw else None
                kind = ev.get("kind") if ev else None
                if ev is not None and kind == "start":
                    if begun is not None:  # the attempt before died without an end event
                        total += max(0.0, (_time_of(prev) or begun) - begun)
                    begun = _time_of(raw)
                    if begun is None or begun >= before:
                        begun = None
                        break  # the current attempt
                    began = ev.get("started_at")  # the attempt's status.json clock
                    if contract.is_number(began) and began <= begun:
                        begun = float(began)
                    if first_began is not None:
                        begun, first_began = min(begun, first_began), None
                elif ev is not None and kind == "end" and begun is not None:
                    total += max(0.0, (_time_of(raw) or begun) - begun)
                    begun = None
                elif ev is not None and kind == "end":  # an attempt that failed before its start
                    began, ended = ev.get("started_at"), _time_of(raw)
                    if contract.is_number(began) and ended is not None and began < before:
                        total += max(0.0, ended - float(began))
                        first_began = None  # it was the first attempt's launch
                prev = raw
    except OSError:
        return 0.0
    if begun is not None:
        total += max(0.0, (_time_of(prev) or begun) - begun)
    if len(_EARLIER) > 4096:
        _EARLIER.clear()
    _EARLIER[key] = total
    return total
