"""One owner per run directory: the lock, who holds it, and the states a reader derives."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from runs_fixtures import make_fake_run, runs_workspace

from amc_tui.run import runlock
from amc_tui.run.rundir import read_run
from amc_tui.workspace import Workspace

HOLD = (
    "import sys, time\n"
    "from amc_tui.run.runlock import acquire\n"
    "lock = acquire(sys.argv[1])\n"
    "print('held', flush=True)\n"
    "time.sleep(600)\n"
)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return runs_workspace(tmp_path)


def _hold(run_dir: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def _kill(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait(timeout=30)


def test_second_owner_is_refused_naming_the_holder(ws: Workspace) -> None:
    run = make_fake_run(ws, "a-b-1", state="running")
    proc = _hold(run.path)
    try:
        held = runlock.holder(run.path)
        assert held is not None and held["pid"] == proc.pid
        assert held["host"] == socket.gethostname()
        with pytest.raises(runlock.RunLocked) as info:
            runlock.acquire(run.path, wait_s=0.2)
        assert f"pid {proc.pid} on {socket.gethostname()}" in str(info.value)
        assert info.value.exit_code == 2
    finally:
        _kill(proc)
    assert runlock.holder(run.path) is None  # the kernel released it with the process
    mine = runlock.acquire(run.path)
    mine.release()


def test_paused_trainer_is_stalled_not_crashed(ws: Workspace) -> None:
    run = make_fake_run(ws, "a-b-2", state="running", heartbeat_at=1.0)
    proc = _hold(run.path)
    try:
        os.kill(proc.pid, signal.SIGSTOP)  # a suspended laptop, a stuck NFS mount
        assert read_run(run.path).state == "stalled"
        os.kill(proc.pid, signal.SIGCONT)
    finally:
        _kill(proc)
    assert read_run(run.path).state == "crashed"


def test_fresh_heartbeat_with_lock_is_running(ws: Workspace) -> None:
    import time

    run = make_fake_run(ws, "a-b-3", state="running", heartbeat_at=time.time())
    proc = _hold(run.path)
    try:
        assert read_run(run.path).state == "running"
    finally:
        _kill(proc)


def test_weak_flock_falls_back_to_pid_and_start_time(ws: Workspace) -> None:
    run = make_fake_run(ws, "a-b-4", state="running", heartbeat_at=1.0)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        record = {"pid": sleeper.pid, "host": socket.gethostname(), "boot_id": runlock.boot_id(),
                  "start_ticks": runlock.start_ticks(sleeper.pid), "since": 1.0}  # fmt: skip
        lock_file = run.path / runlock.LOCK_FILE
        lock_file.write_text(json.dumps(record))  # recorded, but no flock taken
        assert runlock.holder(run.path) == record
        assert read_run(run.path).state == "stalled"
        lock_file.write_text(json.dumps({**record, "start_ticks": record["start_ticks"] + 1}))
        assert runlock.holder(run.path) is None  # the pid was reused by another process
    finally:
        _kill(sleeper)  # type: ignore[arg-type]
