"""The run index (amc_tui/run/index.py): a cache that can never show a stale state, survives
being deleted or damaged, and is safe with several processes listing while a trainer writes.

Runs are real run directories (tests/runs_fixtures.make_fake_run) or a real trainer
(tests/train_fixtures); `ls` runs as a separate process where the user would run it. Files
are dated into the past (os.utime) where a test needs the index to trust its rows: a file
younger than index.RACY_S is always re-read.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from runs_fixtures import age, aged_workspace, amc, make_fake_run, runs_workspace
from train_fixtures import REPO, kill_group, make_data, make_run, start_trainer

from amc_tui.fsutil import atomic_write_json
from amc_tui.run import index
from amc_tui.run.rundir import STATES, RunDir, append_event, read_status
from amc_tui.workspace import Workspace


def ls_json(ws: Workspace) -> tuple[dict[str, dict[str, Any]], str]:
    """`amc-tui ls --json` as a separate process: {name: row}, stderr."""
    out = amc(ws, "ls", "--json")
    assert out.returncode == 0, out.stderr
    return {row["name"]: row for row in json.loads(out.stdout)}, out.stderr


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.setenv("AMC_TUI_NO_WORKER", "1")
    return aged_workspace(tmp_path, 3)


def test_unchanged_runs_are_not_read_again(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    first = index.list_runs(ws)
    assert index.index_path(ws).is_file()
    reads: list[str] = []
    real = index.read_parts
    monkeypatch.setattr(index, "read_parts", lambda base: reads.append(base) or real(base))
    again = index.list_runs(ws)
    assert reads == []  # every row came from the index
    assert [r.to_row(1.0) for r in again] == [r.to_row(1.0) for r in first]
    append_event(RunDir(ws.runs / "run-1"), "note")  # one run changed: only it is read
    index.list_runs(ws)
    assert reads == [str(ws.runs / "run-1")]


def test_status_changed_behind_the_index_is_listed_as_it_now_is(ws: Workspace) -> None:
    rows, _ = ls_json(ws)
    assert rows["run-0"]["state"] == "completed" and rows["run-0"]["epoch"] == 4
    run0, run1 = RunDir(ws.runs / "run-0"), RunDir(ws.runs / "run-1")
    # run-0: status.json edited in place (no rename: the folder's mtime does not change)
    status = read_status(run0)
    status.update(state="failed", epoch=6, best={"metric": "val.acc_combined", "value": 0.125,
                                                 "epoch": 1}, error="edited by hand")  # fmt: skip
    run0.status.write_text(json.dumps(status))
    age(run0, 300)  # and long enough ago that its stamp would be trusted
    # run-1: replaced atomically, as the launcher does, with a stamp older than the row's
    atomic_write_json(run1.status, {**read_status(run1), "state": "stopped", "epoch": 5})
    age(run1, 900)
    # run-2: a new epoch event appended (an append changes neither the folder nor status)
    run2 = RunDir(ws.runs / "run-2")
    append_event(run2, "epoch", epoch=5, val={"acc_combined": 0.875})
    age(run2, 300)
    rows, err = ls_json(ws)
    assert err == ""
    assert (rows["run-0"]["state"], rows["run-0"]["epoch"], rows["run-0"]["best"]["value"]) == (
        "failed", 6, 0.125,
    )  # fmt: skip
    assert (rows["run-1"]["state"], rows["run-1"]["epoch"]) == ("stopped", 5)
    assert (rows["run-2"]["epoch"], rows["run-2"]["val"]["acc_combined"]) == (5, 0.875)
    listing = amc(ws, "ls", "--state", "failed").stdout
    assert "run-0" in listing and "run-1" not in listing


def test_a_run_that_appears_or_goes_is_listed_so(ws: Workspace) -> None:
    ls_json(ws)
    age(make_fake_run(ws, "run-new", state="queued", epochs=4, exports=False))
    shutil.rmtree(ws.runs / "run-0")
    (ws.runs / "run-1" / "config.toml").unlink()  # no longer a run: a foreign folder
    rows, _ = ls_json(ws)
    assert sorted(rows) == ["run-2", "run-new"]
    assert rows["run-new"]["state"] == "queued"
    with sqlite3.connect(index.index_path(ws)) as db:
        paths = sorted(Path(p).name for (p,) in db.execute("SELECT path FROM runs"))
    assert paths == ["run-2", "run-new"]  # the rows of what is gone removed


def test_a_deleted_index_is_built_again(ws: Workspace) -> None:
    before, _ = ls_json(ws)
    for p in index.index_path(ws).parent.glob("index.sqlite*"):
        p.unlink()
    after, err = ls_json(ws)
    assert after == before and err == ""
    assert index.index_path(ws).is_file()


@pytest.mark.parametrize("damage", ["garbage", "torn"])
def test_a_corrupt_index_is_rebuilt_with_one_line(ws: Workspace, damage: str) -> None:
    before, _ = ls_json(ws)
    path = index.index_path(ws)
    with sqlite3.connect(path) as db:  # everything in the main file, no WAL beside it
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    if damage == "garbage":
        path.write_bytes(b"this is not a database\n" * 100)
    else:  # the header survives, the pages after it are overwritten
        data = bytearray(path.read_bytes())
        data[100:] = b"\xff" * (len(data) - 100)
        path.write_bytes(bytes(data))
    after, err = ls_json(ws)
    assert after == before
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"amc-tui: the run index {path} was damaged")
    assert "rebuilt from the run directories" in lines[0]
    again, err = ls_json(ws)  # rebuilt: nothing more to say
    assert again == before and err == ""
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM runs").fetchone()[0] == 3


def test_an_index_of_another_schema_is_rebuilt(ws: Workspace) -> None:
    ls_json(ws)
    with sqlite3.connect(index.index_path(ws)) as db:
        db.execute("UPDATE runs SET core = x'00'")  # rows a newer amc-tui could not read
        db.execute("PRAGMA user_version = 1")
    rows, err = ls_json(ws)
    assert err == "" and sorted(rows) == ["run-0", "run-1", "run-2"]
    with sqlite3.connect(index.index_path(ws)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == index.SCHEMA


def test_an_unusable_index_falls_back_to_reading_the_runs(
    ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    path = index.index_path(ws)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.mkdir()  # a folder where the file should be: SQLite cannot open it
    runs = index.list_runs(ws)
    assert [r.name for r in runs] == ["run-2", "run-1", "run-0"]
    index.list_runs(ws)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "listing reads every run directory" in err[0], err


LISTER = """
import json, sys, time
from pathlib import Path
from amc_tui.run import index
from amc_tui.workspace import Workspace
ws, out, name = Workspace(Path(sys.argv[1])), open(sys.argv[2], "w"), sys.argv[3]
while True:
    rows = {r.name: r.to_row() for r in index.list_runs(ws)}
    others = all(r["state"] == "completed" and r["epoch"] == 4 for n, r in rows.items() if n != name)
    out.write(json.dumps({"n": len(rows), "others": others, "live": rows[name]}) + "\\n")
    if rows[name]["state"] in ("completed", "failed", "crashed", "stopped"):
        break
"""


def test_two_processes_listing_while_a_trainer_writes_never_see_a_torn_row(
    tmp_path: Path,
) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    ws = runs_workspace(root)
    for i in range(150):  # rows for both listers to read and write at once
        age(make_fake_run(ws, f"old-{i}", state="completed", epochs=4, seed=i, exports=False))
    data = make_data(root / "data" / "tiny.h5")
    run = make_run(root, "live", data, epochs=3)
    (run.path / "status.json").write_text(json.dumps({"state": "queued", "epochs": 3}))
    env = {**os.environ, "PYTHONPATH": str(REPO), "AMC_TUI_NO_WORKER": "1"}
    outs = [tmp_path / f"lister-{k}.jsonl" for k in range(2)]
    listers = [
        subprocess.Popen(
            [sys.executable, "-c", LISTER, str(root), str(o), "live"],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for o in outs
    ]
    trainer = start_trainer(run)
    try:
        assert trainer.wait(timeout=240) == 0
        for p in listers:
            _, err = p.communicate(timeout=120)
            assert p.returncode == 0 and err == "", err
    finally:
        kill_group(trainer.pid)
        for p in listers:
            p.kill()
    final = read_status(run)
    for out in outs:
        listings = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(listings) >= 3
        epochs = []
        for rows in listings:
            assert rows["n"] == 151 and rows["others"]
            live = rows["live"]
            assert live["state"] in STATES and live["state"] != "unknown"
            assert 0 <= live["epoch"] <= 3 == live["epochs"]
            if live["best"] is not None:
                assert 1 <= live["best"]["epoch"] <= live["epoch"]
            if live["val"] is not None:  # the last epoch event, whole
                assert set(live["val"]) >= {"acc_mod", "acc_snr", "acc_combined"}
            epochs.append(live["epoch"])
        assert epochs == sorted(epochs)  # never back to an older status
        last = listings[-1]["live"]
        assert (last["state"], last["epoch"], last["best"]) == ("completed", 3, final["best"])


def memos(ws: Workspace) -> dict[str, bool]:
    """{run name: whether its index row holds a memo (the `ls` line of a settled run)}."""
    with sqlite3.connect(index.index_path(ws)) as db:
        return {Path(p).name: m is not None for p, m in db.execute("SELECT path, memo FROM runs")}


def test_ls_keeps_settled_lines_and_lists_a_changed_status_as_it_now_is(ws: Workspace) -> None:
    age(make_fake_run(ws, "run-live", state="running", epochs=4, pid=999_999_999, exports=False))
    age(make_fake_run(ws, "run-crashed", state="crashed", epochs=4, exports=False))
    age(make_fake_run(ws, "run-queued", state="queued", epochs=4, exports=False))
    first = amc(ws, "ls")
    assert first.returncode == 0, first.stderr
    # settled runs keep their line; live, crashed and queued runs never do
    assert memos(ws) == {"run-0": True, "run-1": True, "run-2": True, "run-live": False,
                         "run-crashed": False, "run-queued": False}  # fmt: skip
    again = amc(ws, "ls")
    assert again.stdout == first.stdout and again.stderr == ""
    assert "run-live" in again.stdout and "crashed" in again.stdout  # the dead pid: derived now
    items = index.list_memos(ws, 1, lambda info: None)  # another tag: none is used
    assert all(info is not None for info, _ in items) and len(items) == 6
    # every line from the index (no RunInfo built) reads as the lines made from the files
    for p in index.index_path(ws).parent.glob("index.sqlite*"):
        p.unlink()
    rebuilt = amc(ws, "ls")
    assert rebuilt.stdout == first.stdout
    kept = amc(ws, "ls")
    assert kept.stdout == first.stdout and memos(ws)["run-0"]
    # status.json edited in place behind the index's back, dated into the past
    run0 = RunDir(ws.runs / "run-0")
    status = read_status(run0)
    status.update(state="failed", epoch=2, best={"metric": "val.acc_combined", "value": 0.125,
                                                 "epoch": 1}, error="edited by hand")  # fmt: skip
    run0.status.write_text(json.dumps(status))
    age(run0, 300)
    line = next(x for x in amc(ws, "ls").stdout.splitlines() if x.startswith("run-0 "))
    assert " failed " in line and "12.50% @1" in line  # epoch: the last epoch event's
    assert "run-0" in amc(ws, "ls", "--state", "failed").stdout
    assert "run-0" not in amc(ws, "ls", "--state", "completed").stdout


def test_list_memos_answers_settled_runs_without_reading_them(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[str] = []
    first = index.list_memos(ws, 7, lambda info: made.append(info.name) or [info.name, "x"])
    assert sorted(made) == ["run-0", "run-1", "run-2"]
    assert all(info is not None for info, _ in first)  # read this time, memos made
    reads: list[str] = []
    real = index.read_parts
    monkeypatch.setattr(index, "read_parts", lambda base: reads.append(base) or real(base))
    again = index.list_memos(ws, 7, lambda info: made.append(info.name))
    assert reads == [] and len(made) == 3
    assert sorted(memo for _, memo in again) == [["run-0", "x"], ["run-1", "x"], ["run-2", "x"]]
    append_event(RunDir(ws.runs / "run-1"), "note")  # changed: read again, memo made again
    third = index.list_memos(ws, 7, lambda info: [info.name, "y"])
    assert reads == [str(ws.runs / "run-1")]
    assert sorted(info.name for info, _ in third if info is not None) == ["run-1"]
