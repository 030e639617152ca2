"""Launcher with real subprocesses (a stand-in trainer with the real file contract):
create, spawn, queue, detached worker, stop, crash, resume, restart, bad names."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runs_fixtures import fake_trainer_workspace, kill_running, wait_for

from amc_tui.errors import UserError
from amc_tui.launch.create import create_run
from amc_tui.launch.keeper import worker_alive
from amc_tui.launch.queue import launch, resume_run, work_queue
from amc_tui.launch.stop import stop_run
from amc_tui.launch.supervise import reap, run_info
from amc_tui.run.rundir import RunDir, read_events, read_run, read_status
from amc_tui.run.runlock import pid_alive
from amc_tui.runlog.sync import entry_offsets
from amc_tui.workspace import Workspace


@pytest.fixture
def lws(tmp_path, monkeypatch):
    ws = fake_trainer_workspace(tmp_path, monkeypatch, epoch_s=0.3, epochs=3, stop_grace_s=5.0)
    yield ws
    kill_running(ws)  # no strays


def finished(ws, info):
    return lambda: read_run(info.dir).state in ("completed", "failed", "stopped", "crashed")


def test_create_run_layout_and_counter(lws):
    a = create_run(lws, "configs/fake.toml", ["train.lr=0.01"])
    b = create_run(lws, "configs/fake.toml", name="my-run")
    assert a.state == "queued" and a.name.endswith("-1") and len(a.id) == 8
    rd = RunDir(a.dir)
    assert (
        "lr = 0.01" in rd.config.read_text()
        and str(lws.root / "data/fake.h5") in rd.config.read_text()
    )
    meta = __import__("json").loads(rd.meta.read_text())
    assert meta["workspace"] == str(lws.root) and meta["arch"] == "swin_tiny" and meta["cells"]
    assert b.name == "my-run" and (lws.state_dir / "counter").read_text().strip() == "2"
    with pytest.raises(UserError, match="already exists"):
        create_run(lws, "configs/fake.toml", name="my-run")
    leftovers = [p for p in lws.state_dir.iterdir() if p.name.startswith("new-")]
    assert leftovers == []


@pytest.mark.parametrize("bad", ["a/b", "..", "x..y", "tab\there", "nl\nx", "x" * 65, "\x1b[31m"])
def test_bad_names_create_nothing(lws, bad):
    before = sorted(p.name for p in lws.runs.iterdir())
    with pytest.raises(UserError):
        create_run(lws, "configs/fake.toml", name=bad)
    assert sorted(p.name for p in lws.runs.iterdir()) == before


def test_missing_data_and_bad_config_create_nothing(lws):
    with pytest.raises(UserError, match="data synth"):
        create_run(lws, "configs/fake.toml", ["data.path=data/none.h5"])
    with pytest.raises(UserError, match="unknown key"):
        create_run(lws, "configs/fake.toml", ["train.lr_rate=1"])
    assert [p.name for p in lws.runs.iterdir() if not p.name.startswith(".")] == []


def _make_runs(root: str, n: int) -> list[str]:
    return [create_run(Workspace(Path(root)), "configs/fake.toml").name for _ in range(n)]


def test_counter_is_distinct_across_processes(lws):
    ctx = mp.get_context("fork")
    with ctx.Pool(3) as pool:
        names = sum(pool.starmap(_make_runs, [(str(lws.root), 6)] * 3), [])
    numbers = sorted(int(n.rsplit("-", 1)[1]) for n in names)
    assert numbers == list(range(1, 19))


def test_launch_runs_to_completion_in_own_session(lws):
    info = launch(lws, "configs/fake.toml")
    assert info.state == "running" and info.pid
    assert os.getpgid(info.pid) == info.pid != os.getpgid(0)
    assert os.getsid(info.pid) == info.pid
    wait_for(finished(lws, info))
    done = read_run(info.dir)
    assert done.state == "completed" and done.epoch == 3 and done.best
    assert "starting trainer" in RunDir(info.dir).log.read_text()
    wait_for(lambda: "**COMPLETED**" in lws.runlog.read_text(), timeout=10)
    assert list(entry_offsets(lws.runlog.read_text())) == [info.id]
    # reaped by our waiter thread: no zombie left behind
    wait_for(lambda: not Path(f"/proc/{info.pid}").exists(), timeout=10)


def test_cpu_runs_one_at_a_time_unless_shared(lws):
    a = launch(lws, "configs/fake.toml", detach=False)
    b = launch(lws, "configs/fake.toml", detach=False)
    c = launch(lws, "configs/fake.toml", ["run.share_device=true"], detach=False)
    assert (a.state, b.state, c.state) == ("running", "queued", "running")
    assert work_queue(lws) == []  # a still busy: b waits
    wait_for(finished(lws, a))
    started = wait_for(lambda: work_queue(lws))
    assert [s.name for s in started] == [b.name]
    wait_for(finished(lws, b))
    assert read_run(b.dir).state == "completed"


def test_detached_worker_starts_queued_runs_with_no_launcher_alive(lws, monkeypatch):
    monkeypatch.delenv("AMC_TUI_NO_WORKER")
    monkeypatch.setenv("FAKE_EPOCH_S", "0.2")
    a = launch(lws, "configs/fake.toml")
    b = launch(lws, "configs/fake.toml")
    assert b.state == "queued"
    # nobody in this process works the queue any more: the worker must start b
    wait_for(finished(lws, b), timeout=90)
    assert read_run(a.dir).state == read_run(b.dir).state == "completed"
    assert f"started {b.name}" in (lws.state_dir / "worker.log").read_text()
    wait_for(lambda: not worker_alive(lws), timeout=30)  # exits when idle
    wait_for(lambda: lws.runlog.read_text().count("**COMPLETED**") == 2, timeout=10)
    assert sorted(entry_offsets(lws.runlog.read_text())) == sorted([a.id, b.id])


def test_stop_graceful_and_queued(lws, monkeypatch):
    monkeypatch.setenv("FAKE_HOLD_AFTER", "1")  # running until stopped
    a = launch(lws, "configs/fake.toml", detach=False)
    q = launch(lws, "configs/fake.toml", detach=False)
    wait_for(lambda: read_run(a.dir).epoch >= 1)
    stopped = stop_run(lws, a.name)
    assert stopped.state == "stopped" and stopped.exit_code == 0
    assert RunDir(a.dir).last_ckpt.is_file()
    assert stop_run(lws, q.name).state == "stopped"
    assert work_queue(lws) == []  # the stopped queued run never starts
    assert "**STOPPED**" in lws.runlog.read_text()


def test_stop_escalates_to_sigkill_after_grace(lws, monkeypatch):
    monkeypatch.setenv("FAKE_IGNORE_TERM", "1")
    monkeypatch.setenv("FAKE_HOLD_AFTER", "1")  # running until killed
    a = launch(lws, "configs/fake.toml", detach=False)
    wait_for(lambda: read_run(a.dir).epoch >= 1)
    out = stop_run(lws, a, grace_s=0.5)
    assert out.state == "stopped" and out.exit_code == -signal.SIGKILL
    assert not pid_alive(a.pid)
    assert read_events(RunDir(a.dir).events)[-1]["kind"] == "end"


def test_a_stop_whose_requester_is_gone_is_finished_by_reap(lws, monkeypatch):
    """The app asked for a stop (marker + SIGTERM) and was quit before the grace period
    ended: the worker's reap sends SIGKILL and records `stopped`, not `crashed`."""
    monkeypatch.setenv("FAKE_IGNORE_TERM", "1")
    monkeypatch.setenv("FAKE_HOLD_AFTER", "1")  # running until killed
    a = launch(lws, "configs/fake.toml", detach=False)
    wait_for(lambda: read_run(a.dir).epoch >= 1)
    asked = time.time() - 60.0  # longer ago than stop_grace_s = 5
    (RunDir(a.dir).path / ".stop_requested").write_text(f"{asked}\n")
    os.killpg(a.pgid, signal.SIGTERM)  # ignored by this trainer
    assert pid_alive(a.pid)
    reap(lws)
    wait_for(lambda: read_run(a.dir).state == "stopped")
    assert not pid_alive(a.pid)
    assert read_events(RunDir(a.dir).events)[-1]["kind"] == "end"


def test_a_fresh_stop_request_is_not_escalated(lws, monkeypatch):
    monkeypatch.setenv("FAKE_IGNORE_TERM", "1")
    monkeypatch.setenv("FAKE_HOLD_AFTER", "1")  # running until killed
    a = launch(lws, "configs/fake.toml", detach=False)
    wait_for(lambda: read_run(a.dir).epoch >= 1)
    (RunDir(a.dir).path / ".stop_requested").write_text(f"{time.time()}\n")
    reap(lws)
    assert pid_alive(a.pid) and read_run(a.dir).state == "running"


def _kill_while_holding(info):
    """SIGKILL the trainer where it holds after epoch 1 (FAKE_HOLD_AFTER: a resumed or
    restarted one starts after it and trains on); the epoch its last.pt holds."""
    rd = RunDir(info.dir)
    wait_for(lambda: rd.log.is_file() and "holding" in rd.log.read_text().split())
    last_ckpt = __import__("json").loads(rd.last_ckpt.read_text())["epoch"]
    os.killpg(info.pgid, signal.SIGKILL)
    return last_ckpt


def test_crash_is_recorded_and_resume_continues(lws, monkeypatch):
    monkeypatch.setenv("FAKE_HOLD_AFTER", "1")
    info = launch(lws, "configs/fake.toml", ["train.epochs=4"], detach=False)
    ckpt_epoch = _kill_while_holding(info)
    wait_for(lambda: read_run(info.dir).state == "crashed")
    wait_for(lambda: read_status(RunDir(info.dir)).get("state") == "crashed")  # waiter recorded it
    assert "killed by signal 9" in read_run(info.dir).error
    wait_for(lambda: "💥 **CRASHED**" in lws.runlog.read_text(), timeout=10)
    resumed = resume_run(lws, info.id)
    assert resumed.state == "running"
    wait_for(finished(lws, info))
    evs = read_events(RunDir(info.dir).events)
    epochs = [e["epoch"] for e in evs if e["kind"] == "epoch"]
    starts = [i for i, e in enumerate(evs) if e["kind"] == "start"]
    after = [e["epoch"] for e in evs[starts[1] :] if e["kind"] == "epoch"]
    assert after[0] == ckpt_epoch + 1 and sorted(set(epochs)) == [1, 2, 3, 4]
    assert read_run(info.dir).state == "completed"


def test_restart_on_failure_resumes_by_itself(lws, monkeypatch):
    monkeypatch.setenv("FAKE_HOLD_AFTER", "1")
    info = launch(
        lws,
        "configs/fake.toml",
        ["train.epochs=4", 'run.restart="on-failure"', "run.max_restarts=1"],
        detach=False,
    )
    _kill_while_holding(info)
    # the restart comes from whoever works the queue (here: this loop, like `amc-tui queue`)
    wait_for(lambda: work_queue(lws) or read_run(info.dir).restarts >= 1)
    wait_for(lambda: (work_queue(lws), finished(lws, info)())[1])
    out = read_run(info.dir)
    assert out.state == "completed" and out.restarts == 1
    kinds = [e["kind"] for e in read_events(RunDir(info.dir).events)]
    assert "restart" in kinds and kinds.count("start") == 2


def test_reap_records_crash_of_a_process_we_did_not_spawn(lws):
    info = create_run(lws, "configs/fake.toml")
    from amc_tui.run.rundir import write_status

    write_status(
        RunDir(info.dir),
        state="running",
        pid=999_999_999,
        host=os.uname().nodename,
        started_at=time.time(),
        heartbeat_at=time.time(),
    )
    changed = reap(lws)
    assert [c.name for c in changed] == [info.name]
    assert read_status(RunDir(info.dir))["state"] == "crashed"
    assert reap(lws) == []


# --------------------------------------------------------------------------- references


def test_checkpoint_references_resolve_to_files_at_creation(lws):
    src = create_run(lws, "configs/fake.toml", name="source-run")
    RunDir(src.dir).checkpoints.mkdir()
    RunDir(src.dir).last_ckpt.write_bytes(b"ckpt")
    seed = lws.root / "seed.pth"
    seed.write_bytes(b"weights")
    new = create_run(lws, "configs/fake.toml", ['run.resume="source"', 'model.weights="seed.pth"'])
    text = RunDir(new.dir).config.read_text()
    assert f'resume = "{RunDir(src.dir).last_ckpt.resolve()}"' in text
    assert f'weights = "{seed.resolve()}"' in text
    meta = __import__("json").loads(RunDir(new.dir).meta.read_text())
    assert meta["resumed_from"] == {
        "id": src.id,
        "name": "source-run",
        "checkpoint": str(RunDir(src.dir).last_ckpt.resolve()),
    }
    assert meta["weights_from"] == {"id": None, "name": None, "checkpoint": str(seed.resolve())}


def test_a_bad_weights_reference_names_model_weights_and_creates_nothing(lws):
    def names():
        return sorted(p.name for p in lws.runs.iterdir() if not p.name.startswith("."))

    with pytest.raises(UserError, match=r"^model\.weights = 'nowhere': not a checkpoint file"):
        create_run(lws, "configs/fake.toml", ['model.weights="nowhere"'])
    bare = create_run(lws, "configs/fake.toml", name="no-ckpt")
    with pytest.raises(
        UserError, match=r"^model\.weights = 'no-ckpt': run no-ckpt .* no checkpoint"
    ):
        create_run(lws, "configs/fake.toml", ['model.weights="no-ckpt"'])
    assert names() == [bare.name]


# --------------------------------------------------------------------------- one status writer

SILENT_TRAINER = """
import os, sys, time
run = sys.argv[sys.argv.index("--run-dir") + 1]
while not os.path.exists(os.path.join(run, "go")):
    time.sleep(0.02)
sys.exit(3)
"""


@pytest.fixture
def silent(lws, tmp_path, monkeypatch):
    """Runs start a trainer that never writes status.json and exits 3 once `go` appears."""
    (tmp_path / "silent_trainer.py").write_text(SILENT_TRAINER)
    monkeypatch.setenv("AMC_TUI_TRAINER_MODULE", "silent_trainer")
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ['PYTHONPATH']}")
    yield lws
    for run in lws.runs.iterdir():
        if not run.name.startswith("."):
            (run / "go").write_text("")


def test_the_launcher_leaves_status_to_a_live_trainer(silent):
    a = launch(silent, "configs/fake.toml", detach=False)
    assert a.state == "running" and a.pid and os.getpgid(a.pid) == a.pid
    status = read_status(RunDir(a.dir))
    assert status["state"] == "running" and status.get("pid") is None
    (a.dir / "go").write_text("")
    wait_for(lambda: read_status(RunDir(a.dir)).get("state") == "crashed")
    assert "exited with code 3" in read_run(a.dir).error


def test_other_processes_find_a_trainer_before_its_first_status_write(silent):
    def detached(name: str):
        out = subprocess.run(
            [sys.executable, "-m", "amc_tui.cli", "run", "configs/fake.toml", "--detach",
             "--name", name, "--set", "run.share_device=true"],
            cwd=silent.root, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        return read_run(silent.runs / name)

    a, b = detached("early-stop"), detached("early-exit")
    assert a.pid is None and b.pid is None  # status.json: the spawning process is gone
    assert reap(silent) == []  # alive: nothing to record
    stopped = stop_run(silent, "early-stop", grace_s=5.0)
    assert stopped.state == "stopped"
    pid = run_info(silent, "early-exit").pid
    assert pid and pid_alive(pid)
    (b.dir / "go").write_text("")
    wait_for(lambda: not pid_alive(pid))
    assert [r.name for r in reap(silent)] == ["early-exit"]  # at once, not stale
    assert read_run(b.dir).state == "crashed" and "is gone" in read_run(b.dir).error
    assert list((silent.state_dir / "trainers").iterdir()) == []
