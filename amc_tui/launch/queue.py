"""Queue passes: which queued run starts where, FIFO per device, under the queue lock.

A pass reaps first (a dead trainer frees its device), then places queued runs in the order
they were queued on a free CPU slot or GPU set, from the RunInfo it scanned: no status.json is
re-read per run, and each queued run's config.toml is read and validated once, then handed to
the spawn. Also the entry points that create or requeue a run and then work the queue.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import time
from collections.abc import Sequence
from typing import Any

from filelock import Timeout

from amc_tui.config import Config
from amc_tui.errors import UserError
from amc_tui.gpu import default_sampler, free_gpus
from amc_tui.launch import slurm_runs
from amc_tui.launch.create import create_run
from amc_tui.launch.group_gate import before_placement
from amc_tui.launch.keeper import ensure_worker, has_active, release, try_lock, write_record
from amc_tui.launch.state import LOCK_TIMEOUT_S
from amc_tui.launch.supervise import (
    clear_stop_marker,
    holder_text,
    queue_lock,
    read_live,
    reap_locked,
    run_info,
    scan,
    spawn,
)
from amc_tui.notify.observe import observe_workspace
from amc_tui.run import runlock
from amc_tui.run.refs import resolve_checkpoint
from amc_tui.run.rundir import RunInfo, read_run, run_config, write_status
from amc_tui.workspace import Workspace

log = logging.getLogger(__name__)
WORKER_POLL_S = 2.0


@dataclasses.dataclass
class _Slots:
    cpu_busy: bool
    gpu_busy: set[int]
    unknown_gpu_busy: bool


def _uses_gpu(info: RunInfo) -> bool:
    return bool(info.gpus) or info.device.startswith("cuda")


def _place(cfg: Config, slots: _Slots, snap_fn: Any) -> tuple[str, list[int]] | str:
    """(device kind, physical GPUs) for a queued run, or why it must wait (one line)."""

    dev, share = cfg.run.device, cfg.run.share_device
    snap = snap_fn() if dev != "cpu" else None
    want_gpu = dev.startswith("cuda") or (dev == "auto" and snap is not None and snap.ok)
    if not want_gpu:
        if slots.cpu_busy and not share:
            return "waiting for the CPU: another run uses it (run.share_device = true shares it)"
        return "cpu", []
    if snap is None or not snap.ok:  # CUDA asked for but NVML cannot tell: one at a time
        if slots.unknown_gpu_busy and not share:
            return "waiting for the GPU: another CUDA run holds one and NVML cannot tell which"
        return "cuda", []
    if isinstance(cfg.run.gpus, list) and cfg.run.gpus:
        wanted = list(cfg.run.gpus)
    elif dev.startswith("cuda:"):
        wanted = [int(dev[5:])]
    else:
        n = max(1, cfg.run.nproc)  # several processes start only when all their GPUs are free
        free = free_gpus(snap, slots.gpu_busy)
        if len(free) < n and share:
            free = [g.index for g in snap.gpus if not g.lost]
        if len(free) >= n:
            return "cuda", free[:n]
        return f"waiting for {n} free GPU{'s' if n > 1 else ''} ({len(free)} free now)"
    known = {g.index for g in snap.gpus}
    missing = [g for g in wanted if g not in known]
    if missing:  # the machine lost a GPU since the run was made: stays queued
        return f"GPU {missing[0]} is not on this machine (it has {len(known)})"
    taken = [g for g in wanted if g in slots.gpu_busy]
    if not share and taken:
        return f"waiting for GPU {','.join(map(str, taken))}: another run holds it"
    return "cuda", wanted


def _placement(cfg: Config, slots: _Slots, snap_fn: Any) -> tuple[str, list[int]] | None:
    """`_place` without the reason: None when the run must wait."""
    place = _place(cfg, slots, snap_fn)
    return None if isinstance(place, str) else place


def _note_waiting(info: RunInfo, why: str) -> None:
    """Keep why a queued run waits in its status.json (`ls`, `show`, the app), written only
    when it changes: no trainer lives, so the launcher owns the file."""
    if info.waiting != why:
        with contextlib.suppress(OSError, UserError):  # a full disk: said again next pass
            write_status(info.rundir, waiting=why)


def _queue_order(info: RunInfo) -> tuple[float, str]:
    queued = info.queued_at if info.queued_at is not None else info.created_at
    return (queued or 0.0, info.name)


def _work_locked(ws: Workspace) -> list[RunInfo]:
    runs = scan(ws)
    changed = {r.dir for r in reap_locked(ws, runs)}
    if any(slurm_runs.is_open(r) for r in runs):  # Slurm jobs: ended ones recorded
        changed |= {r.dir for r in slurm_runs.poll(ws, runs)}
    if changed:
        runs = [read_run(r.dir, with_last_epoch=False) if r.dir in changed else r for r in runs]
    runs, admit = before_placement(ws, runs)  # sweep groups: next trials, max_parallel
    running = [r for r in runs if r.state == "running" and not r.slurm_job_id]
    slots = _Slots(
        cpu_busy=any(not _uses_gpu(r) for r in running),
        gpu_busy={g for r in running for g in r.assigned_gpus},
        unknown_gpu_busy=any(_uses_gpu(r) and not r.assigned_gpus for r in running),
    )
    snap_cache: list[Any] = []

    def snap() -> Any:
        if not snap_cache:
            snap_cache.append(default_sampler().sample())
        return snap_cache[0]

    started: list[RunInfo] = []
    to_submit: list[tuple[RunInfo, Config]] = []  # Slurm schedules these, not the slots
    for info in sorted((r for r in runs if r.state == "queued"), key=_queue_order):
        held = runlock.holder(info.dir)
        if held is not None:  # a trainer still owns the folder: never a second one
            log.warning("%s stays queued: %s holds its lock", info.name, holder_text(held))
            continue
        try:
            cfg = run_config(info.rundir)
        except (OSError, UserError) as e:
            with contextlib.suppress(OSError, UserError):  # tried again next pass
                write_status(
                    info.rundir,
                    state="failed",
                    ended_at=time.time(),
                    error=f"unreadable config.toml: {e}",
                )
            continue
        if slurm_runs.uses_slurm(cfg):
            to_submit.append((info, cfg))
            continue
        place = _place(cfg, slots, snap)
        if not isinstance(place, str) and not admit(info):
            place = "waiting for a slot of its sweep group (max_parallel runs at a time)"
        if isinstance(place, str):
            _note_waiting(info, place)
            continue
        device, gpus = place
        try:
            started.append(spawn(ws, info, cfg, gpus, device))
        except (OSError, UserError) as e:  # a full disk, a status damaged meanwhile
            log.warning("starting %s failed: %s", info.name, e)
            continue
        if device == "cpu":
            slots.cpu_busy = True
        elif gpus:
            slots.gpu_busy.update(gpus)
        else:
            slots.unknown_gpu_busy = True
    if to_submit:
        started += slurm_runs.submit_queued(to_submit, admit.group)
    return started


def work_queue(ws: Workspace, timeout: float = 5.0) -> list[RunInfo]:
    """Reap, then start every queued run that can start now (FIFO per device), under the
    queue lock. Returns the runs started; [] when another process holds the lock."""
    try:
        with queue_lock(ws).acquire(timeout=timeout):
            return _work_locked(ws)
    except Timeout:
        return []


# --------------------------------------------------------------------------- entry points


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
    return read_live(ws, info.dir)


def resume_run(ws: Workspace, run: RunInfo | str, as_new: bool = False) -> RunInfo:
    """Continue a stopped, crashed or failed run: in the same directory with `--resume` (same
    id; events.jsonl continues; a run stopped before it ever started, e.g. a Slurm job
    cancelled while pending, is queued again from the start and submitted anew), or `as_new`: a new run seeded from its checkpoint with
    resumed_from set. Queued like any run; starts when its device is free."""
    info = run_info(ws, run)
    if info.state == "unknown" and not as_new:
        raise UserError(
            f"run {info.name}: {info.error}; nothing was changed "
            f"(amc-tui repair {info.name} rebuilds it)"
        )
    held = None if as_new else runlock.holder(info.dir)
    if held is not None:
        raise UserError(
            f"run {info.name} is {info.state}: its trainer ({holder_text(held)}) still holds "
            f"the run; stop it first (amc-tui stop {info.name})"
        )
    if as_new:
        ckpt, resumed_from = resolve_checkpoint(ws, str(info.dir), "run.resume")
        cfg = run_config(info.rundir)
        cfg.name = ""
        cfg.run.resume = str(ckpt)
        new = create_run(ws, cfg, resumed_from=resumed_from, check_data=False)
        work_queue(ws, timeout=LOCK_TIMEOUT_S)
        ensure_worker(ws)
        return read_live(ws, new.dir)
    if info.state in ("running", "queued", "submitted"):
        raise UserError(f"run {info.name} is already {info.state}")
    if info.state == "completed":
        raise UserError(f"run {info.name} is completed; use --as-new to train on from it")
    fresh = info.state == "stopped" and info.started_at is None and info.epoch == 0
    if not info.rundir.last_ckpt.is_file() and not fresh:
        raise UserError(
            f"run {info.name} has no checkpoint ({info.rundir.last_ckpt}) to resume from; "
            "start it again with `amc-tui run`"
        )
    with queue_lock(ws):
        clear_stop_marker(info.rundir)
        write_status(
            info.rundir,
            state="queued",
            resume=not fresh,  # stopped before it ever started: queued again from the start
            queued_at=time.time(),
            ended_at=None,
            exit_code=None,
            error=None,
        )
    work_queue(ws, timeout=LOCK_TIMEOUT_S)
    ensure_worker(ws)
    return read_live(ws, info.dir)


# --------------------------------------------------------------------------- worker loop


def run_worker(
    ws: Workspace,
    poll_s: float = WORKER_POLL_S,
    once: bool = False,
    until_idle: bool = True,
    on_start: Any = None,
    lock_fd: int | None = None,
) -> int:
    """Work the queue until no run wants a worker (the detached worker's loop and `amc-tui
    queue`), holding the worker lock (`lock_fd`: already taken by the spawner). Exits at once
    if another worker holds it. Before exiting it lets go of the lock and looks once more:
    a run queued by a command that saw the lock still held is then not left waiting."""
    fd = try_lock(ws) if lock_fd is None else lock_fd
    if fd is None:
        return 0
    write_record(fd, os.getpid())
    try:
        while True:
            for info in work_queue(ws, timeout=LOCK_TIMEOUT_S):
                if on_start:
                    on_start(info)
            observe_workspace(ws, scan(ws))  # notifications: runs ended, stalled, health, groups
            if once:
                return 0
            if until_idle and not has_active(ws, scan(ws)):
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
                if not has_active(ws, scan(ws)):
                    return 0
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    return 0  # a new worker took over
                write_record(fd, os.getpid())
                continue
            time.sleep(poll_s)
    finally:
        release(fd)
