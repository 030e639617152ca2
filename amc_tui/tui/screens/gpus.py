"""GPUs: each GPU with util / memory / temperature / power sparklines and the run holding
it, or a clear "no NVIDIA GPU" panel; above them this host's CPU and memory and each running
trainer's CPU, memory and GPU memory, so a CPU-only box still shows what its runs use.
NVML (amc_tui.gpu.GpuSampler) and psutil (amc_tui.tui.models.procstat) are sampled in a worker.

CPU is in cores everywhere ("host: CPU 1.3 of 2 cores busy", a trainer's "CPU cores" 1.1),
memory in MiB (GiB for the host); a figure the first sample cannot give yet reads "no data
yet", never 0."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, Static

from amc_tui import contract, report
from amc_tui.tui import keys
from amc_tui.tui.models.procstat import HostStat, ProcSampler, ProcStat, sample_pids
from amc_tui.tui.screens.base import PollingScreen
from amc_tui.tui.widgets.gpu_panel import GpuCard

if TYPE_CHECKING:
    from amc_tui.gpu import GpuSnapshot, GpuStat
    from amc_tui.run.rundir import RunInfo

HISTORY = 120
NO_DATA = "no data yet"


@dataclass
class GpusSampled(Message):
    snapshot: GpuSnapshot | None
    error: str | None = None
    host: HostStat | None = None
    procs: dict[int, ProcStat] = field(default_factory=dict)
    trainers: list[tuple[str, int]] = field(default_factory=list)  # (run name, pid)


def gpu_memory(snap: GpuSnapshot | None) -> dict[int, tuple[float | None, list[int]]]:
    """pid -> (GPU memory in MiB summed over GPUs, the GPU indices) from NVML's process list."""
    out: dict[int, tuple[float | None, list[int]]] = {}
    for gpu in snap.gpus if snap is not None and snap.ok else []:
        for pid, mb in getattr(gpu, "processes", None) or []:
            total, idx = out.get(pid, (None, []))
            if contract.is_number(mb):
                total = (total or 0.0) + float(mb)
            out[pid] = (total, [*idx, gpu.index])
    return out


def _gib(mb: float | None) -> str:
    return f"{mb / 1024:.1f} GiB" if contract.is_number(mb) else report.MISSING


def _mib(mb: float | None) -> str:
    return report.num(mb, ".0f", unit=" MiB")


def cores(n: float | None) -> str:
    """Cores busy, one decimal (a trainer at 110 % of one core: 1.1)."""
    return report.num(n, ".1f", NO_DATA)


def host_line(host: HostStat | None) -> str:
    if host is None:
        return f"host: {NO_DATA}"
    busy = host.busy_cores
    cpu = f"{cores(busy)} of {host.cpus} cores busy" if busy is not None else NO_DATA
    mem = host.mem_used_mb / host.mem_total_mb if host.mem_total_mb else None
    return (
        f"host: CPU {cpu} · memory {_gib(host.mem_used_mb)} of "
        f"{_gib(host.mem_total_mb)} ({report.pct(mem, 0)})"
    )


def holders(gpu: GpuStat, running: list[RunInfo]) -> list[str]:
    """Runs holding a GPU: a run whose trainer pid uses it, else a running run assigned to it."""
    pids = {p for p, _ in (getattr(gpu, "processes", None) or [])}
    by_pid = [r.name for r in running if r.pid and r.pid in pids]
    if by_pid:
        return by_pid
    return [r.name for r in running if gpu.index in (r.gpus or [])]


class GpusScreen(PollingScreen):
    BINDINGS = keys.bindings("gpus")
    POLL_S = 1.0

    DEFAULT_CSS = """
    GpusScreen #gpu-procs { height: auto; max-height: 8; }
    """

    def __init__(self) -> None:
        super().__init__(classes="gpus")
        self.history: dict[int, dict[str, deque[float]]] = {}
        self.procs = ProcSampler()  # touched only by the (sequential) poll worker

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"host: {NO_DATA} · GPUs: {NO_DATA} (sampled every {self.POLL_S:g} s)",
                     id="gpu-head")  # fmt: skip
        yield DataTable(id="gpu-procs", cursor_type="row", zebra_stripes=True)
        yield VerticalScroll(id="gpu-cards")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#gpu-procs", DataTable)
        for label, key in (("run", "run"), ("pid", "pid"), ("CPU cores", "cpu"), ("memory", "mem"),
                           ("threads", "threads"), ("GPU memory", "gmem")):  # fmt: skip
            table.add_column(label, key=key)

    def start_poll(self) -> None:
        running = [r for r in self.amc.known_runs.values() if r.state == "running" and r.pid]
        self._sample([(r.name, int(r.pid)) for r in running])  # type: ignore[arg-type]

    @work(thread=True, exclusive=True, group="gpu-poll", exit_on_error=False)
    def _sample(self, trainers: list[tuple[str, int]]) -> None:
        host, procs = None, {}
        try:
            host = self.procs.host()
            procs = sample_pids(self.procs, [pid for _, pid in trainers])
        except Exception:  # noqa: BLE001 - the GPUs still show
            pass
        try:
            snap = self.amc.sample_gpus()
            self.post_message(GpusSampled(snap, None, host, procs, trainers))
        except Exception as e:  # noqa: BLE001
            self.post_message(GpusSampled(None, str(e), host, procs, trainers))

    def _fill_procs(self, msg: GpusSampled) -> None:
        table = self.query_one("#gpu-procs", DataTable)
        table.clear()
        gmem = gpu_memory(msg.snapshot)
        for name, pid in msg.trainers:
            st = msg.procs.get(pid)
            if st is None or not st.alive:
                table.add_row(
                    name, str(pid), "gone", report.MISSING, report.MISSING, report.MISSING, key=name
                )
                continue
            cpu = cores(st.cores)
            mem, idx = gmem.get(pid, (None, []))
            on = f" (GPU {','.join(map(str, idx))})" if idx else ""
            table.add_row(name, str(st.pid), cpu, _mib(st.rss_mb), str(st.threads or report.MISSING),
                          (_mib(mem) + on) if idx else report.MISSING, key=name)  # fmt: skip
        if not msg.trainers:
            table.add_row("no running trainer", "", "", "", "", "")

    @on(GpusSampled)
    def _show(self, msg: GpusSampled) -> None:
        head = self.query_one("#gpu-head", Static)
        box = self.query_one("#gpu-cards", VerticalScroll)
        snap = msg.snapshot
        self._fill_procs(msg)
        host = host_line(msg.host)
        if msg.error or snap is None or not snap.ok:
            reason = msg.error or (snap.reason if snap is not None else "") or "no NVIDIA GPU"
            if not reason.lower().startswith("no nvidia gpu"):
                reason = f"no NVIDIA GPU: {reason}"
            head.update(f"{host} · no GPU")
            text = f"{reason}\n\nRuns use the CPU here; the trainer picks a GPU when one appears."
            if not box.query("#gpu-none"):
                box.remove_children()
                box.mount(Static(text, id="gpu-none", markup=False))
            else:
                box.query_one("#gpu-none", Static).update(text)
            self.poll_done()
            return
        for none in box.query("#gpu-none"):
            none.remove()
        running = [r for r in self.amc.known_runs.values() if r.state == "running"]
        gmem = gpu_memory(snap)
        head.update(f"{host} · {len(snap.gpus)} GPU(s), sampled every {self.POLL_S:g} s")
        for gpu in snap.gpus:
            hist = self.history.setdefault(
                gpu.index, {k: deque(maxlen=HISTORY) for k in ("util", "mem", "temp_c", "power_w")}
            )
            mem = None if gpu.mem_frac is None else 100 * gpu.mem_frac
            latest = {"util": gpu.util, "mem": mem, "temp_c": gpu.temp_c, "power_w": gpu.power_w}
            for k, v in latest.items():
                if contract.is_number(v):
                    hist[k].append(float(v))
            held = holders(gpu, running)
            mem_txt = (
                f"{gpu.mem_used_mb:.0f}/{gpu.mem_total_mb:.0f} MiB"
                if contract.is_number(gpu.mem_used_mb) and contract.is_number(gpu.mem_total_mb) else "mem N/A"
            )  # fmt: skip
            title = f"GPU {gpu.index} · {gpu.name or '?'} · {mem_txt}"
            if getattr(gpu, "lost", False):
                title += " · LOST"
            pids = [p for p, _ in (getattr(gpu, "processes", None) or [])]
            mine = {r.name: r.pid for r in running}
            held = [
                f"{n} ({_mib(dict(gpu.processes).get(mine[n]))})" if mine.get(n) in pids else n
                for n in held
            ]
            others = [p for p in pids if p not in mine.values() and p in gmem]
            holder = ("held by " + ", ".join(held)) if held else "free"
            if others:
                holder += f" · {len(others)} other process(es)"
            cards = box.query(f"#gpu-card-{gpu.index}")
            if cards:
                cards.first(GpuCard).update_card(title, holder, hist, latest)
            else:
                card = GpuCard(gpu.index, id=f"gpu-card-{gpu.index}")
                box.mount(card)
                card.call_after_refresh(card.update_card, title, holder, dict(hist), latest)
        self.poll_done()

    def action_refresh_now(self) -> None:
        self.poll_now()
