"""The launcher's side of run.executor = "slurm": submit queued runs, follow their jobs,
record how they ended, stop them. (`amc_tui.launch.slurm` talks to submitit and Slurm; this module
decides what that means for a run.)

A queue pass submits every queued Slurm run: members of one sweep group together as one job
array (at most the group's max_parallel running at once), any other run as one job. The run
becomes `submitted` with its job id; the trainer on the node owns status.json from its first
write (`running`, as for a local run). While a run's job is open, queue passes ask Slurm about
all open jobs in one call, at most every `poll_interval()` seconds, and settle a job that has
ended: the trainer's own final state wins (it knows why it stopped), except a stop that Slurm
caused (time limit, preemption), which is `crashed` so the restart policy resumes it from
last.pt; a trainer that died without a word is `crashed` (it had started) or takes Slurm's
word (it never started: a bad setup line, no resources), with Slurm's log in the error.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from amc_tui import contract
from amc_tui.config import Config
from amc_tui.errors import UserError
from amc_tui.fsutil import atomic_write_text
from amc_tui.launch import slurm
from amc_tui.launch.slurm_state import FINAL, amc_state, effective_state
from amc_tui.launch.supervise import (
    HUNG_AFTER_S,
    STOP_ESCALATE_SLACK_S,
    log_tail,
    queue_lock,
    requeue_on_failure,
    runlog_sync,
    stop_grace,
    stop_marker,
)
from amc_tui.run.rundir import (
    FINAL_STATES,
    RunInfo,
    append_event,
    read_run,
    read_status,
    write_status,
)
from amc_tui.workspace import Workspace

log = logging.getLogger(__name__)

POLL_ENV = "AMC_TUI_SLURM_POLL_S"  # seconds between two questions to Slurm (default 15)
DEFAULT_POLL_S = 15.0
_last_poll: dict[Path, float] = {}
HUNG_MARKER = ".slurm_hung"  # amc-tui cancelled the job of a trainer that stopped beating


def poll_interval() -> float:
    try:
        return max(0.0, float(os.environ.get(POLL_ENV, DEFAULT_POLL_S)))
    except ValueError:
        return DEFAULT_POLL_S


def uses_slurm(cfg: Config) -> bool:
    return cfg.run.executor == "slurm"


def is_open(info: RunInfo) -> bool:
    """The run has a Slurm job whose end is not recorded yet."""
    return bool(info.slurm_job_id) and not info.slurm_settled


# --------------------------------------------------------------------------- submit


def _fail(info: RunInfo, error: str) -> None:
    """A run that could not be submitted: `failed` with Slurm's message, an end event."""
    write_status(info.rundir, state="failed", ended_at=time.time(), exit_code=None, error=error)
    append_event(
        info.rundir, "end", state="failed", exit_code=None, best=info.best, recorded_by="launcher"
    )
    runlog_sync(info.dir, record=True)


def _submitted(info: RunInfo, cfg: Config, record: dict[str, Any], array: str | None) -> RunInfo:
    rd = info.rundir
    write_status(
        rd, **record, slurm_settled=False, slurm_state=None, resume=False, ended_at=None,
        exit_code=None, error=None, epochs=cfg.train.epochs, pid=None, pgid=None, waiting=None,
    )  # fmt: skip
    append_event(
        rd, "submitted", slurm_job_id=record["slurm_job_id"], array=array,
        slurm_log=record.get("slurm_log"),
    )  # fmt: skip
    runlog_sync(rd.path)
    return read_run(rd.path)


def submit_queued(
    batch: Sequence[tuple[RunInfo, Config]], group_of: Callable[[RunInfo], Any]
) -> list[RunInfo]:
    """Submit queued Slurm runs (caller holds the queue lock): one job array per sweep group
    (`group_of(info)` -> its group, with `max_parallel`; None for a lone run), else one job
    each. A run Slurm refuses is `failed` with Slurm's message; the others go on."""

    lone: list[tuple[RunInfo, Config]] = []
    # one array per group and [slurm] table (a sweep over slurm.* keys gives several)
    groups: dict[tuple[str, str], list[tuple[RunInfo, Config]]] = defaultdict(list)
    limits: dict[str, int] = {}
    for info, cfg in batch:
        g = group_of(info)
        if g is None:
            lone.append((info, cfg))
        else:
            table = json.dumps(asdict(cfg.slurm), sort_keys=True)
            groups[(g.name, table)].append((info, cfg))
            limits[g.name] = int(g.max_parallel or 0)
    out: list[RunInfo] = []
    for (name, _), items in groups.items():
        if len(items) == 1:
            lone += items
            continue
        infos, cfgs = [i for i, _ in items], [c for _, c in items]
        try:
            records = slurm.submit_array(
                [i.dir for i in infos],
                cfgs,
                limits[name] or len(items),
                module=contract.trainer_module(),
            )
        except UserError as e:
            for info in infos:
                _fail(info, f"Slurm did not take the group {name}'s job array: {e}")
            continue
        array = records[0]["slurm_job_id"].split("_")[0]
        out += [_submitted(i, c, r, array) for (i, c), r in zip(items, records, strict=True)]
    for info, cfg in lone:
        resume = bool(read_status(info.rundir).get("resume"))
        try:
            record = slurm.submit(info.dir, cfg, resume=resume, module=contract.trainer_module())
        except UserError as e:
            _fail(info, str(e))
            continue
        out.append(_submitted(info, cfg, record, None))
    return out


# --------------------------------------------------------------------------- follow, settle


def _why(info: RunInfo, status: dict[str, Any], word: str, state: str) -> str | None:
    """The error recorded for a job that ended without the trainer saying why."""
    if state in ("completed", "stopped"):
        return None
    job, rd = info.slurm_job_id, info.rundir
    if state == "crashed" and status.get("state") == "stopped":
        return f"Slurm ended job {job} ({word}) after the trainer checkpointed: resumable"
    logs = [Path(status["slurm_log"])] if status.get("slurm_log") else []
    tail = next((t for p in (*logs, rd.log) if (t := log_tail(p))), "")
    if (rd.path / HUNG_MARKER).exists():
        started = "after its trainer stopped sending heartbeats (cancelled by amc-tui)"
    elif state == "crashed":
        started = "its trainer died without recording an end state"
    else:
        started = "before its trainer started"
    return f"Slurm job {job} ended {word or 'without a state'} {started}\n{tail}".rstrip()


def _settle(ws: Workspace, info: RunInfo, word: str) -> RunInfo | None:
    """Record the end of a job Slurm reports as ended; None while it has not."""

    rd = info.rundir
    status = read_status(rd)
    trainer = status.get("state")
    wrote_end = trainer in FINAL_STATES
    mapped = amc_state(word)
    if mapped not in FINAL:
        if word or not (wrote_end or stop_marker(rd).exists()):
            return None  # queued, running, or not known to Slurm yet
        mapped = str(trainer) if wrote_end else "stopped"  # Slurm no longer knows the job
    state = effective_state(mapped, trainer if wrote_end else None)
    hung = rd.path / HUNG_MARKER
    if not wrote_end:
        if stop_marker(rd).exists():
            state = "stopped"
        elif hung.exists() or (trainer == "running" and state == "failed"):
            state = "crashed"  # it trained, then died or hung (a node, OOM, a kill): resume it
    updates: dict[str, Any] = {"slurm_state": word, "slurm_settled": True}
    if state != trainer:
        updates |= {"state": state, "error": _why(info, status, word, state)}
        updates["ended_at"] = status.get("ended_at") if wrote_end else time.time()
    write_status(rd, **updates)
    if not wrote_end:
        append_event(rd, "end", state=state, exit_code=None, best=status.get("best"),
                     recorded_by="launcher", slurm_state=word)  # fmt: skip
    runlog_sync(rd.path, record=True)  # the entry says how the job ended
    with contextlib.suppress(OSError):
        hung.unlink()
    now = read_run(rd.path)
    if state == "crashed":
        requeue_on_failure(ws, now)
    return read_run(rd.path)


def _overdue(info: RunInfo, word: str) -> str | None:
    """A job to end for good: a stop asked for over a grace ago (the asker may have quit
    before its plain scancel), or a trainer whose heartbeat stopped long ago while Slurm
    still runs the job (hung: ended, then recorded crashed and restarted by policy)."""

    if amc_state(word) != "running":
        return None
    try:
        asked = float(stop_marker(info.rundir).read_text().strip())
    except (OSError, ValueError):
        asked = None
    if asked is not None:
        late = time.time() - asked > stop_grace(info.rundir) + STOP_ESCALATE_SLACK_S
        return "the stop's grace is over" if late else None
    beat = info.heartbeat_at
    if info.stored_state == "running" and beat is not None and time.time() - beat > HUNG_AFTER_S:
        return "hung"
    return None


def poll(ws: Workspace, runs: Sequence[RunInfo], force: bool = False) -> list[RunInfo]:
    """Ask Slurm about every open job of `runs` (one call) and record those that ended
    (caller holds the queue lock). At most every `poll_interval()` seconds unless `force`.
    Returns the runs it changed; Slurm not answering changes nothing (asked again later)."""

    open_runs = [r for r in runs if is_open(r)]
    if not open_runs:
        return []
    now = time.monotonic()
    if not force and now - _last_poll.get(ws.root, -1e9) < poll_interval():
        return []
    _last_poll[ws.root] = now
    try:
        words = slurm.raw_states(str(r.slurm_job_id) for r in open_runs)
    except UserError as e:
        log.warning("cannot ask Slurm about %d job(s): %s", len(open_runs), e)
        return []
    changed = []
    for info in open_runs:
        word = words.get(str(info.slurm_job_id), "")
        try:
            why = _overdue(info, word)
            if why:
                log.warning("ending Slurm job %s of %s: %s", info.slurm_job_id, info.name, why)
                if why == "hung":
                    atomic_write_text(info.rundir.path / HUNG_MARKER, f"{time.time()}\n")
                slurm.scancel(str(info.slurm_job_id))
                continue  # recorded once Slurm says it has ended
            done = _settle(ws, info, word)
        except (OSError, UserError) as e:  # a full disk, a damaged status: next pass
            log.warning("recording the Slurm job of %s failed: %s", info.name, e)
            continue
        if done is not None:
            changed.append(done)
    return changed


# --------------------------------------------------------------------------- stop


def _cancel(ws: Workspace, info: RunInfo, grace_s: float) -> None:
    try:
        slurm.cancel(str(info.slurm_job_id), grace_s=grace_s)
    except UserError as e:
        log.warning("stopping Slurm job %s of %s: %s", info.slurm_job_id, info.name, e)
        return
    with queue_lock(ws):
        poll(ws, [read_run(info.dir)], force=True)


def stop(ws: Workspace, info: RunInfo, grace_s: float | None, wait: bool) -> RunInfo:
    """Stop a run whose Slurm job is open: SIGTERM to the job's steps (the trainer writes
    last.pt and ends as `stopped`), scancel after the grace; a job still waiting in Slurm's
    queue is cancelled at once. The marker file makes a trainer that dies meanwhile
    `stopped`, and lets the queue worker finish the stop if this process quits."""
    if grace_s is None:
        grace_s = stop_grace(info.rundir)
    atomic_write_text(stop_marker(info.rundir), f"{time.time()}\n")
    if not wait:
        threading.Thread(
            target=_cancel, args=(ws, info, grace_s), name="amc-scancel", daemon=True
        ).start()
        return read_run(info.dir)
    _cancel(ws, info, grace_s)
    return read_run(info.dir)


def array_of(info: RunInfo) -> str | None:
    """The job array an open run's job is a task of (`1234` for `1234_2`), else None."""
    job = str(info.slurm_job_id or "")
    return job.split("_", 1)[0] if is_open(info) and "_" in job else None


def _cancel_array(ws: Workspace, array: str, infos: Sequence[RunInfo], grace_s: float) -> None:
    try:
        slurm.cancel_array(array, [str(i.slurm_job_id) for i in infos], grace_s=grace_s)
    except UserError as e:
        log.warning("stopping Slurm job array %s: %s", array, e)
        return
    with queue_lock(ws):
        poll(ws, [read_run(i.dir) for i in infos], force=True)


def stop_array(
    ws: Workspace, array: str, infos: Sequence[RunInfo], grace_s: float | None, wait: bool
) -> list[RunInfo]:
    """Stop the open runs of one job array (a sweep group's members) with one scancel per
    step (`slurm.cancel_array`): pending tasks at once, running ones by SIGTERM, the array
    after the grace. Each run gets its stop marker first, as `stop` gives one."""
    grace = max(stop_grace(i.rundir) for i in infos) if grace_s is None else grace_s
    for info in infos:
        atomic_write_text(stop_marker(info.rundir), f"{time.time()}\n")
    if not wait:
        threading.Thread(target=_cancel_array, args=(ws, array, infos, grace),
                         name="amc-scancel-array", daemon=True).start()  # fmt: skip
    else:
        _cancel_array(ws, array, infos, grace)
    return [read_run(i.dir) for i in infos]
