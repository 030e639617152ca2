"""Create, start, queue, stop, resume and reap trainer processes.

Every transition the launcher makes goes through files (status.json, events.jsonl, RUNLOG.md)
under the workspace's queue lock, so the TUI, `amc-tui run`, `amc-tui queue` and the detached
queue worker can all be alive at once and no run starts twice. Trainers run in their own
session and process group: they outlive the terminal, the TUI and an SSH hang-up.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from amc_tui import contract
from amc_tui.config import (
    Config,
    ConfigError,
    apply_overrides,
    from_dict,
    load_config,
    loads_config,
    with_data_path,
)
from amc_tui.errors import UserError
from amc_tui.fsutil import atomic_write_json, atomic_write_text
from amc_tui.names import check_name, new_id, new_name
from amc_tui.runs import (
    FINAL_STATES,
    STALE_AFTER_S,
    RunCache,
    RunDir,
    RunInfo,
    append_event,
    list_runs,
    pid_alive,
    read_meta,
    read_run,
    read_status,
    resolve_run,
    write_status,
)
from amc_tui.workspace import Workspace

log = logging.getLogger(__name__)

LOCK_TIMEOUT_S = 30.0
# A trainer whose pid is alive but whose heartbeat is this old is hung: reap kills it.
HUNG_AFTER_S = 20 * STALE_AFTER_S
STOP_ESCALATE_SLACK_S = 2.0  # past the grace period, before the worker's SIGKILL
WORKER_POLL_S = 2.0
TRAINER_MODULE = "amc_tui.train"
# Another trainer module (same CLI and file contract) for tests and custom trainers.
TRAINER_ENV = "AMC_TUI_TRAINER_MODULE"


# --------------------------------------------------------------------------- locks, counter


def _state_dir(ws: Workspace) -> Path:
    ws.state_dir.mkdir(parents=True, exist_ok=True)
    return ws.state_dir


def _lock(path: Path) -> FileLock:
    """A process-wide singleton lock per path: reentrant in one thread, exclusive across
    threads and processes. Pass other timeouts to `acquire`, not here (singletons must be
    built with the same arguments)."""
    return FileLock(path, timeout=LOCK_TIMEOUT_S, is_singleton=True)


def queue_lock(ws: Workspace) -> FileLock:
    """Held while reaping and starting queued runs, so no run starts twice."""
    return _lock(_state_dir(ws) / "queue.lock")


def next_counter(ws: Workspace) -> int:
    """The workspace's run counter, incremented under a lock: two processes creating runs at
    once get distinct N. A missing counter restarts past the highest N among run folders."""
    state = _state_dir(ws)
    with _lock(state / "counter.lock"):
        path = state / "counter"
        try:
            current = int(path.read_text().strip())
        except (OSError, ValueError):
            current = _highest_suffix(ws)
        atomic_write_text(path, f"{current + 1}\n")
        return current + 1


def _highest_suffix(ws: Workspace) -> int:
    best = 0
    with contextlib.suppress(OSError):
        for entry in os.scandir(ws.runs):
            m = re.search(r"-(\d+)$", entry.name)
            if m:
                best = max(best, int(m.group(1)))
    return best


# --------------------------------------------------------------------------- create


def _git_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _load(
    ws: Workspace, config: str | os.PathLike[str] | Config, overrides: Sequence[str]
) -> Config:
    if isinstance(config, Config):
        if not overrides:
            return from_dict(config.to_dict())
        return from_dict(apply_overrides(config.to_dict(), list(overrides)))
    return load_config(ws.resolve(config), list(overrides))


def _checkpoint_of(info: RunInfo) -> Path:
    rd = info.rundir
    for ckpt in (rd.last_ckpt, rd.best_ckpt):
        if ckpt.is_file():
            return ckpt
    raise UserError(
        f"run {info.name} ({info.id}) has no checkpoint to resume from in {rd.checkpoints}"
    )


def _resolve_resume(ws: Workspace, ref: str) -> tuple[str, dict[str, Any] | None]:
    """run.resume as an absolute checkpoint path (+ resumed_from for meta.json)."""
    p = ws.resolve(ref)
    if p.is_file():
        return str(p.resolve()), {"id": None, "name": None, "checkpoint": str(p.resolve())}
    try:
        src = resolve_run(ws, ref)
    except UserError as e:
        raise ConfigError(f"[run] resume = {ref!r}: not a checkpoint file, and {e}") from None
    ckpt = str(_checkpoint_of(src).resolve())
    return ckpt, {"id": src.id, "name": src.name, "checkpoint": ckpt}


def _baseline(ws: Workspace, cfg: Config, cells: dict[str, int]) -> dict[str, Any] | None:
    """The best earlier finished run on the same task and metric, frozen into meta.json so
    the RUNLOG finding 'against the best earlier run' renders from this run's files alone."""
    metric = cfg.train.select_metric
    best: dict[str, Any] | None = None
    for info in list_runs(ws, with_last_epoch=False):
        if info.state not in FINAL_STATES or not info.best or info.best.get("metric") != metric:
            continue
        meta = read_meta(info.rundir)
        if meta.get("cells") not in (None, cells):
            continue
        value = info.best.get("value")
        if not isinstance(value, int | float):
            continue
        if best is None or contract.is_better(float(value), best["value"], metric):
            best = {
                "id": info.id,
                "name": info.name,
                "metric": metric,
                "value": float(value),
                "epoch": info.best.get("epoch"),
            }
    return best


def create_run(
    ws: Workspace,
    config: str | os.PathLike[str] | Config,
    overrides: Sequence[str] = (),
    name: str | None = None,
    *,
    resumed_from: dict[str, Any] | None = None,
    argv: Sequence[str] | None = None,
    check_data: bool = True,
) -> RunInfo:
    """A new queued run directory (config.toml, meta.json, status.json); nothing started.

    Built in a temp folder under the state dir and renamed into runs/ in one step, so a bad
    name, config or data path leaves nothing behind.
    """
    from amc_tui.config import dumps_config
    from amc_tui.data.classes import resolve_classes, snr_range

    if name is not None:
        try:
            check_name(name)
        except ValueError as e:
            raise UserError(str(e)) from None
    cfg = with_data_path(_load(ws, config, overrides), ws.root)
    if check_data and not Path(cfg.data.path).is_file():
        raise UserError(
            f"data file not found: {cfg.data.path}; make a synthetic one with "
            f"`amc-tui data synth {cfg.data.path}` or set data.path"
        )
    if cfg.run.resume:
        cfg.run.resume, found = _resolve_resume(ws, cfg.run.resume)
        resumed_from = resumed_from or found
    chosen = name or cfg.name or None
    if chosen and (ws.runs / chosen).exists():
        raise UserError(f"a run named {chosen!r} already exists in {ws.runs}")
    counter = next_counter(ws)
    if not chosen:
        for _ in range(50):
            chosen = new_name(counter)
            if not (ws.runs / chosen).exists():
                break
    assert chosen is not None
    cfg.name = chosen
    run_id = new_id()
    cells = {
        "classes": len(resolve_classes(cfg.data.classes)),
        "snrs": len(snr_range(cfg.data.snr_min, cfg.data.snr_max)),
    }
    now = time.time()
    meta = {
        "id": run_id,
        "name": chosen,
        "created_at": now,
        "host": socket.gethostname(),
        "argv": list(sys.argv if argv is None else argv),
        "git_commit": _git_commit(ws.root),
        "resumed_from": resumed_from,
        "workspace": str(ws.root),
        "arch": cfg.model.arch,
        "epochs": cfg.train.epochs,
        "tags": list(cfg.tags),
        "phase": cfg.phase,
        "notes": cfg.notes,
        "select_metric": cfg.train.select_metric,
        "config_hash": cfg.hash(),
        "cells": cells,
        "baseline": _baseline(ws, cfg, cells),
    }
    ws.runs.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"new-{chosen}-", dir=_state_dir(ws)))
    try:
        tmp.chmod(0o755)
        rd = RunDir(tmp)
        atomic_write_text(rd.config, dumps_config(cfg))
        atomic_write_json(rd.meta, meta)
        atomic_write_json(
            rd.status, {"state": "queued", "queued_at": now, "epochs": cfg.train.epochs}
        )
        final = ws.runs / chosen
        if final.exists():
            raise UserError(f"a run named {chosen!r} already exists in {ws.runs}")
        try:
            os.rename(tmp, final)  # tmp is non-empty: fails if `final` appeared meanwhile
        except OSError as e:
            raise UserError(f"cannot create run folder {final}: {e.strerror}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return read_run(final)


# --------------------------------------------------------------------------- runlog hook


def runlog_sync(run_dir: Path) -> None:
    """Re-render the run's RUNLOG entry; a RUNLOG problem never breaks run management."""
    try:
        from amc_tui.runlog import runlog_path_for, sync_entry

        sync_entry(run_dir, runlog_path_for(run_dir))
    except Exception as e:  # noqa: BLE001
        log.warning("RUNLOG update for %s failed: %s", run_dir, e)


# --------------------------------------------------------------------------- spawn


_children: dict[int, subprocess.Popen[bytes]] = {}
_children_lock = threading.Lock()


def _read_config(rd: RunDir) -> Config:
    return loads_config(rd.config.read_text(encoding="utf-8"), str(rd.config))


def _base_env() -> dict[str, str]:
    """Our environment, unbuffered, with this package importable from the child."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    pkg_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_root, env.get("PYTHONPATH", "")) if p)
    return env


def _trainer_env(gpus: list[int] | None, cfg: Config) -> dict[str, str]:
    env = _base_env()
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in gpus)
    elif cfg.run.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def _trainer_module() -> str:
    return os.environ.get(TRAINER_ENV) or TRAINER_MODULE


def _tail(path: Path, nbytes: int = 2000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - nbytes))
            return f.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _spawn(ws: Workspace, info: RunInfo, gpus: list[int], device: str) -> RunInfo:
    """Start the trainer for a queued run (caller holds the queue lock)."""
    rd = info.rundir
    cfg = _read_config(rd)
    status = read_status(rd)
    resume = bool(status.get("resume")) or rd.last_ckpt.is_file()
    argv = [sys.executable, "-m", _trainer_module(), "--run-dir", str(rd.path)]
    if resume:
        argv.append("--resume")
    now = time.time()
    first = {"first_started_at": now} if status.get("first_started_at") is None else {}
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
    )
    try:
        with open(rd.log, "ab") as logf:
            logf.write(
                f"--- amc-tui: starting trainer at {time.ctime(now)}: {' '.join(argv)}\n".encode()
            )
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
        runlog_sync(rd.path)
        return read_run(rd.path)
    write_status(rd, pid=proc.pid, pgid=proc.pid)
    with _children_lock:
        _children[proc.pid] = proc
    threading.Thread(
        target=_wait_child, args=(ws, rd, proc), name=f"amc-wait-{proc.pid}", daemon=True
    ).start()
    runlog_sync(rd.path)
    return read_run(rd.path)


def _wait_child(ws: Workspace, rd: RunDir, proc: subprocess.Popen[bytes]) -> None:
    """Reap our trainer child (no zombies) and record how it ended if it could not."""
    rc = proc.wait()

    def left_running() -> bool:
        status = read_status(rd)
        return status.get("state") == "running" and status.get("pid") == proc.pid

    try:
        if left_running():
            with queue_lock(ws):
                # again under the lock: a reap may meanwhile have recorded this trainer and
                # started the run's restart, whose live trainer must not be recorded dead
                if left_running():
                    _requeue_on_failure(ws, _record_dead(ws, read_run(rd.path), exit_code=rc))
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


def _stop_marker(rd: RunDir) -> Path:
    """Written by stop_run before SIGTERM: a trainer that then dies is `stopped`, not crashed."""
    return rd.path / ".stop_requested"


def _is_our_trainer(pid: int | None, run_dir: Path) -> bool:
    """Guard against pid reuse before signalling: the process must be this run's trainer."""
    if not pid or not pid_alive(pid):
        return False
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc: trust the pid
    return _trainer_module().encode() in cmd and os.fsencode(str(run_dir)) in cmd


def _record_dead(ws: Workspace, info: RunInfo, exit_code: int | None = None) -> RunInfo:
    """A trainer that left status 'running' behind: record crashed (or stopped if a stop was
    requested), an `end` event and the final RUNLOG entry."""
    rd = info.rundir
    status = read_status(rd)
    stopping = _stop_marker(rd).exists()
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
        else (f"trainer process {info.pid} {why} without recording an end state\n" + _tail(rd.log))
    )
    write_status(rd, state=state, ended_at=time.time(), exit_code=exit_code, error=error)
    append_event(
        rd, "end", state=state, exit_code=exit_code, best=status.get("best"), recorded_by="launcher"
    )
    runlog_sync(rd.path)
    return read_run(rd.path)


def _requeue_on_failure(ws: Workspace, info: RunInfo) -> bool:
    """restart = "on-failure": a crashed run goes back to the queue (resume from last.pt)
    up to max_restarts times, with a `restart` event."""
    if info.stored_state != "crashed":
        return False
    try:
        cfg = _read_config(info.rundir)
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


def _stop_grace(rd: RunDir) -> float:
    """The run's run.stop_grace_s (the default when its config cannot be read)."""
    try:
        return _read_config(rd).run.stop_grace_s
    except (OSError, UserError):
        return Config().run.stop_grace_s


def _escalate_stop(info: RunInfo) -> bool:
    """SIGKILL a trainer whose stop was asked for over a grace period ago and which still
    runs. The process that asked (an app the user quit, a dropped SSH session) may be gone,
    so the queue worker's regular reap finishes the job; the next reap records `stopped`."""
    try:
        asked = float(_stop_marker(info.rundir).read_text().strip())
    except (OSError, ValueError):
        return False
    if time.time() - asked <= _stop_grace(info.rundir) + STOP_ESCALATE_SLACK_S:
        return False
    if not _is_our_trainer(info.pid, info.dir):
        return False
    _signal_group(info, signal.SIGKILL)
    return _wait_gone(info.pid or 0, time.time() + 5.0)


def _reap_locked(ws: Workspace, runs: list[RunInfo]) -> list[RunInfo]:
    out = []
    for info in runs:
        if info.stored_state == "running" and info.state == "running" and _escalate_stop(info):
            info = read_run(info.dir)  # now crashed-derived: recorded as stopped below
        if info.stored_state != "running" or info.state != "crashed":
            continue
        if info.host and info.host != socket.gethostname():
            continue  # another machine's trainer: only that machine can tell
        if pid_alive(info.pid):
            beat = info.heartbeat_at or info.started_at or 0.0
            if time.time() - beat < HUNG_AFTER_S or not _is_our_trainer(info.pid, info.dir):
                continue  # alive but slow (e.g. loading data): leave it
            with contextlib.suppress(OSError):
                os.killpg(info.pgid or info.pid, signal.SIGKILL)
        rec = _record_dead(ws, info, exit_code=child_returncode(info.pid))
        _requeue_on_failure(ws, rec)
        out.append(read_run(info.dir))
    return out


def reap(ws: Workspace) -> list[RunInfo]:
    """Record runs whose trainer died (state crashed, end event, RUNLOG) and requeue those
    with restart = "on-failure". Returns the runs it changed."""
    with queue_lock(ws):
        return _reap_locked(ws, _scan(ws))


# --------------------------------------------------------------------------- queue


@dataclasses.dataclass
class _Slots:
    cpu_busy: bool
    gpu_busy: set[int]
    unknown_gpu_busy: bool


def _uses_gpu(info: RunInfo) -> bool:
    return bool(info.gpus) or info.device.startswith("cuda")


def _assigned(info: RunInfo) -> list[int]:
    status = read_status(info.rundir)
    got = status.get("assigned_gpus")
    return [g for g in got if isinstance(g, int)] if isinstance(got, list) else info.gpus


def _placement(cfg: Config, slots: _Slots, snap_fn: Any) -> tuple[str, list[int]] | None:
    """(device kind, physical GPUs) for a queued run, or None when it must wait."""
    from amc_tui.gpu import free_gpus

    dev, share = cfg.run.device, cfg.run.share_device
    snap = snap_fn() if dev != "cpu" else None
    want_gpu = dev.startswith("cuda") or (dev == "auto" and snap is not None and snap.ok)
    if not want_gpu:
        if slots.cpu_busy and not share:
            return None
        return "cpu", []
    if snap is None or not snap.ok:  # CUDA asked for but NVML cannot tell: one at a time
        if slots.unknown_gpu_busy and not share:
            return None
        return "cuda", []
    if isinstance(cfg.run.gpus, list) and cfg.run.gpus:
        wanted = list(cfg.run.gpus)
    elif dev.startswith("cuda:"):
        wanted = [int(dev[5:])]
    else:
        free = free_gpus(snap, slots.gpu_busy)
        if not free and share:
            free = [g.index for g in snap.gpus if not g.lost]
        return ("cuda", free[:1]) if free else None
    known = {g.index for g in snap.gpus}
    if any(g not in known for g in wanted):
        return None  # asked for a GPU this machine does not have: stays queued
    if not share and any(g in slots.gpu_busy for g in wanted):
        return None
    return "cuda", wanted


def _queue_order(info: RunInfo) -> tuple[float, str]:
    status = read_status(info.rundir)
    q = status.get("queued_at")
    return (float(q) if isinstance(q, int | float) else info.created_at or 0.0, info.name)


_caches: dict[Path, RunCache] = {}


def _scan(ws: Workspace) -> list[RunInfo]:
    """All runs, through a per-workspace cache: the worker polls every second."""
    cache = _caches.setdefault(ws.root, RunCache())
    return list_runs(ws, with_last_epoch=False, cache=cache, copy=False)


def _work_locked(ws: Workspace) -> list[RunInfo]:
    from amc_tui.gpu import default_sampler

    runs = _scan(ws)
    changed = {r.dir for r in _reap_locked(ws, runs)}
    if changed:
        runs = [read_run(r.dir, with_last_epoch=False) if r.dir in changed else r for r in runs]
    running = [(r, _assigned(r)) for r in runs if r.state == "running"]  # one read each
    slots = _Slots(
        cpu_busy=any(not _uses_gpu(r) for r, _ in running),
        gpu_busy={g for _, got in running for g in got},
        unknown_gpu_busy=any(_uses_gpu(r) and not got for r, got in running),
    )
    snap_cache: list[Any] = []

    def snap() -> Any:
        if not snap_cache:
            snap_cache.append(default_sampler().sample())
        return snap_cache[0]

    started = []
    for info in sorted((r for r in runs if r.state == "queued"), key=_queue_order):
        try:
            cfg = _read_config(info.rundir)
        except (OSError, UserError) as e:
            write_status(
                info.rundir,
                state="failed",
                ended_at=time.time(),
                error=f"unreadable config.toml: {e}",
            )
            continue
        place = _placement(cfg, slots, snap)
        if place is None:
            continue
        device, gpus = place
        new = _spawn(ws, info, gpus, device)
        started.append(new)
        if device == "cpu":
            slots.cpu_busy = True
        elif gpus:
            slots.gpu_busy.update(gpus)
        else:
            slots.unknown_gpu_busy = True
    return started


def work_queue(ws: Workspace, timeout: float = 5.0) -> list[RunInfo]:
    """Reap, then start every queued run that can start now (FIFO per device), under the
    queue lock. Returns the runs started; [] when another process holds the lock."""
    try:
        with queue_lock(ws).acquire(timeout=timeout):
            return _work_locked(ws)
    except Timeout:
        return []


def start_run(ws: Workspace, run: RunInfo | str) -> RunInfo:
    """Start a queued run now if its device is free; otherwise it stays queued."""
    info = _info(ws, run)
    if info.state != "queued":
        raise UserError(f"run {info.name} is {info.state}, not queued")
    work_queue(ws, timeout=LOCK_TIMEOUT_S)
    return read_run(info.dir)


def has_active(ws: Workspace) -> bool:
    return any(r.state in ("queued", "running") for r in _scan(ws))


def launch(
    ws: Workspace,
    config: str | os.PathLike[str] | Config,
    overrides: Sequence[str] = (),
    name: str | None = None,
    gpus: list[int] | None = None,
    detach: bool = True,
) -> RunInfo:
    """Create a run and start it now, or leave it queued for whoever works the queue next.
    With `detach`, a detached queue worker is left alive while runs are active, so queued
    runs start (and crashed ones restart) with no amc-tui process open."""
    extra = list(overrides) + ([f"run.gpus={json.dumps(gpus)}"] if gpus is not None else [])
    info = create_run(ws, config, extra, name)
    work_queue(ws, timeout=LOCK_TIMEOUT_S)
    if detach:
        ensure_worker(ws)
    return read_run(info.dir)


# --------------------------------------------------------------------------- detached worker


def worker_alive(ws: Workspace) -> bool:
    lock = FileLock(_state_dir(ws) / "worker.lock", timeout=0)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


def ensure_worker(ws: Workspace) -> bool:
    """Leave a detached `python -m amc_tui.queue_worker` alive if runs are active and none is
    running. Returns True when one was started."""
    if os.environ.get("AMC_TUI_NO_WORKER") == "1" or not has_active(ws) or worker_alive(ws):
        return False
    logf = open(_state_dir(ws) / "worker.log", "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "amc_tui.queue_worker", "--workspace", str(ws.root)],
            cwd=ws.root,
            env=_base_env(),
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    finally:
        logf.close()
    threading.Thread(target=proc.wait, name="amc-worker-wait", daemon=True).start()
    return True


def run_worker(
    ws: Workspace,
    poll_s: float = WORKER_POLL_S,
    once: bool = False,
    until_idle: bool = True,
    on_start: Any = None,
) -> int:
    """Work the queue until no run is queued or running (the detached worker's loop and
    `amc-tui queue`). Exits at once if another worker holds the worker lock."""
    lock = _lock(_state_dir(ws) / "worker.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return 0
    try:
        while True:
            for info in work_queue(ws, timeout=LOCK_TIMEOUT_S):
                if on_start:
                    on_start(info)
            if once or (until_idle and not has_active(ws)):
                return 0
            time.sleep(poll_s)
    finally:
        lock.release()


# --------------------------------------------------------------------------- stop, resume


def _info(ws: Workspace, run: RunInfo | str | os.PathLike[str]) -> RunInfo:
    if isinstance(run, RunInfo):
        return read_run(run.dir)
    if isinstance(run, os.PathLike):
        return read_run(run)
    return resolve_run(ws, run)


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
        now = read_run(info.dir)
        if now.stored_state == "running":
            _record_dead(ws, now, exit_code=rc)
    return read_run(info.dir)


def stop_run(
    ws: Workspace, run: RunInfo | str, grace_s: float | None = None, wait: bool = True
) -> RunInfo:
    """SIGTERM to the trainer's process group (it checkpoints and exits as `stopped`), then
    SIGKILL after the grace period (default run.stop_grace_s). A queued run just leaves the
    queue. Stopping a finished run changes nothing."""
    info = _info(ws, run)
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
            runlog_sync(info.dir)
        return read_run(info.dir)
    if info.state != "running" or not _is_our_trainer(info.pid, info.dir):
        return info
    if grace_s is None:
        grace_s = _stop_grace(info.rundir)
    # a marker file, not status.json: the live trainer owns status.json (no lost updates)
    atomic_write_text(_stop_marker(info.rundir), f"{time.time()}\n")
    _signal_group(info, signal.SIGTERM)
    if not wait:
        threading.Thread(
            target=_finish_stop, args=(ws, info, grace_s), name="amc-stop", daemon=True
        ).start()
        return read_run(info.dir)
    return _finish_stop(ws, info, grace_s)


def resume_run(ws: Workspace, run: RunInfo | str, as_new: bool = False) -> RunInfo:
    """Continue a stopped, crashed or failed run: in the same directory with `--resume` (same
    id; events.jsonl continues), or `as_new`: a new run seeded from its checkpoint with
    resumed_from set. Queued like any run; starts when its device is free."""
    info = _info(ws, run)
    if as_new:
        ckpt = _checkpoint_of(info)
        cfg = _read_config(info.rundir)
        cfg.name = ""
        cfg.run.resume = str(ckpt.resolve())
        new = create_run(
            ws,
            cfg,
            resumed_from={"id": info.id, "name": info.name, "checkpoint": str(ckpt)},
            check_data=False,
        )
        work_queue(ws, timeout=LOCK_TIMEOUT_S)
        ensure_worker(ws)
        return read_run(new.dir)
    if info.state in ("running", "queued"):
        raise UserError(f"run {info.name} is already {info.state}")
    if info.state == "completed":
        raise UserError(f"run {info.name} is completed; use --as-new to train on from it")
    if not info.rundir.last_ckpt.is_file():
        raise UserError(
            f"run {info.name} has no checkpoint ({info.rundir.last_ckpt}) to resume from; "
            "start it again with `amc-tui run`"
        )
    with queue_lock(ws):
        with contextlib.suppress(OSError):
            _stop_marker(info.rundir).unlink()
        write_status(
            info.rundir,
            state="queued",
            resume=True,
            queued_at=time.time(),
            ended_at=None,
            exit_code=None,
            error=None,
        )
    work_queue(ws, timeout=LOCK_TIMEOUT_S)
    ensure_worker(ws)
    return read_run(info.dir)


__all__ = [
    "create_run", "launch", "start_run", "stop_run", "resume_run", "work_queue", "reap",
    "ensure_worker", "run_worker", "next_counter", "queue_lock", "child_returncode",
    "runlog_sync", "has_active", "worker_alive",
]  # fmt: skip
