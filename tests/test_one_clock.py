"""One elapsed and one ETA for a run, whoever shows it (issue 23, items 4 and 5).

A run directory written here, the issue's case: 8 epochs of 2 s, stopped in epoch 3 at batch
6 of 10, resumed; the resumed attempt's first epoch event times only its 4 batches (0.78 s).
Each attempt's trainer wrote its start event 5 s after the launcher stamped status.json's
started_at (imports, data load). At a fixed "now" (the app's clock, the CLI's time injected)
the Runs row, the Live header, `show`, `show --json` and, once the run has ended, its RUNLOG
entry give the same elapsed and the same ETA: the ETA of full epochs.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import types

import pytest
from textual.widgets import DataTable, Static
from tui_fixtures import (
    FUTURE,
    NOW,
    make_app,
    new_workspace,
    runs_loaded,
    screen_ready,
    wait_for,
)

from amc_tui import contract, report
from amc_tui.cli import listing, main
from amc_tui.run import events
from amc_tui.run.rundir import RunDir, attempt_started, read_run, read_status, write_status
from amc_tui.runlog.sync import render_entry
from amc_tui.train import preflight
from amc_tui.tui.screens.live import LiveScreen
from amc_tui.workspace import Workspace

pytestmark = pytest.mark.anyio

NAME = "two-tries-1"
FIRST = NOW - 4000.0  # the first attempt's launch
SECOND = NOW - 6.5  # the resume's launch
SETUP = 5.0  # launch -> the trainer's start event
# trained: 10.2 s by the first attempt (launch to its end), 6.5 s by the second so far
ELAPSED = 10.2 + 6.5
# 5 epochs left after epoch 3 at 2 s (epoch 2's time, not the partial 0.78 s), 0.72 s into
# epoch 4 (epoch 3's event was at SECOND + 5.78)
ETA = contract.eta_s(8, 3, 2.0, 0.72)


def _line(ev: dict) -> str:
    return json.dumps(ev, separators=(",", ":")) + "\n"


def _write_run(ws: Workspace) -> RunDir:
    rd = RunDir(ws.runs / NAME)
    rd.path.mkdir(parents=True)
    rd.checkpoints.mkdir()
    rd.config.write_text('[data]\npath = "data/fake.h5"\n\n[train]\nepochs = 8\n')
    rd.meta.write_text(json.dumps({"id": "tt000001", "name": NAME, "created_at": FIRST - 1,
                                   "arch": "resnet18", "epochs": 8}))  # fmt: skip
    spe = 10
    events = [
        {"t": FIRST + SETUP, "kind": "start", "resumed": False, "epoch": 0, "step": 0,
         "batch": 0, "steps_per_epoch": spe, "started_at": FIRST},
        {"t": FIRST + 7.0, "kind": "epoch", "epoch": 1, "epoch_time_s": 2.0,
         "samples_per_s": 160.0, "val": {"acc_combined": 0.3}, "train": {}},
        {"t": FIRST + 9.0, "kind": "epoch", "epoch": 2, "epoch_time_s": 2.0,
         "samples_per_s": 160.0, "val": {"acc_combined": 0.4}, "train": {}},
        {"t": FIRST + 10.2, "kind": "end", "state": "stopped", "exit_code": 0},
        {"t": SECOND + SETUP, "kind": "start", "resumed": True, "epoch": 2, "step": 26,
         "batch": 6, "steps_per_epoch": spe, "started_at": SECOND},
        {"t": SECOND + 5.78, "kind": "epoch", "epoch": 3, "epoch_time_s": 0.78,
         "samples_per_s": 160.0, "val": {"acc_combined": 0.45}, "train": {}},
    ]  # fmt: skip
    rd.events.write_text("".join(_line(ev) for ev in events))
    write_status(
        rd, state="running", pid=os.getpid(), pgid=None, host=socket.gethostname(),
        device="cpu", gpus=[], epoch=3, epochs=8, step=30, first_started_at=FIRST,
        started_at=SECOND, ended_at=None, heartbeat_at=FUTURE, exit_code=None, best=None,
    )  # fmt: skip
    return rd


def _end(rd: RunDir, at: float) -> None:
    with open(rd.events, "a") as f:
        f.write(_line({"t": at, "kind": "end", "state": "stopped", "exit_code": 0}))
    write_status(rd, state="stopped", pid=None, ended_at=at, heartbeat_at=at, exit_code=0)


def _show(ws: Workspace, monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    """`amc-tui show NAME [args]` in this process, its clock at NOW."""
    monkeypatch.setattr(listing, "time", types.SimpleNamespace(time=lambda: NOW))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--workspace", str(ws.root), "show", NAME, *args]) == 0
    return out.getvalue()


async def _app_texts(ws: Workspace) -> tuple[dict[str, str], str]:
    """The Runs row's elapsed and ETA cells and the Live header, at the app's clock (NOW)."""
    app = make_app(ws)
    async with app.run_test(size=(120, 40)) as pilot:
        runs = await runs_loaded(pilot)
        table = runs.query_one(DataTable)
        key = str(ws.runs / NAME)
        cells = {
            col: getattr(v, "plain", str(v)).strip()
            for col in ("elapsed", "eta")
            for v in [table.get_cell(key, col)]
        }
        app.open_live(ws.runs / NAME)
        live = await screen_ready(pilot, LiveScreen)
        head = live.query_one("#live-head", Static)
        await wait_for(pilot, lambda: f"{NAME}" in str(head.render()))
        return cells, str(head.render())


async def test_elapsed_and_eta_are_one_across_app_cli_and_runlog(tmp_path, monkeypatch) -> None:
    ws = new_workspace(tmp_path / "ws")
    rd = _write_run(ws)
    elapsed, eta = report.duration(ELAPSED), report.duration(ETA)
    assert (elapsed, eta) == ("16s", "9s")  # not 6s (from the start events), not 3s (0.78 s)
    info = read_run(rd.path)
    assert info.state == "running"
    assert info.elapsed_s(NOW) == pytest.approx(ELAPSED)
    assert info.eta_s(NOW) == pytest.approx(ETA)

    cells, head = await _app_texts(ws)
    assert cells == {"elapsed": elapsed, "eta": eta}
    assert f"elapsed {elapsed}" in head and f"ETA {eta}" in head, head

    run = json.loads(_show(ws, monkeypatch, "--json"))["run"]
    assert run["elapsed_s"] == pytest.approx(ELAPSED) and run["eta_s"] == pytest.approx(ETA)
    assert f"elapsed {elapsed}  ETA {eta}" in _show(ws, monkeypatch)

    # the run ends 3.5 s later: 20.2 s trained, the same everywhere, RUNLOG included
    _end(rd, NOW + 3.5)
    done = report.duration(ELAPSED + 3.5)
    assert done == "20s"
    cells, head = await _app_texts(ws)
    assert cells == {"elapsed": done, "eta": report.MISSING}
    assert f"elapsed {done}" in head and "ETA" not in head, head
    run = json.loads(_show(ws, monkeypatch, "--json"))["run"]
    assert run["elapsed_s"] == pytest.approx(ELAPSED + 3.5) and run["eta_s"] is None
    text = _show(ws, monkeypatch)
    assert f"elapsed {done}" in text and "ETA" not in text
    assert f"; elapsed {done}; epoch 3/8)" in render_entry(rd.path)


class Life:
    """One run's files as the launcher and the trainer write them, and its elapsed as read
    back at given times."""

    def __init__(self, tmp_path) -> None:  # noqa: ANN001
        self.rd = _write_run(new_workspace(tmp_path / "ws"))
        self.rd.events.write_text("")
        write_status(self.rd, state="queued", started_at=None, first_started_at=None, pid=None)
        self.seen: list[float | None] = []

    def at(self, now: float) -> None:
        self.seen.append(read_run(self.rd.path).elapsed_s(now))

    def launcher_stamps(self, now: float) -> None:  # as supervise.spawn, before the process
        first = {} if read_status(self.rd).get("first_started_at") else {"first_started_at": now}
        write_status(self.rd, state="running", pid=None, started_at=now, ended_at=None,
                     heartbeat_at=FUTURE, **first)  # fmt: skip

    def trainer_starts(self, now: float, resumed: bool) -> None:  # Trainer._main, then setup
        started = attempt_started(read_status(self.rd), now)
        write_status(self.rd, pid=os.getpid(), **started)
        with open(self.rd.events, "a") as f:
            f.write(_line({"t": now + SETUP, "kind": "start", "resumed": resumed,
                           "started_at": started["started_at"]}))  # fmt: skip

    def queued_to_resume(self, now: float) -> None:
        write_status(self.rd, state="queued", queued_at=now)


def test_elapsed_never_goes_back_over_a_runs_life(tmp_path) -> None:
    """Launch, the trainer taking over, stop, queued to resume, relaunch: the clock only moves
    forward (it showed 2 s, then 0 s when the trainer re-stamped started_at)."""
    life, s = Life(tmp_path), 1000.0
    life.at(s)
    life.launcher_stamps(s)
    life.at(s + 2)
    life.trainer_starts(s + 2.5, False)
    life.at(s + 3)
    life.at(s + 9)
    _end(life.rd, s + 20)
    life.at(s + 50)
    life.queued_to_resume(s + 100)
    life.at(s + 150)
    life.launcher_stamps(s + 200)
    life.at(s + 201)
    life.trainer_starts(s + 203, True)
    life.at(s + 204)
    life.at(s + 210)
    assert life.seen == [None, 2.0, 3.0, 9.0, 20.0, 20.0, 21.0, 24.0, 30.0]


def test_a_preflight_failure_counts_from_its_launch_and_stays_counted(tmp_path, monkeypatch):
    """A trainer that fails its preflight (bad data file) wrote started_at = ended_at = now:
    the 1.5 s shown since the launch dropped to 0 s."""
    life, s = Life(tmp_path), 1000.0
    life.launcher_stamps(s)
    life.at(s + 1)
    clock = types.SimpleNamespace(time=lambda: s + 1.5)  # its status and its end event's t
    monkeypatch.setattr(preflight, "time", clock)
    monkeypatch.setattr(events, "time", clock)
    assert preflight.fail(life.rd, "data file not found") == 2
    assert read_status(life.rd)["state"] == "failed"
    life.at(s + 50)
    life.queued_to_resume(s + 100)  # fixed the data file, resumed
    life.at(s + 150)
    life.launcher_stamps(s + 200)
    life.at(s + 201)
    life.trainer_starts(s + 202, True)
    life.at(s + 210)
    assert life.seen == [1.0, 1.5, 1.5, 2.5, 11.5]


def test_the_trainer_keeps_the_launchers_stamp_only_for_its_own_attempt() -> None:
    stamped = {"state": "running", "pid": None, "started_at": 100.0, "first_started_at": 50.0}
    assert attempt_started(stamped, 103.0) == {"started_at": 100.0}
    assert attempt_started({**stamped, "first_started_at": None}, 103.0) == {
        "started_at": 100.0, "first_started_at": 100.0}  # fmt: skip
    # a Slurm job's trainer (submitted), one started by hand, a dead trainer's record: now
    for status in ({**stamped, "state": "submitted"}, {**stamped, "pid": 4242}, {}):
        assert attempt_started(status, 103.0)["started_at"] == 103.0
    assert attempt_started({**stamped, "started_at": 200.0}, 103.0)["started_at"] == 103.0
