"""Faults the launcher must survive, with real processes (the stand-in trainer takes the run
lock like the real one): a paused trainer (stalled), a killed queue worker, a hang-up of a
followed run, damaged status files and stray folders. The CLI runs as subprocesses."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runs_fixtures import amc, fake_trainer_workspace, kill_running, make_fake_run, wait_for

from amc_tui.launch.keeper import worker_alive, worker_holder
from amc_tui.launch.queue import launch, work_queue
from amc_tui.launch.stop import stop_run
from amc_tui.launch.supervise import child_returncode
from amc_tui.run import runlock
from amc_tui.run.rundir import RunDir, read_events, read_run, read_status, write_status
from amc_tui.run.runlock import pid_alive

CFG = "configs/fake.toml"


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def fws(tmp_path, monkeypatch):
    """Stand-in trainer workspace with the detached queue worker on (as users have it)."""
    ws = fake_trainer_workspace(tmp_path, monkeypatch, epoch_s=0.15, epochs=3, stop_grace_s=10.0)
    monkeypatch.delenv("AMC_TUI_NO_WORKER")
    yield ws
    kill_running(ws)


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under `folder` with its bytes and mtime: "nothing touched" made checkable."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            out[str(p.relative_to(folder))] = (
                hashlib.sha1(p.read_bytes()).digest(),
                p.stat().st_mtime_ns,
            )
    return out


# --------------------------------------------------------------------------- stalled


def test_a_stalled_trainer_is_not_resumed_beside_itself_and_stop_ends_it(fws):
    out = amc(fws, "run", CFG, "-d", "--name", "paused", AMC_TUI_NO_WORKER="1",
              FAKE_HOLD_AFTER="1")  # fmt: skip
    assert out.returncode == 0, out.stderr
    rd = RunDir(fws.runs / "paused")
    wait_for(lambda: read_run(rd.path).epoch >= 1)
    info = read_run(rd.path)
    os.killpg(info.pgid, signal.SIGSTOP)  # a suspended job, a laptop lid closed
    write_status(rd, heartbeat_at=time.time() - 3600)  # nobody else writes: it is paused
    assert read_run(rd.path).state == "stalled"
    assert "stalled" in amc(fws, "ls").stdout

    res = amc(fws, "resume", "paused")
    assert res.returncode == 2
    line = one_line(res.stderr)
    assert f"pid {info.pid}" in line and "stop it first" in line
    assert read_status(rd)["state"] == "running" and not (rd.path / ".stop_requested").exists()
    assert work_queue(fws) == []  # nothing queued: no second trainer

    stop = amc(fws, "stop", "paused")
    assert stop.returncode == 0, stop.stderr
    assert "stalled" in stop.stdout and "paused stopped; checkpoint" in stop.stdout
    done = read_run(rd.path)
    assert done.state == "stopped" and done.exit_code == 0  # it ran, saw SIGTERM, saved
    assert not pid_alive(info.pid)


def test_restart_on_failure_waits_while_a_child_still_holds_the_run(fws, monkeypatch):
    """The trainer died but a process it forked still holds the run's lock: no second
    trainer starts beside it; the restart comes once the lock is free."""
    monkeypatch.setenv("AMC_TUI_NO_WORKER", "1")
    monkeypatch.setenv("FAKE_LOCK_CHILD", "1")
    monkeypatch.setenv("FAKE_HOLD_AFTER", "1")  # the first trainer waits there for the kill
    info = launch(fws, CFG, ["train.epochs=4", 'run.restart="on-failure"',
                                      "run.max_restarts=1"], detach=False)  # fmt: skip
    rd = RunDir(info.dir)
    wait_for(lambda: rd.log.is_file() and "holding" in rd.log.read_text().split())
    os.kill(info.pid, signal.SIGKILL)  # the trainer only: its child keeps the lock
    wait_for(lambda: not pid_alive(info.pid) and child_returncode(info.pid) is None)
    assert work_queue(fws) == []  # reaped by our waiter thread; now a queue pass
    assert read_status(rd)["state"] == "running" and read_run(rd.path).restarts == 0
    assert read_run(rd.path).state in ("running", "stalled")  # the lock is held
    (rd.path / "release-lock").write_text("")
    wait_for(lambda: work_queue(fws) or read_run(rd.path).restarts >= 1)
    wait_for(lambda: (work_queue(fws), read_run(rd.path).state == "completed")[1])
    kinds = [e["kind"] for e in read_events(rd.events)]
    assert read_run(rd.path).restarts == 1 and kinds.count("start") == 2


# --------------------------------------------------------------------------- queue worker


def test_a_killed_worker_is_restarted_by_the_next_ls_and_the_queue_moves_on(fws):
    # `first` holds after epoch 1 until stopped (the worker passes the knob on to all runs)
    a = amc(fws, "run", CFG, "-d", "--name", "first", FAKE_HOLD_AFTER="first:1")
    b = amc(fws, "run", CFG, "-d", "--name", "second", "--set", "train.epochs=2")
    assert a.returncode == b.returncode == 0, a.stderr + b.stderr
    assert b.stdout.split()[2] == "queued"
    worker = wait_for(lambda: worker_holder(fws))
    os.kill(worker["pid"], signal.SIGKILL)
    wait_for(lambda: not worker_alive(fws))
    stop_run(fws, "first", grace_s=10)  # in-process: starts no worker
    assert read_run(fws.runs / "second").state == "queued"  # and nobody starts `second`

    ls = amc(fws, "ls")
    assert ls.returncode == 0
    note = one_line(ls.stderr)
    assert note.startswith("amc-tui: started a queue worker (pid ") and "none was running" in note
    pid = int(note.split("(pid ")[1].split(")")[0])
    assert worker_holder(fws)["pid"] == pid
    wait_for(lambda: read_run(fws.runs / "second").state == "completed")
    assert amc(fws, "ls").stderr == ""  # idle: no worker wanted, none started


def test_a_hang_up_of_a_followed_queued_run_changes_nothing(fws):
    busy = amc(fws, "run", CFG, "-d", "--name", "busy", AMC_TUI_NO_WORKER="1",
               FAKE_HOLD_AFTER="1")  # fmt: skip
    assert busy.returncode == 0 and not worker_alive(fws)
    fg = subprocess.Popen(
        [sys.executable, "-m", "amc_tui.cli", "run", CFG, "--name", "later"],
        cwd=fws.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    first = fg.stdout.readline()
    assert "queued: waiting for a free device" in first
    fg.send_signal(signal.SIGHUP)  # the SSH session dropped
    _, err = fg.communicate(timeout=60)
    assert fg.returncode == -signal.SIGHUP
    assert "started a queue worker" in err  # `busy` had none: the followed run made one
    stop_run(fws, "busy", grace_s=10)  # in-process: starts no worker
    wait_for(lambda: read_run(fws.runs / "later").state == "completed")


# --------------------------------------------------------------------------- damaged, foreign


DAMAGES = {  # run name: (what status.json holds, None = deleted; what ls/show say)
    "torn-1": (b'{"state": "completed", "epo', "is not valid JSON"),
    "empty-1": (b"", "is not valid JSON"),
    "nostate-1": (b'{"state": 5}', "has no state"),
    "missing-1": (None, "is missing"),
}


def test_a_damaged_run_is_shown_never_relaunched_and_never_written(fws):
    """Four kinds of damaged status.json side by side, while a healthy run goes through the
    queue around them: each is `unknown` with its reason, none is touched."""
    before = {}
    for name, (damage, _) in DAMAGES.items():
        run = make_fake_run(fws, name, state="completed", epochs=4, created_at=time.time())
        if damage is None:
            run.status.unlink()
        else:
            run.status.write_bytes(damage)
        before[name] = snapshot(run.path)
    ok = amc(fws, "run", CFG, "-d", "--name", "healthy", AMC_TUI_NO_WORKER="1")
    assert ok.returncode == 0
    out = amc(fws, "queue")  # the worker's loop until idle: it starts and reaps around them
    assert out.returncode == 0 and "queue empty" in out.stdout, out.stdout + out.stderr
    assert read_run(fws.runs / "healthy").state == "completed"
    ls = amc(fws, "ls")
    for name, (_, why) in DAMAGES.items():
        info = read_run(fws.runs / name)
        assert info.state == "unknown" and why in info.error, name
        row = next(ln for ln in ls.stdout.splitlines() if ln.startswith(f"{name} "))
        assert row.split()[2] == "unknown"
        assert f"{name}: status.json {why}" in ls.stdout and f"amc-tui repair {name}" in ls.stdout
        show = amc(fws, "show", name)
        assert show.returncode == 0 and f"error: status.json {why}" in show.stdout
        res = amc(fws, "resume", name)
        assert res.returncode == 2 and "repair" in one_line(res.stderr)
        assert snapshot(fws.runs / name) == before[name]


def test_a_stray_folder_is_listed_as_foreign_and_never_touched(fws):
    stray = fws.runs / "stray-folder"
    (stray / "checkpoints").mkdir(parents=True)
    (stray / "status.json").write_text('{"state": "stopped", "epoch": 1}\n')  # run-like
    (stray / "config.toml").write_text("[train]\nepochs = 2\n")  # but no meta.json
    (stray / "checkpoints" / "last.pt").write_text("{}")
    (stray / "notes.txt").write_text("my own files\n")
    before = snapshot(stray)
    for cmd in ("resume", "stop", "show", "repair"):
        out = amc(fws, cmd, "stray-folder")
        assert out.returncode == 2 and "is not a run" in one_line(out.stderr), cmd
    assert amc(fws, "queue", "--once").returncode == 0
    assert amc(fws, "ls").stdout.startswith("no runs")
    ls = amc(fws, "ls", "--all")
    row = next(ln for ln in ls.stdout.splitlines() if ln.startswith("stray-folder "))
    assert row.split()[1:3] == ["-", "foreign"] and "not runs" in ls.stdout
    rows = json.loads(amc(fws, "ls", "--all", "--json").stdout)
    assert rows == [{"id": None, "name": "stray-folder", "state": "foreign", "dir": str(stray)}]
    assert amc(fws, "runlog", "sync").returncode == 0
    assert snapshot(stray) == before and sorted(p.name for p in stray.iterdir()) == [
        "checkpoints", "config.toml", "notes.txt", "status.json",
    ]  # fmt: skip


def test_repair_rebuilds_a_damaged_status_from_the_cli(fws):
    run = make_fake_run(fws, "torn-1", state="completed", epochs=4)
    run.best_ckpt.write_bytes(b"fake")
    torn = run.status.read_bytes()[:30]
    run.status.write_bytes(torn)
    out = amc(fws, "repair", "torn-1")
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.strip().splitlines()) == 1 and "completed, epoch 4/4" in out.stdout
    assert (run.path / "status.json.bad").read_bytes() == torn
    assert read_run(run.path).state == "completed"
    again = amc(fws, "repair", "torn-1")
    assert again.returncode == 2 and "nothing to repair" in one_line(again.stderr)


def test_repair_refuses_a_run_whose_trainer_lives(fws):
    out = amc(fws, "run", CFG, "-d", "--name", "alive", "--set", "train.epochs=400",
              AMC_TUI_NO_WORKER="1", FAKE_QUIET_AFTER="1")  # fmt: skip
    assert out.returncode == 0
    rd = RunDir(fws.runs / "alive")
    # no status write in flight (one frozen half-way would replace the damaged file later)
    wait_for(lambda: rd.log.is_file() and "quiet" in rd.log.read_text().split())
    assert read_run(rd.path).epoch == 1
    os.killpg(read_run(rd.path).pgid, signal.SIGSTOP)  # so that nobody rewrites status.json
    rd.status.write_text("{")
    res = amc(fws, "repair", "alive")
    assert res.returncode == 2 and "owned by a live trainer" in one_line(res.stderr)
    assert rd.status.read_text() == "{"
    pid = runlock.holder(rd.path)["pid"]
    stop = amc(fws, "stop", "alive", "--grace", "5")  # found through the lock's holder
    assert stop.returncode == 0 and f"pid {pid}" in stop.stdout, stop.stdout + stop.stderr
    assert not pid_alive(pid) and runlock.holder(rd.path) is None
    fixed = amc(fws, "repair", "alive")
    assert fixed.returncode == 0 and read_run(rd.path).state != "unknown", fixed.stderr
