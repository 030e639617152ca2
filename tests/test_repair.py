"""`repair` rebuilds a damaged status.json from events.jsonl and the checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from runs_fixtures import make_fake_run, runs_workspace

from amc_tui.errors import UserError
from amc_tui.run.repair import repair
from amc_tui.run.rundir import read_events, read_run
from amc_tui.workspace import Workspace


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return runs_workspace(tmp_path)


def test_torn_status_is_rebuilt_and_kept(ws: Workspace) -> None:
    run = make_fake_run(ws, "a-b-1", state="completed", epochs=4)
    run.best_ckpt.write_bytes(b"fake")
    torn = run.status.read_text()[:40]
    run.status.write_text(torn)  # torn by a full disk
    assert read_run(run.path).state == "unknown"
    status = repair(run)
    assert (run.path / "status.json.bad").read_text() == torn  # nothing is lost
    info = read_run(run.path)
    assert info.state == "completed" and info.epoch == 4 and status["exit_code"] == 0
    epochs = [e for e in read_events(run.events) if e["kind"] == "epoch"]
    top = max(epochs, key=lambda e: e["val"]["acc_combined"])
    assert info.best == {"metric": "val.acc_combined", "value": top["val"]["acc_combined"],
                         "epoch": top["epoch"]}  # fmt: skip


def test_run_without_end_is_crashed_and_claims_no_missing_best(ws: Workspace) -> None:
    run = make_fake_run(ws, "a-b-2", state="crashed", epochs=4)
    run.status.unlink()
    assert read_run(run.path).state == "unknown"
    repair(run)
    info = read_run(run.path)
    assert info.state == "crashed" and info.epoch == 2 and info.best is None  # no best.pt
    assert "no end event" in (info.error or "")


def test_readable_status_is_left_alone(ws: Workspace) -> None:
    run = make_fake_run(ws, "a-b-3", state="stopped")
    with pytest.raises(UserError, match="nothing to repair"):
        repair(run)


def test_repair_keeps_the_one_clock_of_a_resumed_run(ws: Workspace) -> None:
    """started_at is the latest attempt's launch stamp (its start event's started_at), so a
    repaired run shows the elapsed time it showed before: attempts, not the gap between."""
    run = make_fake_run(ws, "a-b-4", state="completed", epochs=2)
    lines = [
        {"t": 1000.5, "kind": "start", "started_at": 1000.0, "resumed": False, "device": "cpu"},
        {"t": 1010.0, "kind": "end", "state": "stopped", "exit_code": 0},
        {"t": 2000.4, "kind": "start", "started_at": 2000.0, "resumed": True, "device": "cpu"},
        {"t": 2005.0, "kind": "end", "state": "completed", "exit_code": 0},
    ]
    run.events.write_text("".join(json.dumps(e) + "\n" for e in lines))
    status = json.loads(run.status.read_text())
    status.update(state="completed", started_at=2000.0, first_started_at=1000.0,
                  ended_at=2005.0, heartbeat_at=2005.0)  # fmt: skip
    run.status.write_text(json.dumps(status))
    before = read_run(run.path).elapsed_s()
    assert before == pytest.approx(15.0)  # 10 s, then 5 s
    run.status.write_text("{")
    repair(run)
    assert read_run(run.path).elapsed_s() == pytest.approx(before)
