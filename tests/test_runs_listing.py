"""RunInfo, read_run, list_runs and resolve_run over hand-made run directories."""

from __future__ import annotations

import json
import os

import pytest
from runs_fixtures import ROW_KEYS, make_fake_run, runs_workspace

from amc_tui.errors import UserError
from amc_tui.run.refs import resolve_run
from amc_tui.run.rundir import eta_events, list_runs, read_run
from amc_tui.workspace import Workspace


@pytest.fixture
def ws(tmp_path):
    return runs_workspace(tmp_path)


def test_read_run_completed(ws):
    run = make_fake_run(ws, "calm-sea-1", epochs=4, run_id="abcd1234", tags=["x"], phase="P1")
    info = read_run(run.path)
    assert (info.id, info.name, info.state, info.arch) == (
        "abcd1234",
        "calm-sea-1",
        "completed",
        "resnet18",
    )
    assert (info.epoch, info.epochs) == (4, 4)
    assert info.best and info.best["metric"] == "val.acc_combined"
    assert info.last_epoch["epoch"] == 4 and "val" in info.last_epoch
    assert info.tags == ["x"] and info.phase == "P1"
    row = info.to_row()
    for key in ROW_KEYS:
        assert key in row
    json.dumps(row)


def test_running_with_dead_pid_is_crashed(ws):
    run = make_fake_run(ws, "a-b-1", state="crashed")
    assert read_run(run.path).state == "crashed"
    alive = make_fake_run(ws, "a-b-2", state="running", pid=os.getpid())
    info = read_run(alive.path)
    assert info.state == "running" and info.eta_s() is not None


def _resumed_mid_epoch(ws, name: str, steps: int = 0):
    """A running run stopped in epoch 3 at batch 6 of 10 and resumed: its first epoch event
    after the resume times 4 batches (0.78 s). `steps`: step events after it."""
    run = make_fake_run(ws, name, state="running", epochs=8, epoch=2, pid=os.getpid(),
                        heartbeat_at=4_000_000_000.0)  # fmt: skip
    lines = [
        {"t": 4000.0, "kind": "end", "state": "stopped"},
        {
            "t": 5000.0,
            "kind": "start",
            "resumed": True,
            "epoch": 2,
            "step": 26,
            "batch": 6,
            "steps_per_epoch": 10,
        },
        {"t": 5000.78, "kind": "epoch", "epoch": 3, "epoch_time_s": 0.78, "val": {}},
    ] + [{"t": 5001.0 + i / 100, "kind": "step", "epoch": 4, "batch": 1} for i in range(steps)]
    with open(run.events, "a") as f:  # fmt: skip
        f.writelines(json.dumps(ev) + "\n" for ev in lines)
    return run


def test_eta_after_a_resume_skips_the_partial_epoch(ws):
    # make_fake_run's epochs take 60 s; epoch 3 after the resume is partial
    info = read_run(_resumed_mid_epoch(ws, "back-again-1").path)
    assert info.state == "running" and info.epoch == 3
    assert info.eta_s(5010.78) == pytest.approx(5 * 60.0 - 10.0)  # not 5 x 0.78 - 0.78
    assert info.to_row(5010.78)["eta_s"] == pytest.approx(290.0)  # `ls --json`, `show --json`


def test_eta_events_read_back_only_as_far_as_the_latest_full_epoch(ws):
    run = _resumed_mid_epoch(ws, "back-again-2", steps=2000)
    found = eta_events(run.events, block=4096)
    # epochs 1 and 2 (no start between them: epoch 2 is full), the resume's start and its
    # partial epoch 3: read back no further than that (not the first start)
    assert [(e["kind"], e.get("epoch")) for e in found] == [
        ("epoch", 1), ("epoch", 2), ("start", 2), ("epoch", 3)]  # fmt: skip
    assert eta_events(ws.runs / "nowhere.jsonl") == []


def test_stale_heartbeat_is_crashed(ws):
    run = make_fake_run(ws, "a-b-3", state="running", pid=os.getpid(), heartbeat_at=1.0)
    assert read_run(run.path).state == "crashed"


def test_read_run_never_raises_on_garbage(ws):
    d = ws.runs / "broken-run-1"
    d.mkdir()
    (d / "status.json").write_text("{not json")
    (d / "meta.json").write_text("[1, 2]")
    (d / "events.jsonl").write_bytes(b'\x00\xff{"kind": "epoch", "epo')
    (d / "config.toml").write_text("= nope")
    info = read_run(d)
    assert info.name == "broken-run-1" and info.last_epoch is None
    assert info.state == "unknown" and "status.json is not valid JSON" in (info.error or "")


def test_last_epoch_skips_torn_line_and_unknown_kinds(ws):
    run = make_fake_run(ws, "a-b-4", epochs=3)
    with open(run.events, "a") as f:
        f.write('{"t": 1, "kind": "mystery", "x": 1}\n{"t": 2, "kind": "epoch", "epoch": 9')
    assert read_run(run.path).last_epoch["epoch"] == 3


def test_list_runs_newest_first_and_state_filter(ws):
    make_fake_run(ws, "old-run-1", created_at=100.0)
    make_fake_run(ws, "new-run-2", created_at=200.0, state="failed")
    make_fake_run(ws, "mid-run-3", created_at=150.0, state="stopped")
    (ws.runs / ".amc-tui").mkdir()
    assert [r.name for r in list_runs(ws)] == ["new-run-2", "mid-run-3", "old-run-1"]
    assert [r.name for r in list_runs(ws, state="failed")] == ["new-run-2"]
    assert list_runs(Workspace(ws.root / "nowhere")) == []


def test_resolve_by_name_id_and_prefix(ws):
    make_fake_run(ws, "calm-sea-1", run_id="aaaa1111")
    make_fake_run(ws, "calm-sky-2", run_id="aaab2222")
    make_fake_run(ws, "bold-fog-3", run_id="zzzz3333")
    assert resolve_run(ws, "calm-sea-1").id == "aaaa1111"
    assert resolve_run(ws, "zzzz3333").name == "bold-fog-3"
    assert resolve_run(ws, "bold").name == "bold-fog-3"
    assert resolve_run(ws, "aaab").name == "calm-sky-2"
    with pytest.raises(UserError, match="ambiguous: .*calm-s.*calm-s"):
        resolve_run(ws, "calm-s")
    with pytest.raises(UserError, match="ambiguous"):
        resolve_run(ws, "aaa")
    with pytest.raises(UserError, match="no run matches 'nope'; runs: .*bold-fog-3"):
        resolve_run(ws, "nope")
    with pytest.raises(UserError):
        resolve_run(ws, "../calm-sea-1")


def test_run_cache_rereads_only_changed_runs(ws):
    import subprocess
    import sys

    from amc_tui.run.rundir import RunCache, RunDir, write_status

    make_fake_run(ws, "c-a-1", created_at=1.0)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    live = make_fake_run(ws, "c-b-2", created_at=2.0, state="running", pid=proc.pid)
    cache = RunCache()
    assert [r.state for r in list_runs(ws, cache=cache)] == ["running", "completed"]
    write_status(RunDir(ws.runs / "c-a-1"), state="failed")
    assert [r.state for r in list_runs(ws, cache=cache)] == ["running", "failed"]
    proc.kill()
    proc.wait()
    # status.json unchanged, but the trainer is gone: the cached run is re-derived
    assert [r.state for r in list_runs(ws, cache=cache)] == ["crashed", "failed"]
    first = list_runs(ws, cache=cache)[0]
    first.name = "mutated"
    assert list_runs(ws, cache=cache)[0].name == "c-b-2"  # copies by default
    import shutil

    shutil.rmtree(live.path)
    assert [r.name for r in list_runs(ws, cache=cache)] == ["c-a-1"]
