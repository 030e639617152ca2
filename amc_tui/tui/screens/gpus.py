"""GPUs: each GPU with util / memory / temperature / power sparklines and the run holding
it, or a clear "no NVIDIA GPU" panel. NVML is sampled in a worker (amc_tui.gpu.GpuSampler)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Footer, Header, Static

from amc_tui.tui import fmt
from amc_tui.tui.screens.base import PollingScreen
from amc_tui.tui.widgets.gpu_panel import GpuCard

if TYPE_CHECKING:
    from amc_tui.gpu import GpuSnapshot, GpuStat
    from amc_tui.runs import RunInfo

HISTORY = 120


@dataclass
class GpusSampled(Message):
    snapshot: GpuSnapshot | None
    error: str | None = None


def holders(gpu: GpuStat, running: list[RunInfo]) -> list[str]:
    """Runs holding a GPU: a run whose trainer pid uses it, else a running run assigned to it."""
    pids = {p for p, _ in (getattr(gpu, "processes", None) or [])}
    by_pid = [r.name for r in running if r.pid and r.pid in pids]
    if by_pid:
        return by_pid
    return [r.name for r in running if gpu.index in (r.gpus or [])]


class GpusScreen(PollingScreen):
    BINDINGS = [Binding("escape", "back", "Back"), Binding("R", "refresh_now", "Refresh")]
    POLL_S = 1.0

    def __init__(self) -> None:
        super().__init__(classes="gpus")
        self.history: dict[int, dict[str, deque[float]]] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("sampling GPUs...", id="gpu-head")
        yield VerticalScroll(id="gpu-cards")
        yield Footer(compact=True)

    def start_poll(self) -> None:
        self._sample()

    @work(thread=True, exclusive=True, group="gpu-poll", exit_on_error=False)
    def _sample(self) -> None:
        try:
            self.post_message(GpusSampled(self.amc.sample_gpus()))
        except Exception as e:  # noqa: BLE001
            self.post_message(GpusSampled(None, error=str(e)))

    @on(GpusSampled)
    def _show(self, msg: GpusSampled) -> None:
        head = self.query_one("#gpu-head", Static)
        box = self.query_one("#gpu-cards", VerticalScroll)
        snap = msg.snapshot
        if msg.error or snap is None or not snap.ok:
            reason = msg.error or (snap.reason if snap is not None else "") or "no NVIDIA GPU"
            if not reason.lower().startswith("no nvidia gpu"):
                reason = f"no NVIDIA GPU: {reason}"
            head.update("")
            head.display = False
            text = f"{reason}\n\nRuns use the CPU here; the trainer picks a GPU when one appears."
            if not box.query("#gpu-none"):
                box.remove_children()
                box.mount(Static(text, id="gpu-none", markup=False))
            else:
                box.query_one("#gpu-none", Static).update(text)
            self.poll_done()
            return
        head.display = True
        for none in box.query("#gpu-none"):
            none.remove()
        running = [r for r in self.amc.known_runs.values() if r.state == "running"]
        head.update(f"{len(snap.gpus)} GPU(s) · NVML sampled every {self.POLL_S:g} s")
        for gpu in snap.gpus:
            hist = self.history.setdefault(
                gpu.index, {k: deque(maxlen=HISTORY) for k in ("util", "mem", "temp_c", "power_w")}
            )
            mem = (100 * gpu.mem_used_mb / gpu.mem_total_mb) if gpu.mem_total_mb and fmt.is_num(gpu.mem_used_mb) else None  # fmt: skip
            latest = {"util": gpu.util, "mem": mem, "temp_c": gpu.temp_c, "power_w": gpu.power_w}
            for k, v in latest.items():
                if fmt.is_num(v):
                    hist[k].append(float(v))
            held = holders(gpu, running)
            mem_txt = (
                f"{gpu.mem_used_mb:.0f}/{gpu.mem_total_mb:.0f} MB"
                if fmt.is_num(gpu.mem_used_mb) and fmt.is_num(gpu.mem_total_mb) else "mem N/A"
            )  # fmt: skip
            title = f"GPU {gpu.index} · {gpu.name or '?'} · {mem_txt}"
            if getattr(gpu, "lost", False):
                title += " · LOST"
            holder = ("held by " + ", ".join(held)) if held else "free"
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
