"""How many torch threads a CPU trainer uses: its share of the cores it may run on.

Why: torch takes every core by default, so two CPU trainers run two full OpenMP teams on the
same cores, and each team's threads wait at every barrier for threads the other team has
preempted: throughput falls far below half. A CPU trainer therefore divides the cores of its
affinity mask by the number of live CPU trainers in its workspace (runs whose lock is held
and whose status says device cpu, itself included), at least one thread each.
`train.threads` > 0 overrides. The trainer asks again at each epoch and every RECHECK_S
seconds, so a run that starts or ends later shifts the split. Load from other programs is
not counted (the load average is host-wide, wrong inside a cpuset); against it the trainer
process lets waiting OpenMP threads sleep instead of spin (owner.py), which is what keeps a
trainer on busy cores from collapsing.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from amc_tui.run import runlock
from amc_tui.run.rundir import RunDir, read_status, run_dirs, run_workspace
from amc_tui.workspace import Workspace

if TYPE_CHECKING:
    from amc_tui.train.loop import Trainer

RECHECK_S = 30.0


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask: taskset, cgroup cpusets, Slurm)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def live_cpu_trainers(workspace: Path, me: Path) -> int:
    """CPU trainers of the workspace now alive, this one included. A status read per run,
    and a lock probe only for the runs whose status says a CPU trainer is running."""
    n = 1
    me = me.resolve()
    for d in run_dirs(Workspace(workspace)):
        status = read_status(RunDir(d))
        if status.get("device") != "cpu" or status.get("state") != "running":
            continue
        if d.resolve() != me and runlock.holder(d) is not None:
            n += 1
    return n


def choose(configured: int, workspace: Path, me: Path) -> tuple[int, str]:
    """(threads, why) for a CPU trainer."""
    if configured > 0:
        return configured, "train.threads"
    cores, trainers = usable_cores(), live_cpu_trainers(workspace, me)
    n = max(1, cores // trainers)
    return n, f"{cores} usable cores / {trainers} live CPU trainer{'s' * (trainers > 1)}"


def limit_interop() -> None:
    """One inter-op thread: eager training never runs ops in parallel with each other, so a
    larger pool only adds idle threads (no throughput change measured either way). Legal only
    before the first parallel work of the process (later calls raise, and are ignored)."""
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)


def apply(n: int) -> bool:
    """Set the intra-op thread count of the calling (training) thread; True when it changed."""
    if torch.get_num_threads() == n:
        return False
    torch.set_num_threads(n)
    return True


def share_cpu(tr: Trainer, force: bool = False) -> None:
    """A CPU trainer's torch threads: its share of the usable cores, decided
    at start, at each epoch and every RECHECK_S; said in train.log on change.
    The processes of one DDP run on the CPU split that share between them."""
    cfg = tr.cfg
    if tr.device.type != "cpu" or cfg is None:
        return
    if not force and time.monotonic() - tr._threads_at < RECHECK_S:
        return
    first = tr._threads_at == 0.0
    tr._threads_at = time.monotonic()
    n, why = choose(cfg.train.threads, run_workspace(tr.run), tr.run.path)
    if tr.dist.place.local_world > 1 and cfg.train.threads <= 0:
        n = max(1, n // tr.dist.place.local_world)
        why += f", split between {tr.dist.place.local_world} processes"
    if apply(n) or first:
        wait = os.environ.get("OMP_WAIT_POLICY", "unset")
        print(f"cpu: {n} torch thread{'s' * (n > 1)} ({why}), OMP_WAIT_POLICY {wait}",
              flush=True)  # fmt: skip
