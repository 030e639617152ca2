"""Issue 4 "Done when", with the real trainer (`python -m amc_tui.train`) on tiny configs.

One session fixture starts every run at once (run.share_device, so they train side by side on
the CPU) and drives them: a plain run watched while it runs; a run killed with SIGKILL, resumed
by hand and then stopped; one with restart = "on-failure"; each waits, paused, where the test
acts on it (pausing_trainer.py): its pace decides nothing. Several trainers writing RUNLOG.md
at once is covered here too; the exact-same-moment race is test_runlog_entries (8 processes).
The tests then check what each left on disk. Trainer start-up (torch + timm import) dominates,
so everything shares the same few processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from runs_fixtures import wait_for as shared_wait_for
from train_fixtures import REPO, pause_at, release, wait_paused, write_tiny_workspace

from amc_tui.launch.queue import launch
from amc_tui.run.rundir import FINAL_STATES, RunDir, list_runs, read_events, read_run, read_status
from amc_tui.runlog.sync import entry_offsets
from amc_tui.workspace import Workspace

PAUSE = 3  # 2 steps an epoch: epoch 2's first step, last.pt holding epoch 1
HAND_WRITTEN = "# RUNLOG\n\nMy own notes, written by hand.\n\n## Historical context\n- ResNet plateau 24-26 %\n"
LIMIT_S = 240.0


def wait_for(pred, timeout: float = LIMIT_S, every: float = 0.1):
    """runs_fixtures.wait_for with this file's limit and poll interval."""
    return shared_wait_for(pred, timeout, every)


def _epoch(info) -> int:
    return read_run(info.dir, with_last_epoch=False).epoch


def _kill_at_pause(info) -> int:
    """SIGKILL the trainer group where it paused (epoch 2's first step); the epoch its last
    checkpoint holds."""
    rd = RunDir(info.dir)
    wait_paused(rd, PAUSE, timeout=LIMIT_S)  # from here on it writes nothing but heartbeats
    evs = [e for e in read_events(rd.events) if e["kind"] == "checkpoint" and not e.get("best")]
    os.killpg(read_status(rd)["pgid"], signal.SIGKILL)
    return evs[-1]["epoch"] if evs else 0


class Watcher(threading.Thread):
    """Samples `amc-tui ls` states and run A's RUNLOG entry while everything runs."""

    def __init__(self, ws: Workspace, run_id: str, name: str) -> None:
        super().__init__(daemon=True)
        self.ws, self.run_id, self.name = ws, run_id, name
        self.states: list[str] = []
        self.entries: list[str] = []
        self.elapsed: list[float] = []  # the run's elapsed at each sample while it has one
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(0.1):
            now = time.time()
            for r in list_runs(self.ws, with_last_epoch=False):
                if r.name == self.name and (not self.states or self.states[-1] != r.state):
                    self.states.append(r.state)
                if r.name == self.name and (elapsed := r.elapsed_s(now)) is not None:
                    self.elapsed.append(elapsed)
            try:
                text = self.ws.runlog.read_text()
            except OSError:
                continue
            span = entry_offsets(text).get(self.run_id)
            if span and (not self.entries or self.entries[-1] != text[slice(*span)]):
                self.entries.append(text[slice(*span)])


def _cli(ws: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "amc_tui.cli", *args], cwd=ws.root, capture_output=True,
        text=True, stdin=subprocess.DEVNULL, timeout=120,
    )  # fmt: skip


@pytest.fixture(scope="session")
def real_runs(tmp_path_factory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("real-ws")
    ws = write_tiny_workspace(root, "tiny.toml", epochs=2, stop_grace_s=60.0, share_device=True)
    ws.runlog.write_text(HAND_WRITTEN)
    saved_env = dict(os.environ)
    for key in ("AMC_TUI_NO_WORKER", "CUDA_VISIBLE_DEVICES"):
        os.environ.pop(key, None)
    # the real trainer; the first start of killed-c and of restart-b pauses in epoch 2, plain-a
    # pauses after its first step and in epoch 2 while the watcher reads its RUNLOG entry
    os.environ["AMC_TUI_TRAINER_MODULE"] = "pausing_trainer"
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO / "tests"), str(REPO)])
    os.environ["TEST_PAUSE_RUNS"] = f"killed-c:{PAUSE},restart-b:{PAUSE},plain-a:1"
    try:
        cfg = "configs/tiny.toml"
        plain = launch(ws, cfg, name="plain-a", detach=False)
        watcher = Watcher(ws, plain.id, plain.name)
        watcher.start()
        # killed with SIGKILL in epoch 2, resumed by hand, then stopped in epoch 3's first step
        killed = launch(ws, cfg, ["train.epochs=4"], name="killed-c", detach=False)
        restart = launch(
            ws, cfg, ["train.epochs=3", 'run.restart="on-failure"'], name="restart-b"
        )  # detached: the queue worker restarts it, no amc-tui command involved
        out: dict[str, Any] = {"ws": ws, "watcher": watcher}
        # plain-a's entry while running: no epoch yet (paused in epoch 1), then epoch 1
        # (paused in epoch 2); released each time once the watcher has read it
        for step, seen in ((1, "_No epoch finished yet._"), (PAUSE, "epoch 1/2)")):
            wait_paused(RunDir(plain.dir), step, timeout=LIMIT_S)
            wait_for(lambda s=seen: any("**RUNNING**" in e and s in e for e in watcher.entries))
            release(RunDir(plain.dir), then_at=PAUSE if step == 1 else None)
        out["killed_ckpt"], out["restart_ckpt"] = [_kill_at_pause(i) for i in (killed, restart)]
        wait_for(lambda: read_status(RunDir(killed.dir)).get("state") == "crashed")
        out["crashed_ls"] = json.loads(_cli(ws, "ls", "--json", "--state", "crashed").stdout)
        pause_at(RunDir(killed.dir), 2 * PAUSE - 1)  # the resumed trainer: epoch 3's first step
        out["resume"] = _cli(ws, "resume", "killed-c")
        wait_paused(RunDir(killed.dir), 2 * PAUSE - 1, timeout=LIMIT_S)
        out["stop"] = _cli(ws, "stop", "killed-c")
        wait_for(lambda: read_run(restart.dir).restarts >= 1)
        for info in (plain, killed, restart):
            wait_for(lambda i=info: read_run(i.dir).state in FINAL_STATES)
        watcher.halt.set()
        watcher.join(5)
        out.update(plain=plain, killed=killed, restart=restart)
        yield out
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        for info in list_runs(ws, with_last_epoch=False):
            if info.state == "running" and info.pgid:
                with contextlib.suppress(OSError):
                    os.killpg(info.pgid, signal.SIGKILL)


def test_run_shows_running_then_completed_and_runlog_updates_per_epoch(real_runs):
    w = real_runs["watcher"]
    info = read_run(real_runs["plain"].dir)
    assert info.state == "completed" and info.epoch == 2
    assert (
        w.states[0] in ("queued", "running")
        and "running" in w.states
        and w.states[-1] == "completed"
    )
    text = real_runs["ws"].runlog.read_text()
    assert text.startswith(HAND_WRITTEN)
    assert text.count(f"<!-- amc-tui:begin {info.id} -->") == 1
    assert text.count(f"<!-- amc-tui:end {info.id} -->") == 1
    # seen while running, first without epochs, then per epoch, then final
    assert any("**RUNNING**" in e and "_No epoch finished yet._" in e for e in w.entries)
    assert any("**RUNNING**" in e and "epoch 1/2)" in e and "| 1 ★ |" in e for e in w.entries)
    final = w.entries[-1]
    assert (
        "**COMPLETED**" in final and "| 2 " in final and "### Hardest Cells (test, final)" in final
    )
    assert (
        "(rule: `val-above-train`)" in final
        or "(rule: `train-above-val`)" in final
        or "rule: `" in final
    )


def test_elapsed_counts_from_the_launch_and_never_goes_back(real_runs):
    """The trainer keeps the launcher's started_at: the clock no longer showed 2 s from the
    launch, then 0 s once the trainer (torch imported) re-stamped it."""
    info = read_run(real_runs["plain"].dir)
    st = read_status(RunDir(info.dir))
    assert st["started_at"] == st["first_started_at"]  # the launcher's stamp, kept
    (start,) = [e for e in read_events(RunDir(info.dir).events) if e["kind"] == "start"]
    assert start["started_at"] == st["started_at"] < start["t"]
    seen = real_runs["watcher"].elapsed
    # (a sample between the trainer's ended_at and its status write may run a few ms ahead)
    assert len(seen) > 2 and all(b >= a - 0.25 for a, b in zip(seen, seen[1:], strict=False))
    assert seen[-1] == pytest.approx(info.elapsed_s())
    # the resumed run: each attempt's start event carries its own launch stamp
    killed = RunDir(real_runs["killed"].dir)
    starts = [e for e in read_events(killed.events) if e["kind"] == "start"]
    assert [s["started_at"] <= s["t"] for s in starts] == [True, True]
    assert starts[-1]["started_at"] == read_status(killed)["started_at"]


def test_runlog_sync_reproduces_every_entry_byte_for_byte(real_runs):
    ws = real_runs["ws"]
    before = ws.runlog.read_bytes()
    out = _cli(ws, "runlog", "sync")
    assert out.returncode == 0 and "is current" in out.stdout, out.stdout
    assert ws.runlog.read_bytes() == before


def test_all_entries_land_and_the_file_is_well_formed(real_runs):
    ws = real_runs["ws"]
    text = ws.runlog.read_text()
    ids = [read_run(real_runs[k].dir).id for k in ("plain", "killed", "restart")]
    offsets = entry_offsets(text)
    assert sorted(offsets) == sorted(ids)
    spans = sorted(offsets.values())
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))  # no overlap
    for run_id in ids:
        a, b = offsets[run_id]
        assert text[a:b].rstrip().endswith(f"<!-- amc-tui:end {run_id} -->")
        assert text.count(f"amc-tui:begin {run_id}") == 1
    states = {
        read_run(real_runs[k].dir).id: read_run(real_runs[k].dir).state.upper()
        for k in ("plain", "killed", "restart")
    }
    for run_id, state in states.items():
        assert f"**{state}**" in text[slice(*offsets[run_id])]


def _epochs(run_dir: Path) -> list[int]:
    return [e["epoch"] for e in read_events(RunDir(run_dir).events) if e["kind"] == "epoch"]


def test_kill_9_is_crashed_and_resume_continues_without_repeating(real_runs):
    killed = real_runs["killed"]
    assert "killed-c" in [r["name"] for r in real_runs["crashed_ls"]]
    assert real_runs["resume"].returncode == 0, real_runs["resume"].stderr
    info = read_run(killed.dir)
    assert info.id == killed.id and info.epoch > real_runs["killed_ckpt"]
    epochs = _epochs(killed.dir)
    assert epochs == sorted(set(epochs)) == list(range(1, info.epoch + 1))
    evs = read_events(RunDir(killed.dir).events)
    starts = [e for e in evs if e["kind"] == "start"]
    assert len(starts) == 2 and starts[1].get("resumed") is True
    second = evs[evs.index(starts[1]) :]
    assert [e["epoch"] for e in second if e["kind"] == "epoch"][0] == real_runs["killed_ckpt"] + 1
    assert [e["state"] for e in evs if e["kind"] == "end"] == ["crashed", "stopped"]


def test_restart_on_failure_resumes_by_itself(real_runs):
    info = read_run(real_runs["restart"].dir)
    assert info.state == "completed" and info.restarts == 1
    evs = read_events(RunDir(info.dir).events)
    restarts = [e for e in evs if e["kind"] == "restart"]
    assert len(restarts) == 1 and restarts[0]["attempt"] == 1
    epochs = _epochs(info.dir)
    assert epochs == sorted(set(epochs)) == [1, 2, 3]
    text = real_runs["ws"].runlog.read_text()
    assert "**Restarts**: 1 of at most 2" in text[slice(*entry_offsets(text)[info.id])]


def test_stop_is_stopped_with_a_checkpoint_within_grace(real_runs):
    stop = real_runs["stop"]
    assert stop.returncode == 0 and "stopped; checkpoint" in stop.stdout, stop.stdout + stop.stderr
    info = read_run(real_runs["killed"].dir)
    # exit 0 is the trainer's own clean exit after SIGTERM: no SIGKILL was needed (-9 else)
    assert info.state == "stopped" and info.exit_code == 0
    evs = read_events(RunDir(info.dir).events)
    assert evs[-1]["kind"] == "end" and evs[-1]["state"] == "stopped"
    last_ckpt = [e for e in evs if e["kind"] == "checkpoint"][-1]
    assert RunDir(info.dir).last_ckpt.is_file() and evs.index(last_ckpt) > len(evs) - 4
