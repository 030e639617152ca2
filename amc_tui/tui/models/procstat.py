"""CPU and memory of this host and of the trainer processes (psutil), for the GPUs screen:
on a CPU-only box that is what a run uses, and beside a GPU it tells a data-bound trainer.

CPU use is the share since the previous sample, so the sampler keeps what it read last: its
`psutil.Process` objects, and the host's CPU times. (Not `psutil.cpu_percent(None)`: it keeps
its previous reading per calling thread, and the screen samples from a new worker thread
each time, so it answered 0.0 "since now" for most samples.) The first sample of a process or
of the host has no CPU figure yet (None: "no data yet", never 0). Both read in cores: a
trainer's `cores` (1.1 = 110 % of one core) and the host's `busy_cores` of its `cpus`. A
trainer's figures include its children (data loader workers).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import psutil


@dataclass(frozen=True)
class ProcStat:
    pid: int
    alive: bool
    cpu_pct: float | None = None  # percent of one core, summed over the process tree
    rss_mb: float | None = None
    threads: int | None = None

    @property
    def cores(self) -> float | None:
        """Cores busy with this process tree (1.1 = 110 % of one core); None: no data yet."""
        return None if self.cpu_pct is None else self.cpu_pct / 100


@dataclass(frozen=True)
class HostStat:
    cpus: int
    cpu_pct: float | None  # percent of all cores; None before a second sample
    mem_used_mb: float
    mem_total_mb: float

    @property
    def busy_cores(self) -> float | None:
        """Cores busy on this host (of `cpus`); None: no data yet."""
        return None if self.cpu_pct is None else self.cpu_pct / 100 * self.cpus


def _busy_share(before: Any, after: Any) -> float | None:
    """The busy share of all CPU time between two `psutil.cpu_times()` readings (as psutil
    counts it: guest time is already in user time, idle and iowait are not busy)."""
    fields = after._fields

    def delta(name: str) -> float:
        return max(0.0, getattr(after, name, 0.0) - getattr(before, name, 0.0))

    total = sum(delta(f) for f in fields if f not in ("guest", "guest_nice"))
    if total <= 0:
        return None
    idle = delta("idle") + delta("iowait")
    return min(1.0, max(0.0, (total - idle) / total))


class ProcSampler:
    """Samples the host and a set of pids; call from one thread at a time (any thread)."""

    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}
        self._host_times: Any = None  # the previous psutil.cpu_times()

    def host(self) -> HostStat:
        times = psutil.cpu_times()
        before, self._host_times = self._host_times, times
        share = _busy_share(before, times) if before is not None else None
        mem = psutil.virtual_memory()
        return HostStat(
            cpus=psutil.cpu_count() or 1,
            cpu_pct=None if share is None else 100 * share,
            mem_used_mb=(mem.total - mem.available) / (1 << 20),
            mem_total_mb=mem.total / (1 << 20),
        )

    def _proc(self, pid: int) -> tuple[psutil.Process, bool]:
        """The cached Process for `pid` (a reused pid gets a fresh one) and whether it was
        sampled before."""
        proc = self._procs.get(pid)
        if proc is not None:
            with contextlib.suppress(psutil.Error):
                if proc.is_running():
                    return proc, True
        proc = psutil.Process(pid)
        self._procs[pid] = proc
        proc.cpu_percent(interval=None)  # primes the counter
        return proc, False

    def sample(self, pids: list[int]) -> dict[int, ProcStat]:
        out: dict[int, ProcStat] = {}
        seen: set[int] = set()
        for pid in pids:
            try:
                out[pid] = self._tree(pid, seen)
            except psutil.Error:
                out[pid] = ProcStat(pid, alive=False)
        for pid in [p for p in self._procs if p not in seen]:
            del self._procs[pid]
        return out

    def _tree(self, pid: int, seen: set[int]) -> ProcStat:
        root, primed = self._proc(pid)
        seen.add(pid)
        procs: list[tuple[Any, bool]] = [(root, primed)]
        with contextlib.suppress(psutil.Error):
            for child in root.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    procs.append(self._proc(child.pid))
                    seen.add(child.pid)
        cpu, rss, threads = 0.0, 0.0, 0
        for proc, was_primed in procs:
            with contextlib.suppress(psutil.Error):
                with proc.oneshot():
                    pct = proc.cpu_percent(interval=None)
                    rss += proc.memory_info().rss / (1 << 20)
                    threads += proc.num_threads()
                cpu += pct if was_primed else 0.0
        return ProcStat(pid, True, cpu if primed else None, rss, threads)


def sample_pids(sampler: ProcSampler, pids: list[int]) -> dict[int, ProcStat]:
    """`sampler.sample` that never raises (a vanished process is `alive=False`)."""
    try:
        return sampler.sample(pids)
    except Exception:  # noqa: BLE001 - a sampling error must not take the screen down
        return {p: ProcStat(p, alive=False) for p in pids}
