"""Run management: create a run (`create`), then start, watch and end its trainer process
(`supervise`) as queue passes decide (`queue`), with a detached worker (`worker`) keeping the
queue going when no amc-tui process is open.

Every transition goes through files (status.json, events.jsonl, RUNLOG.md) under the
workspace's queue lock, so the TUI, `amc-tui run`, `amc-tui queue` and the detached worker
can all be alive at once and no run starts twice. Trainers run in their own session and
process group: they outlive the terminal, the TUI and an SSH hang-up.
"""

from __future__ import annotations

from amc_tui.launch.create import create_run, next_counter
from amc_tui.launch.queue import (
    WORKER_POLL_S,
    ensure_worker,
    has_active,
    launch,
    resume_run,
    run_worker,
    start_run,
    work_queue,
    worker_alive,
)
from amc_tui.launch.supervise import child_returncode, queue_lock, reap, runlog_sync, stop_run

__all__ = [
    "create_run", "launch", "start_run", "stop_run", "resume_run", "work_queue", "reap",
    "ensure_worker", "run_worker", "next_counter", "queue_lock", "child_returncode",
    "runlog_sync", "has_active", "worker_alive", "WORKER_POLL_S",
]  # fmt: skip
