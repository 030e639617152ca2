"""One real trainer owns its run directory: a second one is refused without writing, a paused
one reads `stalled`, its start clears temp files of killed writes, a RUNLOG.md failure is
recorded, and its CPU threads are its share of the cores among the live CPU trainers.

One live trainer (a long tiny run) serves the whole module; the refusal test stops it, so it
comes last in the file.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from train_fixtures import (
    REPO,
    TINY,
    events,
    log_text,
    make_data,
    make_run,
    start_trainer,
    wait_paused,
)

from amc_tui.run.rundir import RunDir, read_run, read_status, write_status

HOLD = (
    "import sys, time\n"
    "from amc_tui.run.runlock import acquire\n"
    "lock = acquire(sys.argv[1])\n"
    "print('held', flush=True)\n"
    "time.sleep(600)\n"
)
PLANTED = (  # temp files a kill -9 during atomic writes leaves behind
    "checkpoints/.last.pt.abc123.tmp",
    ".status.json.x9y8z7.tmp",
    "export/epoch_001/.summary.json.q1w2e3.tmp",
)


@dataclass
class Live:
    run: RunDir
    proc: subprocess.Popen[bytes]
    ws: Path


def wait_for(cond, timeout: float = 120, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout} s")
        time.sleep(0.05)


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    env.pop("OMP_WAIT_POLICY", None)
    return env


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    ws = tmp_path_factory.mktemp("own_ws")
    data = make_data(ws / "data" / "tiny.h5")
    # another CPU trainer of the workspace, alive (its lock held): the two share the cores
    other = make_run(ws, "other-cpu-1", data)
    write_status(other, state="running", device="cpu", heartbeat_at=time.time())
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(other.path)],
                              stdout=subprocess.PIPE, text=True, env=_env())  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    config = TINY.format(name="live-1", data=data, epochs=2).replace("threads = 1\n", "")
    run = make_run(ws, "live-1", data, config=config)
    for rel in PLANTED:
        (run.path / rel).parent.mkdir(parents=True, exist_ok=True)
        (run.path / rel).write_bytes(b"half a file")
    (ws / "RUNLOG.md").mkdir()  # the trainer cannot write its entry
    # paused after its first step until the last test's SIGTERM: alive, however fast it is
    proc = start_trainer(run, pause=1)
    try:
        wait_paused(run, 1, proc.pid)
        yield Live(run, proc, ws)
    finally:
        for p in (proc, holder):
            if p.poll() is None:
                os.kill(p.pid, signal.SIGCONT)
                os.kill(p.pid, signal.SIGKILL)
            p.wait(timeout=60)


def test_start_removes_temp_files_of_killed_writes(live: Live) -> None:
    for rel in PLANTED:
        assert not (live.run.path / rel).exists(), rel
    log = log_text(live.run)
    assert "removed a temp file left by a killed write" in log and ".last.pt.abc123.tmp" in log


def test_runlog_failure_is_recorded_not_fatal(live: Live) -> None:
    status = read_status(live.run)
    assert status["state"] == "running"
    error = status["runlog_error"]
    assert error.startswith("Is a directory: ") and error.endswith("RUNLOG.md"), error
    assert f"RUNLOG.md not updated: {error}" in log_text(live.run)


def test_cpu_threads_are_a_share_of_the_cores(live: Live) -> None:
    cores = len(os.sched_getaffinity(0))
    n = max(1, cores // 2)
    (start,) = events(live.run, "start")
    assert start["threads"] == n
    line = f"cpu: {n} torch thread{'s' * (n > 1)} ({cores} usable cores / 2 live CPU trainers)"
    wait = os.environ.get("OMP_WAIT_POLICY", "PASSIVE")  # waiting threads sleep unless set
    assert f"{line}, OMP_WAIT_POLICY {wait}" in log_text(live.run)


def test_paused_trainer_reads_stalled_then_running_again(live: Live) -> None:
    os.kill(live.proc.pid, signal.SIGSTOP)  # a suspended laptop, a stuck NFS mount
    try:
        # what 30 s without a heartbeat leaves (the trainer is frozen: nothing overwrites it)
        write_status(live.run, heartbeat_at=time.time() - 120)
        assert read_run(live.run.path).state == "stalled"
    finally:
        os.kill(live.proc.pid, signal.SIGCONT)
    wait_for(lambda: read_run(live.run.path).state == "running", what="fresh heartbeat")


def test_second_trainer_is_refused_and_writes_nothing(live: Live) -> None:
    """Keep last: it stops the live trainer."""
    run, proc = live.run, live.proc
    before = events(run, "start")
    # the refusal comes before torch is imported
    probe = (
        "import sys\nfrom amc_tui.train.owner import main\n"
        f"rc = main(['--run-dir', {str(run.path)!r}, '--resume'])\n"
        "print('torch' in sys.modules, rc)\n"
    )
    p = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                       env=_env(), cwd=REPO, timeout=120)  # fmt: skip
    assert p.stdout.split() == ["False", "2"], p.stderr
    p = subprocess.run(
        [sys.executable, "-m", "amc_tui.train", "--run-dir", str(run.path), "--resume"],
        capture_output=True, text=True, env=_env(), cwd=REPO, timeout=120,
    )  # fmt: skip
    assert p.returncode == 2 and p.stdout == ""
    (line,) = p.stderr.splitlines()
    assert line.startswith("error: run directory live-1 is owned by another trainer")
    assert f"pid {proc.pid} on {socket.gethostname()}" in line
    status = read_status(run)
    assert status["pid"] == proc.pid and status["state"] == "running"
    assert events(run, "start") == before
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=120) == 0, log_text(run)[-3000:]
    epochs = [e["epoch"] for e in events(run, "epoch")]
    assert epochs == list(range(1, len(epochs) + 1))
    assert [e["kind"] for e in events(run)].count("start") == 1
    status = read_status(run)
    assert status["state"] == "stopped" and status["pid"] == proc.pid
    assert json.loads((run.path / ".lock").read_text())["pid"] == proc.pid
