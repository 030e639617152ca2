"""Polling every run each second at a cost that does not grow with history (run/poll.py):
the runs folder listed again only when it changed, ended runs checked in turn, live runs
every poll, the first poll from the run index. Real run directories
(tests/runs_fixtures.make_fake_run), dated into the past where a stamp must be trusted."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from runs_fixtures import age, aged_workspace, make_fake_run, runs_workspace

from amc_tui.fsutil import atomic_write_json
from amc_tui.run import index
from amc_tui.run.poll import RunFolders, RunPoll, Turns
from amc_tui.run.rundir import RunDir, list_runs, read_status
from amc_tui.workspace import Workspace


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.setenv("AMC_TUI_NO_WORKER", "1")
    ws = aged_workspace(tmp_path, 5)
    age(ws.runs)
    return ws


def names(paths: list[Path]) -> list[str]:
    return sorted(p.name for p in paths)


def test_folders_follow_runs_made_removed_and_finished_being_made(
    ws: Workspace, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folders = RunFolders(ws)
    assert names(folders.list()) == [f"run-{i}" for i in range(5)]
    shutil.rmtree(ws.runs / "run-0")
    make_fake_run(ws, "run-new", exports=False)
    assert names(folders.list()) == ["run-1", "run-2", "run-3", "run-4", "run-new"]
    # a folder made before its files (as the launcher does), while the runs folder's stamp
    # is old enough to be trusted: writing into it does not change the runs folder's stamp
    (ws.runs / "half-made").mkdir()
    age(ws.runs)
    assert "half-made" not in names(folders.list())
    stamp = os.stat(ws.runs).st_mtime_ns
    elsewhere = runs_workspace(tmp_path_factory.mktemp("elsewhere"))
    made = make_fake_run(elsewhere, "half-made", exports=False).path
    for f in ("config.toml", "meta.json", "status.json"):
        shutil.copy(made / f, ws.runs / "half-made" / f)
    assert os.stat(ws.runs).st_mtime_ns == stamp  # the listing could not have seen it
    assert "half-made" in names(folders.list())
    assert names(folders.list()) == sorted(p.name for p in list_runs_dirs(ws))


def list_runs_dirs(ws: Workspace) -> list[Path]:
    return [r.dir for r in list_runs(ws)]


def test_a_young_runs_folder_is_listed_again(ws: Workspace) -> None:
    """A change in the same clock tick as the listing keeps the stamp: a stamp younger than
    RECENT_S is never trusted."""
    folders = RunFolders(ws)
    folders.list()
    make_fake_run(ws, "late", exports=False)
    assert time.time() - os.stat(ws.runs).st_mtime_ns / 1e9 < RunFolders.RECENT_S
    assert "late" in names(folders.list())


def test_turns_check_every_run_once_a_round_whatever_the_listing_does() -> None:
    """A run's turn is a hash of its folder, not its place in the listing: runs made or
    deleted meanwhile never push another run's turn back."""
    turns = Turns(per_poll=4)
    keys = [f"/ws/runs/run-{i}" for i in range(10)]
    checked: dict[str, int] = {}
    for _ in range(3):  # 10 runs, 4 a poll: a round is 3 polls
        turn = turns.start(len(keys))
        for k in keys:
            checked[k] = checked.get(k, 0) + turns.due(k, turn)
    assert checked == dict.fromkeys(keys, 1)
    survivors = keys[::2]  # half deleted (the listing shrinks and shifts) and new ones made
    listing = [*reversed(survivors), *[f"/ws/runs/new-{i}" for i in range(4)]]
    seen = set()
    for _ in range(3):  # still 3 polls a round (9 runs)
        turn = turns.start(len(listing))
        seen |= {k for k in listing if turns.due(k, turn)}
    assert seen == set(listing)
    never = Turns(per_poll=0)
    assert not any(never.due(k, never.start(len(keys))) for k in keys)


def edit_status(run: Path, **changes: object) -> None:
    status = read_status(RunDir(run))
    status.update(changes)
    atomic_write_json(run / "status.json", status)


def test_poll_starts_from_the_index_and_sees_ended_runs_change_in_turn(ws: Workspace) -> None:
    index.list_runs(ws)  # the index made, as by an earlier `ls`
    poll = RunPoll(ws, Turns(per_poll=2))
    polled = poll.runs()
    direct_list = list_runs(ws, with_last_epoch=False)
    assert [r.name for r in polled] == [r.name for r in direct_list]  # newest first, too
    first = {r.name: r for r in polled}
    direct = {r.name: r for r in direct_list}
    assert {n: (r.state, r.epoch, r.best) for n, r in first.items()} == {
        n: (r.state, r.epoch, r.best) for n, r in direct.items()
    }
    edit_status(ws.runs / "run-3", state="stopped")  # behind everyone's back
    polls = 0
    while first["run-3"].state != "stopped":
        polls += 1
        assert polls <= 3, "an ended run was not checked within a round of turns"
        first = {r.name: r for r in poll.runs()}
    assert first["run-3"].stored_state == "stopped"


def test_live_runs_are_checked_every_poll(ws: Workspace) -> None:
    live = make_fake_run(ws, "live", state="running", pid=os.getpid(), heartbeat_at=time.time(),
                         exports=False)  # fmt: skip
    poll = RunPoll(ws, Turns(per_poll=1))
    assert {r.name: r.state for r in poll.runs()}["live"] == "running"
    for epoch in (2, 3):
        status = json.loads((live.path / "status.json").read_text())
        status.update(epoch=epoch, heartbeat_at=time.time())
        atomic_write_json(live.path / "status.json", status)
        assert {r.name: r.epoch for r in poll.runs()}["live"] == epoch
