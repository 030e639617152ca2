"""A queue that cannot stall: at most one detached worker per workspace, proven by a lock.

Why: queued runs start only while some process works the queue. The worker can die (kill -9,
the OOM killer, a reboot) or exit just as a run is queued, and nothing would say so. So every
command that reads or changes the queue calls `keep_queue_going`: one flock probe when a
worker lives, and a new worker when runs wait and none does.

The worker holds an exclusive flock on runs/.amc-tui/worker/.lock for its whole life; the kernel
drops it however the worker dies, so no lock = no worker (a pid file would outlive it). The
spawner takes the lock before the worker exists and hands the open file to it, so two commands
starting workers at once cannot both succeed. The file also holds the runlock record (pid,
host, boot id, start time): on a network filesystem with weak flock, `runlock.holder` still
sees a live worker from the same host.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from amc_tui.launch.state import base_env, state_dir
from amc_tui.run import runlock
from amc_tui.run.rundir import ACTIVE_STATES, STATUS_FILE, RunInfo, is_run_dir, read_run
from amc_tui.sweeps.group import groups_pending
from amc_tui.workspace import Workspace

WORKER_MODULE = "amc_tui.launch.worker"
NO_WORKER_ENV = "AMC_TUI_NO_WORKER"  # "1": no detached worker (tests; `amc-tui queue` by hand)


def workers_disabled() -> bool:
    return os.environ.get(NO_WORKER_ENV) == "1"


def worker_dir(ws: Workspace) -> Path:
    path = state_dir(ws) / "worker"
    path.mkdir(exist_ok=True)
    return path


def worker_holder(ws: Workspace) -> dict | None:
    """The live worker's lock record ({pid, host, ...}), or None when no worker runs.
    Creates nothing: reading a workspace never writes to it."""
    return runlock.holder(ws.state_dir / "worker")


def worker_alive(ws: Workspace) -> bool:
    """Whether a queue worker, in any process (this one included), holds the worker lock."""
    return worker_holder(ws) is not None


def try_lock(ws: Workspace) -> int | None:
    """The worker lock's file descriptor, locked; None when a worker holds it."""
    fd = os.open(worker_dir(ws) / runlock.LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        if e.errno in (errno.EAGAIN, errno.EACCES):
            return None
        raise
    return fd


def write_record(fd: int, pid: int) -> None:
    """The runlock record of the worker `pid`, in place (the lock lives on this inode)."""
    record = {"pid": pid, "host": socket.gethostname(), "boot_id": runlock.boot_id(),
              "start_ticks": runlock.start_ticks(pid), "since": round(time.time(), 3)}  # fmt: skip
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)


def release(fd: int) -> None:
    """Let go of the worker lock: the record first, so no reader takes this process for a
    worker from its pid once the flock is gone."""
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
    os.close(fd)


def wants_worker(info: RunInfo) -> bool:
    """A run someone must watch: queued, submitted, running or stalled, a Slurm job whose end
    is not recorded yet, or a trainer on this host that died with nobody recording it (the worker's reap records it and restarts it if asked)."""
    if info.state in ACTIVE_STATES:
        return True
    if info.slurm_job_id and not info.slurm_settled:
        return True  # its Slurm job's end is still to be recorded (and maybe resubmitted)
    here = info.host in ("", socket.gethostname())
    return info.stored_state == "running" and info.state == "crashed" and here


OPEN_JOB = b'"slurm_settled": false'  # as status.json spells it (fsutil.atomic_write_json)


def _candidates(ws: Workspace) -> list[RunInfo]:
    """Runs that may want a worker, cheaply (an idle workspace is scanned by every `show`):
    one read of each status.json, and only a run whose stored state may be queued or
    running is checked and read in full."""
    try:
        entries = list(os.scandir(ws.runs))
    except OSError:
        return []
    out = []
    for e in entries:
        if e.name.startswith("."):
            continue
        try:
            with open(os.path.join(e.path, STATUS_FILE), "rb") as f:
                raw = f.read()
        except OSError:
            continue
        maybe = (b'"queued"', b'"running"', b'"submitted"', OPEN_JOB)
        if any(m in raw for m in maybe) and is_run_dir(e.path):
            info = read_run(e.path, with_last_epoch=False)
            if info.stored_state in ("queued", "running", "submitted") or info.slurm_job_id:
                out.append(info)
    return out


def has_active(ws: Workspace, runs: Iterable[RunInfo] | None = None) -> bool:
    """Runs that want a worker, or a sweep group waiting for its next trial (Optuna)."""
    if any(wants_worker(r) for r in (_candidates(ws) if runs is None else runs)):
        return True

    return groups_pending(ws)


def ensure_worker(ws: Workspace, runs: Iterable[RunInfo] | None = None) -> int | None:
    """Start a detached `python -m amc_tui.launch.worker` when runs want one and none holds
    the worker lock; its pid, or None when none was started. `runs`: a listing the caller
    already has (else the workspace is scanned, only when no worker lives)."""
    if workers_disabled() or not has_active(ws, runs):
        return None
    fd = try_lock(ws)
    if fd is None:
        return None
    proc = None
    try:
        proc = _spawn(ws, fd)
        write_record(fd, proc.pid)
    finally:
        if proc is None:
            release(fd)
        else:
            os.close(fd)  # the worker holds the lock through its own copy of the file
    if proc is None:
        return None
    threading.Thread(target=proc.wait, name="amc-worker-wait", daemon=True).start()
    return proc.pid


def _spawn(ws: Workspace, fd: int) -> subprocess.Popen[bytes]:
    logf = open(state_dir(ws) / "worker.log", "ab")  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(
            [sys.executable, "-m", WORKER_MODULE, "--workspace", str(ws.root),
             "--lock-fd", str(fd)],
            cwd=ws.root, env=base_env(), stdin=subprocess.DEVNULL, stdout=logf,
            stderr=subprocess.STDOUT, start_new_session=True, close_fds=True, pass_fds=(fd,),
        )  # fmt: skip
    finally:
        logf.close()


def keep_queue_going(ws: Workspace, runs: Iterable[RunInfo] | None = None) -> str | None:
    """For every command (and the app) that reads or changes the queue: make sure a worker
    exists while runs want one. One line to show the user when one had to be started, else
    None. Costs one flock probe while a worker lives."""
    if workers_disabled() or worker_alive(ws):
        return None
    try:
        pid = ensure_worker(ws, runs)
    except OSError as e:  # a read-only or full workspace: say so, the command itself goes on
        return f"runs are waiting and no queue worker could be started: {e.strerror or e}"
    return f"started a queue worker (pid {pid}): none was running" if pid else None
