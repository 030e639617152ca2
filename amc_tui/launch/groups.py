"""Launching a sweep group's members: create the group with every planned run queued (or
nothing at all), stop and resume the members. The record itself (group.json, members, summaries) is `sweeps.group`."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from amc_tui.config import with_data_path
from amc_tui.errors import UserError
from amc_tui.fsutil import atomic_write_json
from amc_tui.launch import slurm_runs
from amc_tui.launch.group_gate import queue_point, runlog_group
from amc_tui.launch.keeper import ensure_worker
from amc_tui.launch.queue import resume_run, work_queue
from amc_tui.launch.stop import stop_run
from amc_tui.launch.supervise import clear_stop_marker, queue_lock
from amc_tui.names import new_id
from amc_tui.run import runlock
from amc_tui.run.rundir import RunInfo, is_run_dir, read_run, write_status
from amc_tui.sweeps.group import (
    ACTIVE,
    GROUP_FILE,
    RESUMABLE,
    Group,
    check_group_name,
    groups_root,
    member_runs,
    point_dict,
    read_group,
    run_name,
    save,
    state_of,
    sweep_spec,
    update,
)
from amc_tui.sweeps.sweep import Sweep
from amc_tui.workspace import Workspace

log = logging.getLogger(__name__)


def create_group(ws: Workspace, sweep: Sweep, name: str) -> Group:
    """groups/<name>/group.json and every planned run, queued, or nothing at all. Runs are
    made under the queue lock, so no member starts before its group is complete on disk.
    An Optuna group starts with no points: the next queue pass asks its first trials."""

    check_group_name(name)
    planned = [] if sweep.adaptive else sweep.points()
    names = [run_name(name, p.index, k) for p in planned for k in range(sweep.repeats)]
    taken = [n for n in names if (ws.runs / n).exists()]
    if taken:
        raise UserError(f"run {taken[0]} already exists; name the group with --name")
    data = with_data_path(sweep.base_config, ws.root).data.path
    if not Path(data).is_file():
        raise UserError(f"data file not found: {data}; make a synthetic one with "
                        f"`amc-tui data synth {data}` or set data.path")  # fmt: skip
    root = groups_root(ws)
    root.mkdir(parents=True, exist_ok=True)
    group = Group(new_id(), name, root / name, time.time(), sweep.to_dict(), sweep_spec(sweep),
                  points=[point_dict(p) for p in planned])  # fmt: skip
    with queue_lock(ws):
        if group.dir.exists():
            raise UserError(f"a group named {name!r} already exists in {root}")
        tmp = Path(tempfile.mkdtemp(prefix=f".new-{name}-", dir=root))
        made: list[RunInfo] = []
        try:
            atomic_write_json(tmp / GROUP_FILE, group.to_json())
            os.rename(tmp, group.dir)
            memo: dict[Any, Any] = {}  # one scan of the workspace for the whole sweep
            for point in planned:
                made += queue_point(ws, group, sweep, point, memo)
            save(group)
        except BaseException:
            for info in made:
                shutil.rmtree(info.dir, ignore_errors=True)
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(group.dir, ignore_errors=True)
            raise
    runlog_group(ws, group)
    return group


# --------------------------------------------------------------------------- stop, resume


def stop_group(ws: Workspace, group: Group, grace_s: float | None = None) -> list[RunInfo]:
    """Mark the group stopped (Optuna asks no more trials), then stop its active members:
    queued ones at once, running ones by SIGTERM (they checkpoint), SIGKILL after `grace_s`
    (default: each run's run.stop_grace_s) from a thread of this process, so the caller
    waits with `wait_ended`; the open members of one Slurm job array with one scancel per
    step for the whole array (`slurm_runs.stop_array`). Returns the members asked to stop."""

    update(group, lambda g: setattr(g, "stopped", True))
    with queue_lock(ws):  # a queue pass that asked Optuna for a trial has saved its runs
        group = read_group(group.dir) or group
    infos = [i for i in member_runs(ws, group).values() if i is not None]
    active = [i for i in infos if i.state in ACTIVE]  # submitted and stalled ones too
    arrays: dict[str, list[RunInfo]] = defaultdict(list)
    for info in active:
        array = slurm_runs.array_of(info)
        if array is not None and info.state != "unknown":
            arrays[array].append(info)
    for array, tasks in list(arrays.items()):
        # an open task of the array this stop must not touch: each task on its own
        ids = {t.id for t in tasks}
        if any(slurm_runs.array_of(i) == array and i.id not in ids for i in infos):
            del arrays[array]
    in_array = {i.id for tasks in arrays.values() for i in tasks}
    asked = []
    for array, tasks in arrays.items():  # one scancel per array and step, not per member
        asked += slurm_runs.stop_array(ws, array, tasks, grace_s, wait=False)
    for info in active:
        if info.id not in in_array:
            asked.append(stop_run(ws, info, grace_s=grace_s, wait=False))
    runlog_group(ws, group)
    return asked


def wait_ended(ws: Workspace, group: Group, timeout: float) -> bool:
    """Wait until no member of the group is running and every member's trainer has let go of
    its run (a trainer writes `stopped`, then updates RUNLOG.md and exits: a `resume` before
    that is refused, the run still being held); False on timeout."""
    deadline = time.time() + timeout

    def ended(info: RunInfo | None) -> bool:
        return info is None or (state_of(info) not in ACTIVE and runlock.holder(info.dir) is None)

    while time.time() < deadline:
        if all(ended(i) for i in member_runs(ws, group).values()):
            return True
        time.sleep(0.2)
    return False


def _requeue(ws: Workspace, info: RunInfo) -> None:
    """Back to the queue: from its last checkpoint when it has one (resume_run), else from
    the beginning in the same folder (the trainer's --resume starts over without last.pt)."""

    if info.rundir.last_ckpt.is_file():
        resume_run(ws, info)
        return
    with queue_lock(ws):
        if read_run(info.dir, with_last_epoch=False).state not in RESUMABLE:
            return
        clear_stop_marker(info.rundir)
        write_status(info.rundir, state="queued", resume=True, queued_at=time.time(),
                     ended_at=None, exit_code=None, error=None)  # fmt: skip


def resume_group(ws: Workspace, group: Group) -> list[str]:
    """Requeue failed, crashed and stopped members, then clear the stop mark (an Optuna
    trial already told keeps its result: its runs are not repeated). Under the queue lock,
    so no queue pass sees the group unmarked with a member not yet requeued (it would tell
    that trial failed). Returns the names requeued."""

    def clear(g: Group) -> None:
        g.stopped, g.error = False, None

    names = []
    with queue_lock(ws):
        group = read_group(group.dir) or group
        told = {p["index"] for p in group.points if p.get("told")}
        for m in group.members:
            info = _member_run(ws, m)
            if info is not None and info.state in RESUMABLE and m["point"] not in told:
                _requeue(ws, info)
                names.append(info.name)
        update(group, clear)
    work_queue(ws)
    ensure_worker(ws)
    return names


def _member_run(ws: Workspace, member: dict[str, Any]) -> RunInfo | None:
    path = ws.runs / member["name"]
    return read_run(path, with_last_epoch=False) if is_run_dir(path) else None
