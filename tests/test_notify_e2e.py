"""Notifications end to end: the real trainer, started by the detached queue worker for a
followed `amc-tui run`, with the app open on the same workspace. Four processes can see each
event (the trainer, the worker, the followed `run`, the app); a real local HTTP server gets
each message once, through apprise's `json://`, and a URL nobody listens on is recorded as
failed while the run completes. The health event is appended while the trainer waits paused
(the contract of docs/ARCHITECTURE.md section 5), so this test does not depend on the
trainer's health rules; the last test uses them once they exist (`[health]`)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from notify_fixtures import closed_port, hook_server, write_settings
from runs_fixtures import amc, kill_running, wait_for
from train_fixtures import (
    launch_paused_trainers,
    log_text,
    pid_running,
    release,
    write_tiny_workspace,
)
from tui_fixtures import make_app
from tui_fixtures import wait_for as wait_app

from amc_tui.fsutil import append_line
from amc_tui.launch.keeper import worker_alive
from amc_tui.notify import ledger
from amc_tui.run.rundir import RunDir, read_run

EPOCHS = 2
PAUSE = 1  # after the first step: 2 steps an epoch
HEALTH = {"kind": "health", "rule": "learned-nothing", "active": True, "epoch": 1, "step": 1,
          "message": "learned nothing: val modulation 33.3 % vs chance 33.3 % (p = 0.52) after 1 epoch",
          "values": {"p": 0.52}, "action": None}  # fmt: skip


@pytest.fixture
def ws(tmp_path, monkeypatch):
    launch_paused_trainers(monkeypatch, f"*:{PAUSE}")
    ws = write_tiny_workspace(tmp_path / "ws", "tiny.toml", epochs=EPOCHS, stop_grace_s=20.0)
    yield ws
    kill_running(ws)


@pytest.mark.anyio
async def test_each_event_once_with_app_worker_followed_run_and_trainer_alive(ws) -> None:
    dead = closed_port()
    with hook_server() as hook:
        write_settings(ws.root, [hook.url(), f"json://127.0.0.1:{dead}/gone"])
        app = make_app(ws, alerts_poll_s=0.2, runs_poll_s=60.0)
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_app(pilot, lambda: app._alerts is not None)  # the app's session began
            follow = subprocess.Popen(
                [sys.executable, "-m", "amc_tui.cli", "run", "configs/tiny.toml", "--name", "wise-owl-1"],
                cwd=ws.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
            run = RunDir(ws.runs / "wise-owl-1")
            try:
                await wait_app(
                    pilot, lambda: f"paused at step {PAUSE}" in log_text(run), timeout=240
                )
                assert worker_alive(ws) and follow.poll() is None  # everyone is watching
                append_line(run.events, json.dumps({"t": time.time(), **HEALTH}))
                await wait_app(pilot, lambda: hook.titled("learned-nothing"), timeout=30)
                release(run)
                await wait_app(pilot, lambda: follow.poll() is not None, timeout=240)
                await wait_app(pilot, lambda: not worker_alive(ws), timeout=60)
                # and the trainer, which may be the one sending the end (it waits for that)
                await wait_app(pilot, lambda: not pid_running(read_run(run.path).pid), timeout=60)
                # the app saw it too: its toast for a run its session watched
                await wait_app(pilot, lambda: any("completed" in n.title for n in app._notifications),
                               timeout=30)  # fmt: skip
            finally:
                if follow.poll() is None:
                    follow.kill()
                out = follow.communicate()[0]
        bodies = hook.got()
    info = read_run(run.path)
    assert follow.returncode == 0, out
    assert info.state == "completed" and info.epoch == EPOCHS
    assert sorted(b["title"] for b in bodies) == [
        "amc-tui: wise-owl-1 completed", "amc-tui: wise-owl-1 learned-nothing"]  # fmt: skip
    by = {b["title"].rsplit(" ", 1)[1]: b for b in bodies}
    assert by["completed"]["message"].startswith(f"wise-owl-1 ({info.id}) on ")
    assert f"epoch {EPOCHS}/{EPOCHS}, best val.acc_combined" in by["completed"]["message"]
    assert "learned-nothing at epoch 1/2" in by["learned-nothing"]["message"]
    assert HEALTH["message"] in by["learned-nothing"]["message"]
    recs = {r["key"]: r for r in ledger.records(ledger.ledger_dir(ws))}
    assert sorted(recs) == [f"{info.id}.end.1", f"{info.id}.health.learned-nothing.e1"]
    for rec in recs.values():  # the dead URL failed, the live one took it
        assert rec["state"] == "failed"
        assert [a["ok"] for a in rec["answers"]] == [True, False]
        assert "Connection" in rec["answers"][1]["error"] and f":{dead}/gone" in rec["error"]
    toasts = [n.title for n in app._notifications]
    assert toasts == ["wise-owl-1 learned-nothing", "wise-owl-1 completed"]


def test_the_trainer_alone_sends_its_own_end(tmp_path, monkeypatch) -> None:
    """As under Slurm: no worker, and the command that started the trainer is gone."""
    monkeypatch.setenv("AMC_TUI_NO_WORKER", "1")
    ws = write_tiny_workspace(tmp_path / "ws", "tiny.toml", epochs=1, stop_grace_s=20.0)
    try:
        with hook_server() as hook:
            write_settings(ws.root, [hook.url()])
            started = amc(ws, "run", "configs/tiny.toml", "--name", "lone-wolf-1", "--detach")
            assert started.returncode == 0, started.stderr
            run = ws.runs / "lone-wolf-1"
            pid = wait_for(lambda: read_run(run).pid, timeout=60)
            wait_for(lambda: not pid_running(pid), timeout=120)
            bodies = hook.got()
    finally:
        kill_running(ws)
    info = read_run(run)
    assert info.state == "completed"
    assert [b["title"] for b in bodies] == ["amc-tui: lone-wolf-1 completed"]
    (rec,) = ledger.records(ledger.ledger_dir(ws))
    assert rec["state"] == "sent" and rec["by"]["pid"] == pid  # the trainer sent it


def test_a_run_that_learns_nothing_is_stopped_and_told_once(tmp_path) -> None:
    ws = write_tiny_workspace(tmp_path / "ws", "tiny.toml", epochs=4, stop_grace_s=20.0)
    try:
        with hook_server() as hook:
            write_settings(ws.root, [hook.url()])
            done = amc(ws, "run", "configs/tiny.toml", "--name", "dull-newt-1",
                       "--set", "train.lr=1e-9", "--set", "health.min_epochs=1",
                       "--set", 'run.stop_on=["learned-nothing"]')  # fmt: skip
            wait_for(lambda: not worker_alive(ws), timeout=60)
            wait_for(lambda: not pid_running(read_run(ws.runs / "dull-newt-1").pid), timeout=60)
            bodies = hook.got()
    finally:
        kill_running(ws)
    assert done.returncode == 0, done.stdout + done.stderr
    titles = sorted(b["title"] for b in bodies)
    assert titles == ["amc-tui: dull-newt-1 learned-nothing", "amc-tui: dull-newt-1 stopped"]
    stopped = next(b for b in bodies if b["title"].endswith("stopped"))
    assert "reason: health: learned-nothing" in stopped["message"]
