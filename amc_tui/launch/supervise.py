"""After a process exists: spawn trainers, wait for and reap them, restart, stop.

One writer of status.json at a time: the launcher writes it only while no trainer process
exists for the run (queued, the pre-spawn `running` stamp, and the final state of a trainer
that died or never started); a live trainer owns it and writes its own pid, pgid and host
first. Until then the child's pid lives in memory and in runs/.amc-tui/trainers/<run>.json.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from filelock import FileLock

from amc_tui import contract
from amc_tui.config import Config
from amc_tui.errors import UserError
from amc_tui.fsutil import atomic_write_json, atomic_write_text, read_json
from amc_tui.launch.state import base_env, file_lock, state_dir
from amc_tui.launch.torchrun import trainer_argv, world_size
from amc_tui.run import runlock
from amc_tui.run.refs import resolve_run
from amc_tui.run.rundir import (
    RunCache,
    RunDir,
    RunInfo,
    append_event,
    derive_state,
    list_runs,
    pid_alive,
    read_run,
    read_status,
    run_config,
    write_status,
)
from amc_tui.runlog.sync import not_written_reason, runlog_path_for, sync_entry
from amc_tui.workspace import Workspace

log = logging.getLogger(__name__)

# A trainer whose pid is alive but whose heartbeat is this old is hung: reap kills it.
HUNG_AFTER_S = 20 * contract.STALE_AFTER_S
STOP_ESCALATE_SLACK_S = 2.0  # past the grace period, before the worker's SIGKILL
EXEC_WAIT_S = 5.0  # how long stop waits for a just-forked trainer to exec
HOLDER_GRACE_S = 5.0  # how long a dead trainer's children may keep its lock before a reap


def queue_lock(ws: Workspace) -> FileLock:
    """Held while reaping and starting queued runs, so no run starts twice."""
    return file_lock(state_dir(ws) / "queue.lock")


def runlog_sync(run_dir: Path, record: bool = False) -> None:
    """Re-render the run's RUNLOG entry; a RUNLOG problem never breaks run management. With
    `record` (the caller writes the run's status: no trainer lives), why it failed is kept as
    status.json `runlog_error`, cleared once it works, so the summary never claims an entry
    that is not there."""

    error = None
    try:
        sync_entry(run_dir, runlog_path_for(run_dir))
    except Exception as e:  # noqa: BLE001
        error = not_written_reason(e)
        log.warning("RUNLOG update for %s failed: %s", run_dir, error)
    if record:
        rd = RunDir(Path(run_dir))
        with contextlib.suppress(Exception):
            if read_status(rd).get("runlog_error") != error:
                write_status(rd, runlog_error=error)


# --------------------------------------------------------------------------- trainer records


def _record_path(ws: Workspace, rd: RunDir) -> Path:
    return ws.state_dir / "trainers" / f"{rd.name}.json"


def _write_record(ws: Workspace, rd: RunDir, pid: int) -> None:
    path = _record_path(ws, rd)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {"pid": pid, "pgid": pid, "host": socket.gethostname()})


def _drop_record(ws: Workspace, rd: RunDir) -> None:
    with contextlib.suppress(OSError):
        _record_path(ws, rd).unlink()


def _record(ws: Workspace, rd: RunDir) -> dict[str, Any]:
    data = read_json(_record_path(ws, rd))
    return data if isinstance(data, dict) and isinstance(data.get("pid"), int) else {}


def with_trainer(ws: Workspace, info: RunInfo) -> RunInfo:
    """`info` with the trainer's pid, pgid and host filled in from the launcher's record when
    the trainer has not written status.json yet (a copy; `info` itself is left as is)."""
    if info.stored_state != "running" or info.pid:
        return info
    rec = _record(ws, info.rundir)
    if not rec:
        return info
    host = str(rec.get("host") or info.host)
    state = derive_state(
        {"state": "running", "pid": rec["pid"], "host": host or None,
         "heartbeat_at": info.heartbeat_at, "started_at": info.started_at},
        run_dir=info.dir,
    )  # fmt: skip
    return dataclasses.replace(
        info, pid=rec["pid"], pgid=rec.get("pgid") or rec["pid"], host=host, state=state
    )


def read_live(ws: Workspace, run_dir: str | os.PathLike[str]) -> RunInfo:
    """A run as read from its files, plus a just-spawned trainer's pid (see `with_trainer`)."""
    return with_trainer(ws, read_run(run_dir))


def run_info(ws: Workspace, run: RunInfo | str | os.PathLike[str]) -> RunInfo:
    """The current state of a run given as a RunInfo, a run folder or a name/id/prefix."""
    if isinstance(run, RunInfo):
        return read_live(ws, run.dir)
    if isinstance(run, os.PathLike):
        return read_live(ws, run)
    return with_trainer(ws, resolve_run(ws, run))


def _prune_records(ws: Workspace, runs: list[RunInfo]) -> None:
    """Drop records no longer needed: the run's trainer wrote its own pid, or it is not
    running (called under the queue lock, the only place runs start)."""
    try:
        names = os.listdir(ws.state_dir / "trainers")
    except OSError:
        return
    keep = {f"{r.dir.name}.json" for r in runs if r.stored_state == "running" and not r.pid}
    for name in names:
        if name.endswith(".json") and name not in keep:
            with contextlib.suppress(OSError):
                (ws.state_dir / "trainers" / name).unlink()


# --------------------------------------------------------------------------- spawn


_children: dict[int, subprocess.Popen[bytes]] = {}
_children_lock = threading.Lock()


def _trainer_env(gpus: list[int] | None, cfg: Config) -> dict[str, str]:
    env = base_env()
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in gpus)
    elif cfg.run.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


START_MARKER = "--- amc-tui: starting trainer"


def log_tail(path: Path, nbytes: int = 2000) -> str:
    """The end of train.log, from this attempt only: a traceback an earlier attempt printed
    must not be taken for the cause of this one's end."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - nbytes))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    at = text.rfind(START_MARKER)
    if at >= 0:
        text = text[text.find("\n", at) + 1 :] if "\n" in text[at:] else ""
    return text.strip()


def _clear_stale_lock(rd: RunDir) -> None:
    """Remove a run lock file nobody holds (an earlier attempt's) before a new trainer starts:
    until that trainer takes the lock, readers then judge it by its pid, not by a free lock
    that would call it crashed. Called under the queue lock, after the holder check."""
    if runlock.holder(rd.path) is None:
        with contextlib.suppress(OSError):
            (rd.path / runlock.LOCK_FILE).unlink()


def spawn(ws: Workspace, info: RunInfo, cfg: Config, gpus: list[int], device: str) -> RunInfo:
    """Start the trainer for a queued run with its validated config (caller holds the queue
    lock). status.json is stamped `running` before the process exists, never after."""
    rd = info.rundir
    status = read_status(rd)
    resume = bool(status.get("resume")) or rd.last_ckpt.is_file()
    # several GPUs (or run.nproc > 1): torchrun starts one trainer process per GPU
    nproc = world_size(cfg, device, gpus)
    argv = trainer_argv(rd.path, contract.trainer_module(), nproc, resume, python=sys.executable)
    now = time.time()
    first = {"first_started_at": now} if status.get("first_started_at") is None else {}
    _drop_record(ws, rd)  # a record from an earlier attempt must not name this one's pid
    _clear_stale_lock(rd)
    write_status(
        rd,
        **first,
        state="running",
        pid=None,
        pgid=None,
        host=socket.gethostname(),
        started_at=now,
        heartbeat_at=now,
        ended_at=None,
        exit_code=None,
        error=None,
        gpus=gpus,
        assigned_gpus=gpus,
        device=device,
        resume=False,
        epochs=cfg.train.epochs,
        waiting=None,
    )
    try:
        with open(rd.log, "ab") as logf:
            logf.write(f"{START_MARKER} at {time.ctime(now)}: {' '.join(argv)}\n".encode())
            logf.flush()
            proc = subprocess.Popen(
                argv,
                cwd=ws.root,
                env=_trainer_env(gpus, cfg),
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
    except OSError as e:
        write_status(
            rd,
            state="failed",
            ended_at=time.time(),
            exit_code=None,
            error=f"cannot start the trainer: {e}",
        )
        runlog_sync(rd.path, record=True)
        return read_run(rd.path)
    _write_record(ws, rd, proc.pid)
    with _children_lock:
        _children[proc.pid] = proc
    threading.Thread(
        target=_wait_child, args=(ws, rd, proc), name=f"amc-wait-{proc.pid}", daemon=True
    ).start()
    runlog_sync(rd.path)
    return read_live(ws, rd.path)


def _wait_child(ws: Workspace, rd: RunDir, proc: subprocess.Popen[bytes]) -> None:
    """Reap our trainer child (no zombies) and record how it ended if it could not."""
    rc = proc.wait()
    # a process that inherited the run's lock (a data-loader worker) may outlive the trainer
    # by a moment; one that keeps holding it still owns the run, and the worker's reap
    # records the end once the lock is free
    deadline = time.time() + HOLDER_GRACE_S
    while runlock.holder(rd.path) is not None and time.time() < deadline:
        time.sleep(0.1)

    def left_running() -> bool:
        status = read_status(rd)
        pid = status.get("pid") or _record(ws, rd).get("pid")
        held = runlock.holder(rd.path) is not None
        return status.get("state") == "running" and pid == proc.pid and not held

    try:
        # under the lock: a reap may meanwhile have recorded this trainer and started the
        # run's restart, whose live trainer must not be recorded dead
        with queue_lock(ws):
            if left_running():
                requeue_on_failure(ws, _record_dead(ws, read_live(ws, rd.path), exit_code=rc))
            if _record(ws, rd).get("pid") == proc.pid:
                _drop_record(ws, rd)
    except Exception as e:  # noqa: BLE001 - a daemon thread must not die noisily
        log.warning("recording the end of %s failed: %s", rd.path, e)
    finally:
        with _children_lock:
            _children.pop(proc.pid, None)


def child_returncode(pid: int | None) -> int | None:
    """Exit code of a trainer this process spawned (None if not ours or still running)."""
    with _children_lock:
        proc = _children.get(pid or -1)
    return None if proc is None else proc.poll()


# --------------------------------------------------------------------------- reap, restart


def stop_marker(rd: RunDir) -> Path:
    """Written by stop_local before SIGTERM: a trainer that then dies is `stopped`, not crashed."""
    return rd.path / ".stop_requested"


def clear_stop_marker(rd: RunDir) -> None:
    with contextlib.suppress(OSError):
        stop_marker(rd).unlink()


def _is_our_trainer(pid: int | None, run_dir: Path) -> bool:
    """Guard against pid reuse before signalling: the process must be this run's trainer."""
    if not pid or not pid_alive(pid):
        return False
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc: trust the pid
    return contract.trainer_module().encode() in cmd and os.fsencode(str(run_dir)) in cmd


def _record_dead(ws: Workspace, info: RunInfo, exit_code: int | None = None) -> RunInfo:
    """A trainer that left status 'running' behind: record crashed (or stopped if a stop was
    requested), an `end` event and the final RUNLOG entry."""
    rd = info.rundir
    status = read_status(rd)
    stopping = stop_marker(rd).exists()
    state = "stopped" if stopping else "crashed"
    if exit_code is not None and exit_code < 0:
        why = f"killed by signal {-exit_code}"
    elif exit_code is not None:
        why = f"exited with code {exit_code}"
    else:
        why = "is gone" if not pid_alive(info.pid) else "stopped sending heartbeats"
    error = (
        None
        if stopping
        else (
            f"trainer process {info.pid} {why} without recording an end state\n" + log_tail(rd.log)
        )
    )
    write_status(rd, state=state, ended_at=time.time(), exit_code=exit_code, error=error)
    append_event(
        rd, "end", state=state, exit_code=exit_code, best=status.get("best"), recorded_by="launcher"
    )
    _drop_record(ws, rd)
    runlog_sync(rd.path, record=True)
    return read_run(rd.path)


def requeue_on_failure(ws: Workspace, info: RunInfo) -> bool:
    """restart = "on-failure": a crashed run goes back to the queue (resume from last.pt)
    up to max_restarts times, with a `restart` event."""
    if info.stored_state != "crashed":
        return False
    held = runlock.holder(info.dir)
    if held is not None:  # never a second trainer beside a live one
        log.warning("not restarting %s: %s still holds it", info.name, holder_text(held))
        return False
    try:
        cfg = run_config(info.rundir)
    except (OSError, UserError):
        return False
    if cfg.run.restart != "on-failure" or info.restarts >= cfg.run.max_restarts:
        return False
    attempt = info.restarts + 1
    append_event(
        info.rundir,
        "restart",
        attempt=attempt,
        max_restarts=cfg.run.max_restarts,
        reason="crashed",
        from_epoch=info.epoch,
        checkpoint=str(info.rundir.last_ckpt) if info.rundir.last_ckpt.is_file() else None,
    )
    write_status(
        info.rundir,
        state="queued",
        restarts=attempt,
        resume=True,
        queued_at=time.time(),
        ended_at=None,
        exit_code=None,
    )
    return True


def stop_grace(rd: RunDir) -> float:
    """The run's run.stop_grace_s (the default when its config cannot be read)."""
    try:
        return run_config(rd).run.stop_grace_s
    except (OSError, UserError):
        return Config().run.stop_grace_s


def _escalate_stop(info: RunInfo) -> bool:
    """SIGKILL a trainer whose stop was asked for over a grace period ago and which still
    runs. The process that asked (an app the user quit, a dropped SSH session) may be gone,
    so the queue worker's regular reap finishes the job; the next reap records `stopped`."""
    try:
        asked = float(stop_marker(info.rundir).read_text().strip())
    except (OSError, ValueError):
        return False
    if time.time() - asked <= stop_grace(info.rundir) + STOP_ESCALATE_SLACK_S:
        return False
    if not _is_our_trainer(info.pid, info.dir):
        return False
    _signal_group(info, signal.SIGKILL)
    return _wait_gone(info.pid or 0, time.time() + 5.0)


def reap_locked(ws: Workspace, runs: list[RunInfo]) -> list[RunInfo]:
    """`reap` for a caller that holds the queue lock and has scanned the runs. A stalled run
    (its trainer holds the lock) is left alone unless a stop of it is overdue: the user
    decides, with `amc-tui stop`, whether a paused trainer ends."""
    out = []
    for info in runs:
        if info.slurm_job_id and not info.slurm_settled:
            continue  # a Slurm job: its end is Slurm's to tell (slurm_runs.poll)
        info = with_trainer(ws, info)
        active = info.state in ("running", "stalled")
        if info.stored_state == "running" and active and _escalate_stop(info):
            info = read_live(ws, info.dir)  # now crashed-derived: recorded as stopped below
        if info.stored_state != "running" or info.state != "crashed":
            continue
        if info.host and info.host != socket.gethostname():
            continue  # another machine's trainer: only that machine can tell
        if _is_our_trainer(info.pid, info.dir):  # a live pid that is someone else's: dead
            beat = info.heartbeat_at or info.started_at or 0.0
            if time.time() - beat < HUNG_AFTER_S:
                continue  # alive but slow (e.g. loading data): leave it
            with contextlib.suppress(OSError):
                os.killpg(info.pgid or info.pid or -1, signal.SIGKILL)
        try:
            requeue_on_failure(ws, _record_dead(ws, info, exit_code=child_returncode(info.pid)))
        except (OSError, UserError) as e:  # a full disk, a status damaged meanwhile: next pass
            log.warning("recording the end of %s failed: %s", info.name, e)
            continue
        out.append(read_run(info.dir))
    _prune_records(ws, runs)
    return out


_caches: dict[Path, RunCache] = {}


def scan(ws: Workspace) -> list[RunInfo]:
    """All runs, through a per-workspace cache: the worker polls every second. The objects
    are the cache's own: read them, never change them."""
    cache = _caches.setdefault(ws.root, RunCache())
    return list_runs(ws, with_last_epoch=False, cache=cache, copy=False)


def reap(ws: Workspace) -> list[RunInfo]:
    """Record runs whose trainer died (state crashed, end event, RUNLOG) and requeue those
    with restart = "on-failure". Returns the runs it changed."""
    with queue_lock(ws):
        return reap_locked(ws, scan(ws))


# --------------------------------------------------------------------------- stop


def _wait_gone(pid: int, deadline: float) -> bool:
    while time.time() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return not pid_alive(pid)


def _signal_group(info: RunInfo, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(info.pgid or info.pid or -1, sig)


def _finish_stop(ws: Workspace, info: RunInfo, grace_s: float) -> RunInfo:
    pid = info.pid or 0
    if not _wait_gone(pid, time.time() + grace_s):
        _signal_group(info, signal.SIGKILL)
        _wait_gone(pid, time.time() + 5.0)
    rc = None
    with _children_lock:
        proc = _children.get(pid)
    if proc is not None:  # our own child: its exit code is known once reaped
        with contextlib.suppress(subprocess.TimeoutExpired):
            rc = proc.wait(timeout=5.0)
    with queue_lock(ws):
        now = read_live(ws, info.dir)
        if now.stored_state == "running":
            _record_dead(ws, now, exit_code=rc)
    return read_run(info.dir)


def holder_text(held: dict[str, Any]) -> str:
    """A run lock's holder for one-line messages: `pid 123 on host`."""
    return f"pid {held.get('pid') or '?'} on {held.get('host') or '?'}"


def _with_holder_pid(info: RunInfo) -> RunInfo:
    """A live trainer that has not written its pid yet is found through the run's lock."""
    if info.pid:
        return info
    held = runlock.holder(info.dir) or {}
    pid = held.get("pid") if held.get("host") in (None, socket.gethostname()) else None
    return dataclasses.replace(info, pid=pid) if isinstance(pid, int) else info


def stop_local(
    ws: Workspace, info: RunInfo, grace_s: float | None = None, wait: bool = True
) -> RunInfo:
    """SIGCONT then SIGTERM to the trainer's process group (it checkpoints and exits as
    `stopped`), then SIGKILL after the grace period (default run.stop_grace_s). SIGCONT first:
    a stalled trainer (SIGSTOP, a suspended job) must run to handle the SIGTERM. A run whose
    status.json is damaged is stopped through its lock's holder (then `repair` it). A queued
    run just leaves the queue. Stopping a finished run changes nothing. (`launch.stop` sends a
    run with an open Slurm job to Slurm instead.)"""
    if info.state == "queued":
        with queue_lock(ws):
            if read_run(info.dir).state == "queued":
                write_status(info.rundir, state="stopped", ended_at=time.time(), resume=False)
                append_event(
                    info.rundir,
                    "end",
                    state="stopped",
                    exit_code=None,
                    best=info.best,
                    recorded_by="launcher",
                )
        if info.started_at is not None:
            runlog_sync(info.dir, record=True)
        return read_run(info.dir)
    live = ("running", "stalled", "unknown")  # unknown: a damaged status, maybe a live trainer
    if info.state in live:
        info = _with_holder_pid(info)
        # a trainer just forked is the launcher's copy until it execs: wait for the exec
        deadline = time.time() + EXEC_WAIT_S
        while pid_alive(info.pid) and not _is_our_trainer(info.pid, info.dir):
            if time.time() > deadline:
                break
            time.sleep(0.05)
    if info.state not in live or not _is_our_trainer(info.pid, info.dir):
        return info
    if grace_s is None:
        grace_s = stop_grace(info.rundir)
    # a marker file, not status.json: the live trainer owns status.json (no lost updates)
    atomic_write_text(stop_marker(info.rundir), f"{time.time()}\n")
    _signal_group(info, signal.SIGCONT)
    _signal_group(info, signal.SIGTERM)
    if not wait:
        threading.Thread(
            target=_finish_stop, args=(ws, info, grace_s), name="amc-stop", daemon=True
        ).start()
        return read_live(ws, info.dir)
    return _finish_stop(ws, info, grace_s)
