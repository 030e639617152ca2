"""RUNLOG.md that cannot be written: `runlog sync` says so in one line (exit 1) and changes
nothing; a run's summary and `show` say the entry was not updated and why (status.json
`runlog_error`) instead of pointing at a RUNLOG.md that lacks it. The tests run as root, so
"cannot be written" is made with paths that are directories, not with file modes."""

from __future__ import annotations

import hashlib
import os
import signal
from pathlib import Path

import pytest
from runs_fixtures import amc, fake_trainer_workspace, kill_running, make_fake_run, wait_for

from amc_tui.run.rundir import read_run
from amc_tui.run.runlock import pid_alive
from amc_tui.runlog.sync import entry_offsets

CFG = "configs/fake.toml"


def snapshot(folder: Path) -> dict[str, tuple[bytes, int] | None]:
    out: dict[str, tuple[bytes, int] | None] = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        out[rel] = (
            (hashlib.sha1(p.read_bytes()).digest(), p.stat().st_mtime_ns) if p.is_file() else None
        )
    return out


@pytest.fixture
def rws(tmp_path, monkeypatch):
    ws = fake_trainer_workspace(tmp_path, monkeypatch, epoch_s=0.15, epochs=2, stop_grace_s=10.0)
    yield ws
    kill_running(ws)


@pytest.mark.parametrize("blocked", ["RUNLOG.md", ".RUNLOG.md.lock"])
def test_sync_that_cannot_write_says_why_in_one_line_and_changes_nothing(rws, blocked):
    make_fake_run(rws, "one-1", seed=1)
    make_fake_run(rws, "two-2", seed=2, state="stopped")
    if blocked != "RUNLOG.md":
        rws.runlog.write_text("# RUNLOG\n\nmy notes\n")
    (rws.root / blocked).mkdir()
    before = snapshot(rws.root)
    out = amc(rws, "runlog", "sync")
    assert out.returncode == 1 and out.stdout == ""
    line = out.stderr.strip()
    assert "\n" not in line and line.startswith(f"amc-tui: error: {rws.runlog} not updated: ")
    assert f"Is a directory: {rws.root / blocked}" in line
    assert snapshot(rws.root) == before


def test_a_run_whose_entry_could_not_be_written_says_so_until_sync_works(rws):
    rws.runlog.mkdir()  # RUNLOG.md cannot be replaced while it is a directory
    out = amc(rws, "run", CFG, "--name", "no-log")
    assert out.returncode == 0, out.stderr
    info = read_run(rws.runs / "no-log")
    assert info.state == "completed" and info.runlog_error == f"Is a directory: {rws.runlog}"
    summary = out.stdout.split("no-log (", 2)[-1]
    assert f"RUNLOG:        not updated (Is a directory: {rws.runlog})" in summary
    assert f"RUNLOG:        {rws.runlog}\n" not in summary
    assert "not updated (Is a directory" in amc(rws, "show", "no-log").stdout

    rws.runlog.rmdir()
    sync = amc(rws, "runlog", "sync")
    assert sync.returncode == 0 and "updated 1 entry" in sync.stdout
    assert list(entry_offsets(rws.runlog.read_text())) == [info.id]
    assert read_run(info.dir).runlog_error is None
    assert "RUNLOG" not in amc(rws, "show", "no-log").stdout


def test_an_end_the_launcher_records_keeps_why_the_entry_was_not_written(rws):
    out = amc(rws, "run", CFG, "-d", "--name", "gone", FAKE_HOLD_AFTER="1")  # till the kill
    assert out.returncode == 0
    wait_for(lambda: read_run(rws.runs / "gone").epoch >= 1)
    info = read_run(rws.runs / "gone")
    rws.runlog.unlink()
    rws.runlog.mkdir()
    os.killpg(info.pgid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(info.pid))
    assert amc(rws, "queue", "--once").returncode == 0  # records the crash, cannot log it
    done = read_run(info.dir)
    assert done.state == "crashed" and done.runlog_error == f"Is a directory: {rws.runlog}"
