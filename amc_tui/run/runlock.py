"""One owner per run directory: the trainer holds an exclusive lock on `<run>/.lock` for life.

Why: a trainer that is paused (SIGSTOP, a laptop suspend, a stalled NFS mount) looks dead by
its heartbeat alone, and a second trainer started on the same directory would interleave its
events, checkpoints and status with the first. The kernel releases an flock when its process
dies, however it dies, so "lock held" is the liveness test and the heartbeat only says whether
a live trainer is making progress (`running`) or not (`stalled`).

The lock file also records who holds it (pid, host, boot id, since). On a network filesystem
where flock is local to each client (or a no-op), readers on the same host still see a live
holder by its pid and boot id; a reader on another host falls back to the heartbeat.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amc_tui.errors import UserError

LOCK_FILE = ".lock"


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


def start_ticks(pid: int) -> int | None:
    """A process's start time in clock ticks since boot: with the boot id it tells a live
    holder from a later process that reused its pid."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def boot_id() -> str:
    """This boot's id (Linux); a pid recorded under another boot is not a live process."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


class RunLocked(UserError):
    """Another trainer owns the run directory (exit 2, naming it)."""


@dataclass
class RunLock:
    """The held lock; keep the object alive (and the fd open) for the trainer's whole life."""

    path: Path
    fd: int

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing drops the flock
            self.fd = -1


def _describe(info: dict[str, Any]) -> str:
    since = info.get("since")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) if since else "?"
    return f"pid {info.get('pid', '?')} on {info.get('host', '?')} since {when}"


def acquire(run_dir: str | os.PathLike[str], wait_s: float = 2.0) -> RunLock:
    """Take the run's lock or raise RunLocked naming the holder. Waits up to `wait_s` for a
    reader's momentary probe to pass; another trainer is never waited for longer."""
    path = Path(run_dir) / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() >= deadline:
                info = _read(path)
                os.close(fd)
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                raise RunLocked(
                    f"run directory {Path(run_dir).name} is owned by another trainer "
                    f"({_describe(info)}); stop it first (amc-tui stop)"
                ) from None
            time.sleep(0.05)
    pid = os.getpid()
    record = {"pid": pid, "host": socket.gethostname(), "boot_id": boot_id(),
              "start_ticks": start_ticks(pid), "since": round(time.time(), 3)}  # fmt: skip
    # Written in place: the lock lives on this inode, so the file is never replaced.
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
    return RunLock(path, fd)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def holder(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Who holds the run's lock ({pid, host, boot_id, since}), or None when nobody does.
    Never blocks; a run directory that never had a trainer with a lock returns None."""
    path = Path(run_dir) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EACCES):
                return _read(path) or {"pid": None}
            return None
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    info = _read(path)
    # flock is weak on some network filesystems: a live holder on this host still counts.
    if _alive_here(info):
        return info
    return None


def _alive_here(info: dict[str, Any]) -> bool:
    pid = info.get("pid")
    if info.get("host") != socket.gethostname() or not isinstance(pid, int) or pid == os.getpid():
        return False
    if info.get("boot_id") and info.get("boot_id") != boot_id():
        return False
    ticks = info.get("start_ticks")
    if ticks is not None and start_ticks(pid) != ticks:
        return False  # the pid now belongs to another process

    return pid_alive(pid)


def has_lock_file(run_dir: str | os.PathLike[str]) -> bool:
    return (Path(run_dir) / LOCK_FILE).exists()
