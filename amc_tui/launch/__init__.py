"""Run management: create a run (`create`), then start, watch and end its trainer process
(`supervise`) as queue passes decide (`queue`), with a detached worker (`worker`) keeping the
queue going when no amc-tui process is open; `keeper` makes sure one exists whenever runs
want one (`keep_queue_going`: every command and the app call it).

Every transition goes through files (status.json, events.jsonl, RUNLOG.md) under the
workspace's queue lock, so the TUI, `amc-tui run`, `amc-tui queue` and the detached worker
can all be alive at once and no run starts twice. Trainers run in their own session and
process group: they outlive the terminal, the TUI and an SSH hang-up.
"""

from __future__ import annotations

from amc_tui.launch.create import create_run, next_counter
from amc_tui.launch.keeper import (
    ensure_worker,
    has_active,
    keep_queue_going,
    worker_alive,
    worker_holder,
    workers_disabled,
)
from amc_tui.launch.queue import (
    WORKER_POLL_S,
    launch,
    resume_run,
    run_worker,
    start_run,
    work_queue,
)
from amc_tui.launch.supervise import (
    child_returncode,
    queue_lock,
    read_live,
    reap,
    runlog_sync,
    stop_run,
    with_trainer,
)

__all__ = [
    "create_run", "launch", "start_run", "stop_run", "resume_run", "work_queue", "reap",
    "ensure_worker", "run_worker", "next_counter", "queue_lock", "child_returncode",
    "runlog_sync", "has_active", "worker_alive", "worker_holder", "workers_disabled",
    "keep_queue_going", "read_live", "with_trainer", "WORKER_POLL_S",
]  # fmt: skip
