"""`amc-tui repair RUN`: rebuild a damaged status.json from the run's own record.

events.jsonl is append-only and the checkpoints are replaced atomically, so together they say
what happened even when status.json was lost or torn (a full disk, a copy gone wrong). The
damaged file is kept beside the new one, and nothing is rebuilt while a trainer owns the run.
"""

from __future__ import annotations

import os
import time
from typing import Any

from amc_tui import contract
from amc_tui.errors import UserError
from amc_tui.fsutil import atomic_write_json
from amc_tui.run import runlock
from amc_tui.run.events import read_events
from amc_tui.run.rundir import FINAL_STATES, RunDir, read_config_dict, read_meta, status_or_error


def rebuild_status(run: RunDir) -> dict[str, Any]:
    """The status.json the run's events and checkpoints imply. A run that started and has no
    end event is `crashed` (resume continues it); one that never started is `stopped`, so
    that nothing launches it before the user says so."""
    events = read_events(run.events)
    starts = [e for e in events if e.get("kind") == "start"]
    start = starts[-1] if starts else None  # the latest attempt
    end = next((e for e in reversed(events) if e.get("kind") == "end"), None)
    epochs = [e for e in events if e.get("kind") == "epoch"]
    select = str(read_meta(run).get("select_metric") or contract.DEFAULT_SELECT)
    best: dict[str, Any] | None = None
    for ev in epochs:
        value = contract.metric_value(ev, select)
        if contract.is_better(value, best["value"] if best else None, select):
            best = {"metric": select, "value": value, "epoch": ev.get("epoch")}
    if best is not None and not run.best_ckpt.is_file():
        best = None  # never claim a best epoch whose checkpoint is not there
    steps = [e for e in events if e.get("kind") == "step"]
    if end is not None and end.get("state") in FINAL_STATES:
        state = str(end["state"])
    else:
        state = "crashed" if start is not None else "stopped"
    last_t = events[-1].get("t") if events else None
    cfg_epochs = (read_config_dict(run).get("train") or {}).get("epochs")
    return {
        "state": state,
        "pid": None,
        "device": (start or {}).get("device"),
        "epoch": int(epochs[-1].get("epoch") or 0) if epochs else 0,
        "epochs": cfg_epochs if isinstance(cfg_epochs, int) else None,
        "step": int(steps[-1].get("step") or 0) if steps else 0,
        "started_at": _launched(start),  # the one clock: as the trainer keeps it
        "first_started_at": _launched(starts[0]) if starts else None,
        "ended_at": (end or {}).get("t") or (last_t if state != "stopped" else None),
        "heartbeat_at": last_t,
        "exit_code": (end or {}).get("exit_code"),
        "best": best,
        "error": None
        if end is not None
        else "repaired from events.jsonl: the trainer left no end event",
        "repaired_at": round(time.time(), 3),
    }


def _launched(start: dict[str, Any] | None) -> float | None:
    """When an attempt was launched: its start event's `started_at` (status.json's clock,
    stamped at spawn), else the event's own time (older trainers)."""
    if start is None:
        return None
    began, t = start.get("started_at"), start.get("t")
    return float(began) if contract.is_number(began) and (t is None or began <= t) else t


def repair(run: RunDir) -> dict[str, Any]:
    """Replace status.json with `rebuild_status`, keeping a damaged one as status.json.bad."""
    held = runlock.holder(run.path)
    if held is not None:
        raise UserError(
            f"run {run.name} is owned by a live trainer (pid {held.get('pid')}); "
            "stop it first, repair only touches runs nobody writes"
        )
    current, damage = status_or_error(run)
    if damage is None:
        raise UserError(
            f"run {run.name}: status.json is readable (state {current.get('state')}); "
            "nothing to repair"
        )
    status = rebuild_status(run)
    if run.status.exists():
        os.replace(run.status, run.status.with_name(run.status.name + ".bad"))
    atomic_write_json(run.status, status)
    return status
