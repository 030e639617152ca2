"""What the run queue asks of sweep groups, once per queue pass, under the queue lock.

`before_placement` first advances Optuna groups: each trial whose runs all ended is told
its result (the mean of the sweep metric over its completed repeats; none completed: a
failed trial), and new trials are asked as slots free up, their runs created queued. Only
the process holding the queue lock asks, so no trial is asked twice, and a told trial is
never run again. Then it returns `admit`, the check that keeps a group within
`max_parallel` running members (a member resumed by hand in a stopped group may start). Without a
`max_parallel`, an Optuna group keeps one trial in flight (TPE learns from each result);
with one, max_parallel // repeats trials.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from amc_tui.launch.create import create_run
from amc_tui.run.rundir import FINAL_STATES, RunInfo
from amc_tui.runlog.group_entry import sync_group
from amc_tui.sweeps.group import (
    Group,
    complete,
    group_lock,
    group_sweep,
    list_groups,
    members,
    point_dict,
    read_group,
    run_name,
    save,
    state_of,
    update,
)
from amc_tui.sweeps.sweep import Point, Sweep, SweepError, ask_point, optuna_study, tell
from amc_tui.workspace import Workspace

log = logging.getLogger(__name__)


def queue_point(
    ws: Workspace, group: Group, sweep: Sweep, point: Point, memo: dict[Any, Any] | None = None
) -> list[RunInfo]:
    """Create the repeats of one point as queued runs and add them to `group` (not saved);
    `memo` is shared by every run made in one go (`create_run`)."""

    made = []
    memo = {} if memo is None else memo
    for run in sweep.repeat_runs(point):
        meta = {"group": group.name, "point": point.values, "repeat": run.repeat}
        info = create_run(ws, run.config, name=run_name(group.name, point.index, run.repeat),
                          meta_extra=meta, check_data=True, memo=memo)  # fmt: skip
        made.append(info)
        group.members.append({"id": info.id, "name": info.name, "point": point.index,
                              "repeat": run.repeat, "seed": run.seed})  # fmt: skip
    return made


def runlog_group(ws: Workspace, group: Group) -> None:
    try:
        sync_group(ws, group)
    except Exception as e:  # noqa: BLE001 - a RUNLOG problem never breaks the sweep
        log.warning("RUNLOG update for group %s failed: %s", group.name, e)


class Admission:
    """`admit(info)`: may this queued run start now? False for a member of a group with
    max_parallel members running; True counts it. `group(info)`: the run's group, or None
    (a Slurm queue pass submits a group's members as one job array)."""

    def __init__(self, group_of: dict[str, Group], running: Counter[str]) -> None:
        self.group_of, self.running = group_of, running

    def group(self, info: RunInfo) -> Group | None:
        return self.group_of.get(info.id)

    def __call__(self, info: RunInfo) -> bool:
        g = self.group_of.get(info.id)
        if g is None:
            return True
        if g.max_parallel and self.running[g.name] >= g.max_parallel:
            return False
        self.running[g.name] += 1
        return True


def before_placement(ws: Workspace, runs: list[RunInfo]) -> tuple[list[RunInfo], Admission]:
    """Called by a queue pass under the queue lock, after reaping: advance Optuna groups
    (tell ended trials, queue the next ones; the new runs are added to `runs`) and return
    `admit(info)`, which says whether a queued run may start now (False for a member of a
    group with max_parallel members running) and counts it."""
    groups = list_groups(ws)
    if not groups:
        return runs, Admission({}, Counter())
    by_id = {r.id: r for r in runs}
    added: list[RunInfo] = []
    for g in groups:
        if g.adaptive and not g.stopped and not g.error and not complete(g):
            added += _advance(ws, g, by_id)
    runs = runs + added  # the advanced groups' member lists include the new runs
    group_of = {m["id"]: g for g in groups for m in g.members}
    running: Counter[str] = Counter(
        group_of[r.id].name for r in runs if r.state == "running" and r.id in group_of
    )
    return runs, Admission(group_of, running)


def _in_flight(g: Group) -> int:
    return max(1, g.max_parallel // g.repeats) if g.max_parallel else 1


def trial_value(g: Group, point: dict[str, Any], infos: dict[str, RunInfo | None]) -> float | None:
    """The mean of the sweep metric (best epoch) over the point's completed runs."""
    ms = [m for m in members(g, infos, point["index"]) if m.usable]
    vals = [v for m in ms if (v := m.value(g.metric, "best")) is not None]
    return sum(vals) / len(vals) if vals else None


def _advance(ws: Workspace, g: Group, by_id: dict[str, RunInfo]) -> list[RunInfo]:
    """Tell Optuna each trial whose runs all ended; ask new trials while fewer than the
    in-flight limit are open and the budget lasts. A failure marks the group `error` (so
    the worker does not retry it forever) and is logged."""
    infos: dict[str, RunInfo | None] = {m["id"]: by_id.get(m["id"]) for m in g.members}
    to_tell = [
        p for p in g.points
        if not p.get("told") and g.point_members(p["index"])
        and all(state_of(infos[m["id"]]) in FINAL_STATES | {"missing"}
                for m in g.point_members(p["index"]))
    ]  # fmt: skip
    open_trials = sum(1 for p in g.points if not p.get("told")) - len(to_tell)
    n_new = min(g.n_points - len(g.points), _in_flight(g) - open_trials)
    if not to_tell and n_new <= 0:
        return []
    try:
        return _tell_and_ask(ws, g, infos, to_tell, n_new)
    except Exception as e:  # noqa: BLE001 - recorded on the group, never breaks the queue
        why = f"{type(e).__name__}: {e}"
        log.warning("optuna group %s: %s", g.name, why)
        update(g, lambda x: setattr(x, "error", why))
        return []


def _tell_and_ask(
    ws: Workspace,
    g: Group,
    infos: dict[str, RunInfo | None],
    to_tell: list[dict[str, Any]],
    n_new: int,
) -> list[RunInfo]:
    sweep = group_sweep(g)
    study = optuna_study(g.dir, sweep)
    for p in to_tell:
        value = trial_value(g, p, infos)
        tell(study, p["trial"], value)
        p.update(told=True, value=value)
    made: list[RunInfo] = []
    for _ in range(max(0, n_new)):
        index = len(g.points)
        try:
            number, values = ask_point(study, sweep)
        except SweepError as e:  # the trial is told failed by ask_point
            g.points.append({"index": index, "key": f"p{index}", "label": str(e),
                             "values": {}, "trial": None, "told": True, "value": None,
                             "error": str(e)})  # fmt: skip
            continue
        point = sweep.point(index, values)
        g.points.append(point_dict(point, trial=number))
        made += queue_point(ws, g, sweep, point)
    with group_lock(g):
        fresh = read_group(g.dir)
        if fresh is not None:
            g.stopped, g.error = fresh.stopped, fresh.error
        save(g)
    runlog_group(ws, g)
    return made
