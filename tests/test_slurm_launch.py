"""Runs with run.executor = "slurm" through the launcher: queued -> submitted (job id) ->
running (the trainer's first write) -> how the job ended; stop = SIGTERM to the job, then
scancel; a time limit or a dead node -> crashed and resubmitted by the restart policy; a job
that fails before its trainer starts -> failed with Slurm's log; a sweep group -> one job array.

Slurm is the fake in tests/fake_slurm/ (real executables answering in Slurm's formats); with
FAKE_SLURM_RUN=1 its sbatch really runs submitit's batch script, so the stand-in trainer
(tests/runs_fake_trainer.py) runs as the job. Queue passes are driven by the test
(AMC_TUI_NO_WORKER=1), asking Slurm on every pass (AMC_TUI_SLURM_POLL_S=0).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_slurm import fakeslurm
from runs_fixtures import amc, fake_trainer_workspace, kill_running, wait_for

from amc_tui.launch.queue import launch, work_queue
from amc_tui.launch.stop import stop_run
from amc_tui.run.rundir import (
    RunInfo,
    derive_state,
    read_events,
    read_run,
    read_status,
    write_status,
)
from amc_tui.workspace import Workspace

FAKE_BIN = Path(__file__).resolve().parent / "fake_slurm"
SLURM_TOML = """[data]
path = "data/fake.h5"
classes = ["BPSK", "QPSK"]
snr_min = 0
snr_max = 2
[train]
epochs = {epochs}
[run]
executor = "slurm"
device = "cpu"
stop_grace_s = 60
restart = "{restart}"
max_restarts = 1
[slurm]
gpus_per_node = 0
time_min = 30
"""


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Workspace, Path]]:
    """A workspace whose runs go to the fake Slurm (its state folder is the second item)."""
    ws = fake_trainer_workspace(
        tmp_path / "ws", monkeypatch, epoch_s=0.3, epochs=2, stop_grace_s=60
    )
    home = tmp_path / "slurmctld"
    monkeypatch.setenv("FAKE_SLURM_DIR", str(home))
    monkeypatch.setenv("PATH", f"{FAKE_BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("AMC_TUI_SLURM_POLL_S", "0")
    for key in ("FAKE_SBATCH_FAIL", "FAKE_SACCT_FAIL", "FAKE_SLURM_RUN", "FAKE_IGNORE_TERM"):
        monkeypatch.delenv(key, raising=False)
    yield ws, home
    for pgid in (home / "steps").glob("*.pgid"):  # no job step outlives its test
        with contextlib.suppress(OSError, ValueError):
            os.killpg(int(pgid.read_text()), signal.SIGKILL)
    kill_running(ws)


def config(ws: Workspace, epochs: int = 2, restart: str = "never") -> Path:
    path = ws.root / "configs" / "slurm.toml"
    path.write_text(SLURM_TOML.format(epochs=epochs, restart=restart))
    return path


def calls(home: Path, name: str) -> list[list[str]]:
    return [c["argv"] for c in fakeslurm.calls(home) if c["cmd"] == name]


def start_job(jid: str) -> subprocess.Popen[bytes]:
    """What Slurm does when a pending job gets its node: run the batch script."""
    return subprocess.Popen(
        [str(FAKE_BIN / "srun"), "--fake-runner", jid], start_new_session=True,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def settled(ws: Workspace, info: RunInfo, state: str | None = None) -> RunInfo | None:
    """One queue pass, then the run if its job's end is recorded (and it is `state`)."""
    work_queue(ws)
    now = read_run(info.dir)
    done = now.slurm_settled and now.state not in ("queued", "submitted")
    return now if done and (state is None or now.state == state) else None


def sweep_detached(ws: Workspace, sweep: str, axes: str, *args: str) -> Any:
    """`amc-tui sweep --detach` of a grid over the Slurm config with these [sweep] lines."""
    config(ws)
    path = ws.root / "configs" / "sweep.toml"
    path.write_text(f'base = "slurm.toml"\n[sweep]\nstrategy = "grid"\n{sweep}\n'
                    f"[sweep.axes]\n{axes}\n")  # fmt: skip
    return amc(ws, "sweep", str(path), "--detach", *args)


def after_pass(ws: Workspace, pred: Callable[[], object]) -> object:
    work_queue(ws)
    return pred()


def kinds(info: RunInfo) -> list[str]:
    """The run's life in events: submissions, starts, restarts, ends."""
    life = ("submitted", "start", "restart", "end")
    return [e["kind"] for e in read_events(info.rundir.events) if e["kind"] in life]


def test_a_run_is_submitted_then_runs_and_completes(cluster: tuple[Workspace, Path]) -> None:
    ws, home = cluster
    info = launch(ws, config(ws), detach=False)
    assert (info.state, info.slurm_job_id) == ("submitted", "1234")
    assert len(calls(home, "sbatch")) == 1
    assert read_status(info.rundir)["slurm_log"] == str(info.dir / "slurm" / "1234_0_log.out")
    listing = amc(ws, "ls").stdout
    row = next(line for line in listing.splitlines() if line.startswith(info.name))
    assert row.split()[2:4] == ["submitted", "1234"], listing
    assert "JOB" in listing.splitlines()[0]
    shown = amc(ws, "show", info.name).stdout
    assert "slurm job 1234 (not ended)" in shown
    work_queue(ws)  # a pass while the job waits changes nothing, submits nothing again
    assert read_run(info.dir).state == "submitted" and len(calls(home, "sbatch")) == 1

    runner = start_job("1234")
    wait_for(lambda: read_run(info.dir).state == "running")  # the trainer's first write
    done = wait_for(lambda: settled(ws, info))
    runner.wait(timeout=60)
    assert done.state == "completed" and done.epoch == 2
    status = read_status(info.rundir)
    assert status["slurm_state"] == "COMPLETED" and status["slurm_job_id"] == "1234"
    assert kinds(done) == ["submitted", "start", "end"]  # one end: the trainer's
    assert "slurm job 1234 (ended COMPLETED)" in amc(ws, "show", info.name).stdout
    assert "**Slurm**: job 1234 (ended COMPLETED)" in (ws.root / "RUNLOG.md").read_text()
    assert len(calls(home, "sbatch")) == 1


def test_stop_sends_sigterm_to_the_job_and_the_run_ends_stopped(
    cluster: tuple[Workspace, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, home = cluster
    monkeypatch.setenv("FAKE_SLURM_RUN", "1")
    monkeypatch.setenv("FAKE_HOLD_AFTER", "1")  # it runs until the stop, however late
    info = launch(ws, config(ws, epochs=3), detach=False)
    jid = info.slurm_job_id
    wait_for(lambda: read_run(info.dir).state == "running" and read_run(info.dir).epoch >= 1)
    stopped = stop_run(ws, info.name)
    assert calls(home, "scancel") == [["--signal=TERM", jid]]  # the trainer ended in the grace
    assert stopped.state == "stopped" and stopped.slurm_settled
    assert info.rundir.last_ckpt.is_file()
    assert kinds(stopped).count("end") == 1


def test_stop_of_a_job_still_waiting_in_slurm_cancels_it(cluster: tuple[Workspace, Path]) -> None:
    ws, home = cluster
    info = launch(ws, config(ws), detach=False)
    stopped = stop_run(ws, info.name)
    assert calls(home, "scancel") == [["1234"]]
    assert fakeslurm.get_state(home, "1234").startswith("CANCELLED")
    assert stopped.state == "stopped"
    end = [e for e in read_events(info.rundir.events) if e["kind"] == "end"]
    assert [(e["state"], e["recorded_by"]) for e in end] == [("stopped", "launcher")]


def test_cli_stop_of_a_pending_job_cancels_it_and_resume_submits_it_again(
    cluster: tuple[Workspace, Path],
) -> None:
    ws, home = cluster
    info = launch(ws, config(ws), detach=False)
    assert read_run(info.dir).state == "submitted"
    out = amc(ws, "stop", info.name)
    assert out.returncode == 0, out.stderr
    assert "nothing to stop" not in out.stdout and f"{info.name} stopped" in out.stdout
    assert calls(home, "scancel") == [["1234"]]
    assert fakeslurm.get_state(home, "1234").startswith("CANCELLED")
    stopped = read_run(info.dir)
    assert (stopped.state, stopped.slurm_settled) == ("stopped", True)
    again = amc(ws, "resume", info.name)  # never started: no checkpoint, submitted anew
    assert again.returncode == 0, again.stderr
    assert len(calls(home, "sbatch")) == 2
    now = read_run(info.dir)
    assert (now.state, now.slurm_job_id, now.slurm_settled) == ("submitted", "1235", False)
    assert not read_status(now.rundir).get("resume")  # from the start: nothing to resume from
    assert kinds(now) == ["submitted", "end", "submitted"]


def test_a_time_limit_makes_the_run_crashed_and_it_is_resubmitted_to_resume(
    cluster: tuple[Workspace, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, home = cluster
    monkeypatch.setenv("FAKE_SLURM_RUN", "1")
    # the first job holds after epoch 1 until the warning; the resumed one trains on
    monkeypatch.setenv("FAKE_HOLD_AFTER", "1")
    info = launch(ws, config(ws, epochs=3, restart="on-failure"), detach=False)
    wait_for(lambda: read_run(info.dir).epoch >= 1 and info.rundir.last_ckpt.is_file())
    fakeslurm.main("scancel", ["--signal=USR2", "1234"])  # Slurm's warning before the limit
    wait_for(lambda: read_status(info.rundir).get("state") == "stopped")
    log = info.dir / "slurm" / "1234_0_log.out"
    wait_for(lambda: "waiting for Slurm's end" in log.read_text())
    fakeslurm.main("scancel", ["1234"])  # the limit: Slurm ends the job ...
    fakeslurm.set_state(home, "1234", "TIMEOUT")  # ... and says why
    wait_for(lambda: after_pass(ws, lambda: len(calls(home, "sbatch")) == 2))
    again = read_run(info.dir)
    assert again.slurm_job_id == "1235" and again.restarts == 1
    restart = next(e for e in read_events(info.rundir.events) if e["kind"] == "restart")
    assert restart["reason"] == "crashed" and restart["checkpoint"]
    done = wait_for(lambda: settled(ws, info, "completed"))
    assert done.epoch == 3 and done.restarts == 1
    starts = [e for e in read_events(info.rundir.events) if e["kind"] == "start"]
    assert [bool(s["resumed"]) for s in starts] == [False, True]
    epochs = [e["epoch"] for e in read_events(info.rundir.events) if e["kind"] == "epoch"]
    assert epochs == sorted(set(epochs)) and epochs[-1] == 3  # none trained twice


def test_a_job_that_fails_before_its_trainer_starts_is_failed_with_slurms_log(
    cluster: tuple[Workspace, Path],
) -> None:
    ws, home = cluster
    info = launch(ws, config(ws, restart="on-failure"), detach=False)
    log = info.dir / "slurm" / "1234_0_log.out"
    log.write_text("bash: module: command not found\n")
    fakeslurm.set_state(home, "1234", "FAILED")
    done = wait_for(lambda: settled(ws, info))
    assert done.state == "failed" and done.restarts == 0  # never started: nothing to resume
    assert done.error.startswith("Slurm job 1234 ended FAILED before its trainer started")
    assert "module: command not found" in done.error
    assert "error: Slurm job 1234 ended FAILED" in amc(ws, "show", info.name).stdout
    assert len(calls(home, "sbatch")) == 1


def test_a_dead_node_is_stalled_until_slurm_says_so_then_crashed(
    cluster: tuple[Workspace, Path],
) -> None:
    ws, home = cluster
    info = launch(ws, config(ws), detach=False)
    old = time.time() - 120  # the trainer on node7 wrote, then its heartbeat stopped
    write_status(info.rundir, state="running", host="node7", pid=4242, heartbeat_at=old)
    fakeslurm.set_state(home, "1234", "RUNNING")
    assert derive_state(read_status(info.rundir), run_dir=info.dir) == "stalled"
    work_queue(ws)
    assert read_run(info.dir).state == "stalled"  # the job still runs: nothing recorded
    fakeslurm.set_state(home, "1234", "NODE_FAIL")
    done = wait_for(lambda: settled(ws, info))
    assert done.state == "crashed"
    assert "ended NODE_FAIL its trainer died without recording an end state" in done.error
    assert kinds(done)[-1] == "end"


def test_no_sbatch_is_one_line_exit_2_and_nothing_is_created(
    cluster: tuple[Workspace, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, home = cluster
    path = config(ws)
    monkeypatch.setenv("PATH", os.environ["PATH"].replace(f"{FAKE_BIN}{os.pathsep}", ""))
    done = amc(ws, "run", str(path), "--detach")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "amc-tui: error: executor = slurm but sbatch is not on PATH"
    ]
    assert [p.name for p in ws.runs.iterdir() if not p.name.startswith(".")] == []
    assert not calls(home, "sbatch")


def test_slurm_refusing_the_job_fails_the_run_with_its_message(
    cluster: tuple[Workspace, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, home = cluster
    msg = "sbatch: error: Batch job submission failed: Invalid partition name specified"
    monkeypatch.setenv("FAKE_SBATCH_FAIL", msg)
    info = launch(ws, config(ws), detach=False)
    assert info.state == "failed" and info.error == f"sbatch failed: {msg}"
    assert info.slurm_job_id is None
    assert kinds(info) == ["end"]


def test_a_sweep_group_is_one_job_array(cluster: tuple[Workspace, Path]) -> None:
    ws, home = cluster
    axes = '"train.lr" = [0.001, 0.002, 0.003]'
    done = sweep_detached(ws, "repeats = 1\nmax_parallel = 2", axes, "--name", "lr-on-slurm")
    assert done.returncode == 0, done.stderr
    (argv,) = calls(home, "sbatch")
    script = (home / "scripts" / "1234.sh").read_text()
    assert "#SBATCH --array=0-2%2" in script.splitlines()
    runs = sorted(
        (read_run(p) for p in ws.runs.iterdir() if not p.name.startswith(".")),
        key=lambda r: r.slurm_job_id or "",
    )
    assert [(r.state, r.slurm_job_id) for r in runs] == [
        ("submitted", "1234_0"), ("submitted", "1234_1"), ("submitted", "1234_2"),
    ]  # fmt: skip
    for r in runs:
        (ev,) = [e for e in read_events(r.rundir.events) if e["kind"] == "submitted"]
        assert ev["array"] == "1234"
    stop_run(ws, runs[0].name)  # one member of the array: only its task is cancelled
    assert calls(home, "scancel") == [["1234_0"]]
    assert fakeslurm.get_state(home, "1234_1") == "PENDING"
    stopped = amc(ws, "group", "stop", "lr-on-slurm")
    assert stopped.returncode == 0, stopped.stderr
    # the two members still waiting: one call for the whole array, not one per member
    assert calls(home, "scancel") == [["1234_0"], ["--state=PENDING", "1234"]]
    assert [fakeslurm.get_state(home, f"1234_{k}")[:9] for k in range(3)] == ["CANCELLED"] * 3
    assert [read_run(r.dir).state for r in runs] == ["stopped"] * 3


def test_a_hung_trainer_has_its_job_cancelled_and_is_crashed(
    cluster: tuple[Workspace, Path],
) -> None:
    ws, home = cluster
    info = launch(ws, config(ws), detach=False)
    old = time.time() - 3600  # far past HUNG_AFTER_S while Slurm still runs the job
    write_status(info.rundir, state="running", host="node7", pid=4242, heartbeat_at=old)
    fakeslurm.set_state(home, "1234", "RUNNING")
    work_queue(ws)
    assert calls(home, "scancel") == [["1234"]]
    done = wait_for(lambda: settled(ws, info))
    assert done.state == "crashed"
    assert "after its trainer stopped sending heartbeats (cancelled by amc-tui)" in done.error


def test_run_follows_a_slurm_run_to_its_recorded_end_with_the_queue_worker(
    cluster: tuple[Workspace, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, home = cluster
    monkeypatch.setenv("FAKE_SLURM_RUN", "1")
    monkeypatch.delenv("AMC_TUI_NO_WORKER")  # the detached worker asks Slurm, as for a user
    done = amc(ws, "run", str(config(ws)))
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert "submitted to Slurm as job 1234" in out[0]
    assert "end: completed (exit 0), best" in done.stdout
    (run,) = [read_run(p) for p in ws.runs.iterdir() if not p.name.startswith(".")]
    assert run.state == "completed" and run.slurm_settled  # the worker recorded the job's end
    assert read_status(run.rundir)["slurm_state"] == "COMPLETED"


@pytest.mark.anyio
async def test_the_app_shows_a_submitted_run_its_job_and_stops_it_through_slurm(
    cluster: tuple[Workspace, Path],
) -> None:
    from textual.widgets import DataTable, Static
    from tui_fixtures import make_app, runs_loaded, screen_ready
    from tui_fixtures import wait_for as wait_ui

    from amc_tui.tui.screens.live import LiveScreen

    ws, home = cluster
    info = launch(ws, config(ws), detach=False)
    app = make_app(ws, clock=time.time)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await runs_loaded(pilot)
        table = screen.query_one(DataTable)

        def cell(col: str) -> str:
            return table.get_cell(str(info.dir), col).plain.strip()

        assert (cell("state"), cell("gpu"), cell("epoch")) == ("submitted", "slurm", "-/2")
        await pilot.press("enter")
        live = await screen_ready(pilot, LiveScreen)
        head = live.query_one("#live-head", Static)
        await wait_ui(pilot, lambda: "Slurm job 1234" in str(head.render()))
        assert "elapsed -" in str(head.render())  # not trained yet: no 0 s
        await pilot.press("escape", "s")
        await pilot.pause(0.2)
        await pilot.press("y")
        await wait_ui(pilot, lambda: read_run(info.dir).state == "stopped", timeout=60)
    assert calls(home, "scancel") == [["1234"]]


def test_a_sweep_over_slurm_keys_is_one_array_per_slurm_table(
    cluster: tuple[Workspace, Path],
) -> None:
    ws, home = cluster
    done = sweep_detached(ws, "repeats = 2", '"slurm.partition" = ["a100", "h100"]')
    assert done.returncode == 0, done.stderr
    scripts = [(home / "scripts" / f"{jid}.sh").read_text().splitlines() for jid in (1234, 1235)]
    assert len(calls(home, "sbatch")) == 2
    parts = sorted(next(ln for ln in s if ln.startswith("#SBATCH --partition=")) for s in scripts)
    assert parts == ["#SBATCH --partition=a100", "#SBATCH --partition=h100"]
    assert all("#SBATCH --array=0-1%2" in s for s in scripts)
    states = [read_run(p).state for p in ws.runs.iterdir() if not p.name.startswith(".")]
    assert states == ["submitted"] * 4


def test_group_stop_sends_term_to_the_running_tasks_of_an_array_then_cancels_it(
    cluster: tuple[Workspace, Path],
) -> None:
    ws, home = cluster
    axes = '"train.lr" = [0.001, 0.002, 0.003]'
    done = sweep_detached(ws, "repeats = 1\nmax_parallel = 3", axes, "--name", "arr")
    assert done.returncode == 0, done.stderr
    fakeslurm.set_state(home, "1234_0", "RUNNING")  # one task has its node, two still wait
    fakeslurm.set_state(home, "1234_2", "RUNNING")
    stopped = amc(ws, "group", "stop", "arr", "--grace", "0.5")
    assert stopped.returncode == 0, stopped.stderr
    assert calls(home, "scancel") == [
        ["--state=PENDING", "1234"],  # the waiting task at once
        ["--signal=TERM", "--state=RUNNING", "1234"],  # the trainers checkpoint
        ["1234"],  # still running after the grace (no trainer here to end them)
    ]
    assert [fakeslurm.get_state(home, f"1234_{k}")[:9] for k in range(3)] == ["CANCELLED"] * 3
    runs = [read_run(p) for p in sorted(ws.runs.iterdir()) if not p.name.startswith(".")]
    assert [(r.state, r.slurm_settled) for r in runs] == [("stopped", True)] * 3
