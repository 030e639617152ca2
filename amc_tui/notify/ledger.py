"""The once-only record of notifications: runs/.amc-tui/notify/<key>.json.

Several processes may see the same event (the trainer, the queue worker, a followed `run`,
the app). Whoever creates `<key>.json` first (an exclusive create: exactly one process
succeeds, on any local filesystem) sends it and then replaces the file with the outcome:
{state: sent | failed, error, answers [{url, ok, error}], ...}. A key is never sent again,
not even when its claimer died before recording the outcome (the file then says `sending`).

`since.json` is written once, when the ledger is first made, with the time amc-tui.toml was
written: events older than it are never notified, so configuring notifications in a workspace
with a long history sends nothing old.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from pathlib import Path
from typing import Any

from amc_tui.fsutil import atomic_write_json, read_json
from amc_tui.workspace import Workspace

SINCE_FILE = "since.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")


def ledger_dir(ws: Workspace) -> Path:
    return ws.state_dir / "notify"


def key_file(folder: Path, key: str) -> Path:
    return folder / (_UNSAFE.sub("_", key) + ".json")


def since(folder: Path, configured_at: float | None = None) -> float:
    """When notifications began: read from `since.json`, which the first observer writes as
    `configured_at` (amc-tui.toml's mtime: the first observer may come only at a run's end)
    or now, whichever is earlier."""
    path = folder / SINCE_FILE
    got = read_json(path)
    if isinstance(got, dict) and isinstance(got.get("since"), int | float):
        return float(got["since"])
    folder.mkdir(parents=True, exist_ok=True)
    start = min(time.time(), configured_at if configured_at is not None else time.time())
    if _create(path, {"since": round(start, 3)}):
        return round(start, 3)
    for _ in range(50):  # another process is writing it this instant
        got = read_json(path)
        if isinstance(got, dict) and isinstance(got.get("since"), int | float):
            return float(got["since"])
        time.sleep(0.01)
    return start


def claim(folder: Path, key: str, what: dict[str, Any]) -> bool:
    """True for the one process that claims `key` (it must then `record` the outcome)."""
    folder.mkdir(parents=True, exist_ok=True)
    rec = {"key": key, "state": "sending", "by": {"pid": os.getpid(), "host": socket.gethostname()},
           "claimed_at": round(time.time(), 3), **what}  # fmt: skip
    return _create(key_file(folder, key), rec)


def record(folder: Path, key: str, outcome: dict[str, Any]) -> dict[str, Any]:
    """Replace the claim with its outcome (atomic: a reader sees the claim or the outcome)."""
    path = key_file(folder, key)
    rec = read_json(path)
    rec = {**(rec if isinstance(rec, dict) else {"key": key}), **outcome}
    atomic_write_json(path, rec)
    return rec


def exists(folder: Path, key: str) -> bool:
    return key_file(folder, key).exists()


def records(folder: Path, prefix: str = "") -> list[dict[str, Any]]:
    """The records whose key starts with `prefix`, oldest claim first."""
    out = []
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    for name in names:
        if name == SINCE_FILE or not name.endswith(".json") or not name.startswith(prefix):
            continue
        rec = read_json(folder / name)
        if isinstance(rec, dict):
            out.append(rec)
    return sorted(out, key=lambda r: r.get("claimed_at") or 0.0)


def _create(path: Path, obj: dict[str, Any]) -> bool:
    """Write a new file that must not exist yet, in one write; False when it exists."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    try:
        os.write(fd, (json.dumps(obj) + "\n").encode("utf-8"))
    finally:
        os.close(fd)
    return True
