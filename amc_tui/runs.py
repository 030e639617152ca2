"""The run directory contract (DESIGN.md section 3) and its event stream (section 4).

Processes talk only through these files: the trainer writes status.json (atomic replace) and
events.jsonl (append-only); the launcher, CLI and TUI read them. Readers tolerate missing
files, a torn last event line and unknown kinds/keys.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amc_tui.fsutil import append_line, atomic_write_json, plain, read_json

CONFIG_FILE = "config.toml"
META_FILE = "meta.json"
STATUS_FILE = "status.json"
EVENTS_FILE = "events.jsonl"
LOG_FILE = "train.log"
CHECKPOINT_DIR = "checkpoints"
EXPORT_DIR = "export"

STATES = ("queued", "running", "completed", "failed", "stopped", "crashed")
ACTIVE_STATES = frozenset({"queued", "running"})
FINAL_STATES = frozenset({"completed", "failed", "stopped", "crashed"})
HEARTBEAT_INTERVAL_S = 10.0
STALE_AFTER_S = 3 * HEARTBEAT_INTERVAL_S


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run directory."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def meta(self) -> Path:
        return self.path / META_FILE

    @property
    def status(self) -> Path:
        return self.path / STATUS_FILE

    @property
    def events(self) -> Path:
        return self.path / EVENTS_FILE

    @property
    def log(self) -> Path:
        return self.path / LOG_FILE

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINT_DIR

    @property
    def last_ckpt(self) -> Path:
        return self.checkpoints / "last.pt"

    @property
    def best_ckpt(self) -> Path:
        return self.checkpoints / "best.pt"

    @property
    def export(self) -> Path:
        return self.path / EXPORT_DIR

    def epoch_export(self, epoch: int) -> Path:
        return self.export / f"epoch_{epoch:03d}"

    @property
    def final_export(self) -> Path:
        return self.export / "final"


# --------------------------------------------------------------------------- status


def read_status(run: RunDir) -> dict[str, Any]:
    """status.json as a dict ({} when missing or unreadable)."""
    data = read_json(run.status)
    return data if isinstance(data, dict) else {}


def write_status(run: RunDir, **updates: Any) -> dict[str, Any]:
    """Merge `updates` into status.json and replace it atomically. Only one process writes a
    run's status at a time (the trainer while it lives, the launcher otherwise)."""
    status = read_status(run)
    status.update(updates)
    atomic_write_json(run.status, status)
    return status


def read_meta(run: RunDir) -> dict[str, Any]:
    data = read_json(run.meta)
    return data if isinstance(data, dict) else {}


def pid_alive(pid: int | None) -> bool:
    """True when a process with this pid exists on this host (zombies count as gone)."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) is not a running trainer
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def derive_state(status: dict[str, Any], now: float | None = None, host: str | None = None) -> str:
    """The state a reader should show: `running` becomes `crashed` when the trainer's pid is
    gone (same host) or its heartbeat is older than 3 intervals."""
    state = status.get("state") or "queued"
    if state != "running":
        return state
    now = time.time() if now is None else now
    same_host = status.get("host") in (None, host or socket.gethostname())
    if same_host and status.get("pid") and not pid_alive(status["pid"]):
        return "crashed"
    beat = status.get("heartbeat_at") or status.get("started_at")
    if beat is not None and now - float(beat) > STALE_AFTER_S:
        return "crashed"
    return state


# --------------------------------------------------------------------------- events


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


def last_event(
    path: str | os.PathLike[str], kind: str = "epoch", block: int = 64 << 10, limit: int = 64 << 20
) -> dict[str, Any] | None:
    """The last complete event of `kind`, found by reading blocks backwards from the end, so
    listing never parses a whole event file."""
    try:
        f = open(path, "rb")  # noqa: SIM115
    except OSError:
        return None
    needle = f'"kind":"{kind}"'.encode()
    with f:
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
            for raw in reversed(body):
                if needle in raw or f'"kind": "{kind}"'.encode() in raw:
                    ev = _parse_line(raw)
                    if ev is not None and ev.get("kind") == kind:
                        return ev
        return None
