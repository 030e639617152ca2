"""Live run: curves, throughput and ETA, GPU sparklines, the train.log tail, state and
heartbeat.

A thread worker reads events.jsonl incrementally with `amc_tui.run.rundir.EventTailer` (byte offset,
never a re-read), folds them into a `LiveModel` and posts a `LiveView`; a big file is caught up
chunk by chunk, each chunk shown as it lands. Polls every 0.5 s, so a new event shows within 1 s.
train.log is read the same way (`models/log_tail.LogTailer`: appended lines only, read again
from its tail when the file is replaced or truncated) into a `LogView`, which wraps long lines
and follows the end unless the user scrolls up.

The runs marked on the Runs screen are overlaid on every chart, one colour per run, and a
line above the charts says so and names the run on screen; `x`
switches the x axis (epoch, step, training time) and `z` the smoothing (EMA 0, 0.6, 0.9).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Container, Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Footer, Header, Static
from textual.worker import get_current_worker

from amc_tui import contract, report
from amc_tui.config import RunConfig
from amc_tui.run import health
from amc_tui.run.rundir import EventTailer, RunDir, read_config_dict, read_run
from amc_tui.tui import keys
from amc_tui.tui.models import runs_view as rv
from amc_tui.tui.models.axes import SMOOTHING
from amc_tui.tui.models.live_charts import (
    CHARTS,
    X_MODES,
    chart_chances,
    chart_lines,
    time_scale,
    xlabel,
)
from amc_tui.tui.models.live_model import LiveModel, LiveView, throughput
from amc_tui.tui.models.log_tail import LogChunk, LogTailer
from amc_tui.tui.models.overlay import Overlay, OverlayFeed, caption, marked_runs, overlay
from amc_tui.tui.screens.base import PollingScreen
from amc_tui.tui.widgets.curves import Curves
from amc_tui.tui.widgets.gpu_panel import GpuCard
from amc_tui.tui.widgets.log_view import LogView

if TYPE_CHECKING:
    from amc_tui.run.rundir import EventTailer, RunInfo

LOG_LINES = 200
LOG_TITLE = "train.log"
NO_GPU_TITLE = "train.log · no GPU samples"
CHUNK_BYTES = 4 << 20
PLOTS = ("loss", "acc", "steps", "weights")
NVML_FALLBACK_AFTER_S = 15.0  # trainer gpu events come every ~10 s


@dataclass
class LiveUpdate(Message):
    view: LiveView | None
    info: RunInfo | None
    log: LogChunk | None  # None = unchanged
    caught_up: bool
    error: str | None = None
    others: dict[Path, LiveView] | None = None  # overlaid runs; None = unchanged
    step_log_every: int | None = None


class LiveScreen(PollingScreen):
    BINDINGS = keys.bindings("live")

    def __init__(self, run_dir: Path) -> None:
        super().__init__(classes="live")
        self.run_dir = Path(run_dir)
        self.model = LiveModel()  # touched only by the (sequential) poll worker
        self.tailer: EventTailer | None = None
        self.log_tailer = LogTailer(RunDir(self.run_dir).log)  # touched only by the worker
        self.info: RunInfo | None = None
        self.view: LiveView | None = None
        self.plot_index = 0
        self.x_mode = X_MODES[0]
        self.smoothing = SMOOTHING[0]
        self.feed = OverlayFeed()  # touched only by the poll worker
        self.others: dict[Path, LiveView] = {}
        self.overlay: Overlay = overlay(self.run_dir, [])
        self.step_log_every: int | None = None

    def poll_interval(self) -> float:
        return self.amc.live_poll_s

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"{self.run_dir.name}: reading...", id="live-head")
        yield Static("", id="live-overlay")  # says whose the other lines are
        with Container(id="plots"):
            for chart in CHARTS:
                yield Curves(chart.title, percent=chart.percent, id=f"plot-{chart.key}")
        with Horizontal(id="live-bottom"):
            yield LogView(LOG_LINES, id="live-log")
            # GPU cards beside the log from 120 columns, one line per GPU under it below;
            # without a GPU sample the panel is gone and the log's title says so
            yield VerticalScroll(id="live-gpus")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#live-log", LogView).border_title = LOG_TITLE
        self._show_plot()

    # ------------------------------------------------------------------ worker

    def start_poll(self) -> None:
        self.overlay = overlay(self.run_dir, marked_runs(self.app))
        self._read(self.overlay.dirs[1:])

    @work(thread=True, exclusive=True, group="live-poll", exit_on_error=False)
    def _read(self, others: tuple[Path, ...] = ()) -> None:
        worker = get_current_worker()
        try:
            run = RunDir(self.run_dir)
            if self.tailer is None:
                self.tailer = EventTailer(run.events)
            info = read_run(run.path)
            every = self.step_log_every or _step_log_every(run)
            # catch up chunk by chunk so a 100 MB file shows progress, not a freeze
            while True:
                before = self.tailer.offset
                events = self.tailer.poll(max_bytes=CHUNK_BYTES)
                self.model.feed(events)
                caught_up = self.tailer.offset == before or _size(run.events) <= self.tailer.offset
                if caught_up or worker.is_cancelled:
                    break
                self.post_message(LiveUpdate(self.model.view(), info, None, False))
            self._sample_gpus(info)
            log = self.log_tailer.poll()
            views = self.feed.poll(list(others))
            self.post_message(LiveUpdate(self.model.view(), info, log, True, None, views, every))
        except Exception as e:  # noqa: BLE001 - shown in place
            self.post_message(LiveUpdate(None, None, None, True, error=str(e)))

    def _sample_gpus(self, info: RunInfo) -> None:
        """Fill in the run's GPU sparklines from this host's NVML while the trainer's own
        `gpu` events are missing or stale (another host's run stays event-only)."""
        gpus = _run_gpus(info)
        if info.state != "running" or not gpus:
            return
        now = time.time()
        last = self.model.last_gpu_t
        if last is not None and now - last < NVML_FALLBACK_AFTER_S:
            return
        snap = self.amc.sample_gpus()
        if not snap.ok:
            return
        self.model.feed(
            {"t": now, "kind": "gpu", "index": g.index, "util": g.util,
             "mem_used_mb": g.mem_used_mb, "mem_total_mb": g.mem_total_mb,
             "temp_c": g.temp_c, "power_w": g.power_w, "source": "nvml"}
            for g in snap.gpus
            if g.index in gpus and not g.lost
        )  # fmt: skip

    # ------------------------------------------------------------------ UI

    @on(LiveUpdate)
    def _apply(self, msg: LiveUpdate) -> None:
        if msg.error:
            self.amc.report_error(f"live view: {msg.error}")
        if msg.info is not None:
            self.info = msg.info
        if msg.others is not None:
            self.others = msg.others
        if msg.step_log_every:
            self.step_log_every = msg.step_log_every
        if msg.view is not None:
            self.view = msg.view
            self._draw_curves()
            self._draw_gpus(msg.view)
        self._draw_head()
        if msg.log is not None:
            self.query_one("#live-log", LogView).add(msg.log.lines, msg.log.partial, msg.log.reset)
        if msg.caught_up:
            self.poll_done()

    def _draw_head(self) -> None:
        info, view, now = self.info, self.view, self.amc.clock()
        if info is None:
            return
        state = info.state
        parts = [
            f"[b]{info.name}[/b] ({info.id})",
            f"[{rv.STATE_STYLES.get(state, '')}]{state}[/]",
            f"epoch {info.epoch}/{info.epochs or '?'}",
            f"step {info.step}",
        ]
        if state == "running":
            parts.append(f"heartbeat {report.ago(info.heartbeat_at, now)}")
            parts.append(f"ETA {report.duration(info.eta_s(now))}")
        parts.append(report.rate(throughput(view)) if view else report.MISSING)
        parts.append(f"elapsed {report.duration(info.elapsed_s(now))}")  # as Runs, show, RUNLOG
        if info.best:
            best = report.metric(rv.best_metric(info), info.best.get("value"), ".3f", digits=1)
            parts.append(f"best {best} @{info.best.get('epoch')}")
        if info.device:
            parts.append(info.device)
        if info.slurm_job_id:
            parts.append(f"Slurm job {info.slurm_job_id}")
        if state == "queued" and info.waiting:
            parts.append(info.waiting)
        text = " · ".join(parts)
        if info.error and state in ("failed", "crashed"):
            err = info.error.strip().splitlines()[-1][:200]
            text += f"\n[red]{_escape(err)}[/]"
        for h in info.health:  # the health rules active now, severe first (red)
            colour = "red" if h.get("rule") in contract.SEVERE_HEALTH else "#ffaf00"
            stop = (
                " (stopped: run.stop_on)"
                if health.stopped_by(info.stop_reason) == h.get("rule")
                else ""
            )
            text += f"\n[{colour}]{_escape(str(h.get('message')))}{stop}[/]"
        if view and view.mirror_failures:  # one line, the latest failure
            text += f"\n[yellow]mirror: {_escape(view.mirror_failures[-1][:200])}[/]"
        self.query_one("#live-head", Static).update(text)

    def _draw_curves(self) -> None:
        if self.view is None:
            return
        ov = self.overlay
        views = {d: v for d, v in self.others.items() if d in ov.dirs}
        views[self.run_dir] = self.view
        names = {d: d.name for d in ov.dirs}
        _, unit = time_scale(views)
        note = self.query_one("#live-overlay", Static)
        note.display = ov.multi
        note.update(_escape(caption(ov, bool(self.view.epochs))))
        for chart in CHARTS:
            lines = chart_lines(chart, views, ov, self.x_mode, names)
            title = chart.overlay_title if ov.multi else chart.title
            running = self.info is not None and self.info.active
            empty = "waiting for the first epoch" if running else "no finished epoch"
            if chart.key == "steps":
                empty = self._no_steps()
            elif chart.key in ("loss", "acc") and self.view.no_val and not ov.multi:
                title += " (no validation data)"
                empty = "no validation data: the split gives it no frames"
            self.query_one(f"#plot-{chart.key}", Curves).set_lines(
                lines, title=title, xlabel=xlabel(self.x_mode, unit), ylim=chart.ylim,
                xint=self.x_mode != "time", smooth=self.smoothing, empty=empty,
                chances=chart_chances(chart, views, ov),
            )  # fmt: skip

    def _no_steps(self) -> str:
        """What the step chart says before (or without) any step event: they come every
        step_log_every steps, and a short run may end before the first."""
        every = f"step_log_every = {self.step_log_every}" if self.step_log_every else ""
        running = self.info is not None and self.info.active
        text = "no step data yet" if running else "no step data"
        return f"{text} ({every})" if every else text

    def _draw_gpus(self, view: LiveView) -> None:
        box = self.query_one("#live-gpus", VerticalScroll)
        box.set_class(bool(view.gpus), "-has-gpus")
        self.query_one("#live-log", LogView).border_title = LOG_TITLE if view.gpus else NO_GPU_TITLE
        for idx in sorted(view.gpus):
            lines = box.query(f"#live-gpu-line-{idx}")
            line = lines.first(Static) if lines else None
            if line is None:
                line = Static("", id=f"live-gpu-line-{idx}", classes="gpu-line")
                box.mount(line)
            line.update(_gpu_line(idx, view.gpu_last.get(idx, {})))
            cards = box.query(f"#live-gpu-{idx}")
            if cards:
                card = cards.first(GpuCard)
            else:
                card = GpuCard(idx, id=f"live-gpu-{idx}")
                box.mount(card)
                card.call_after_refresh(self._fill_card, card, view, idx)
                continue
            self._fill_card(card, view, idx)

    def _fill_card(self, card: GpuCard, view: LiveView, idx: int) -> None:
        hist = dict(view.gpus.get(idx, {}))
        last = dict(view.gpu_last.get(idx, {}))
        total = last.get("mem_total_mb")
        shares = (_mem_pct(u, total) for u in hist.get("mem_used_mb", []))
        hist["mem"] = [m for m in shares if m is not None]
        if (mem := _mem_pct(last.get("mem_used_mb"), total)) is not None:
            last["mem"] = mem
        hist["util"] = hist.get("util", [])
        last["util"] = last.get("util")
        card.update_card(f"GPU {idx}", "", hist, last)

    def _show_plot(self) -> None:
        for i, name in enumerate(PLOTS):
            self.query_one(f"#plot-{name}").set_class(i == self.plot_index, "-shown")

    # ------------------------------------------------------------------ actions

    def action_next_plot(self) -> None:
        self.plot_index = (self.plot_index + 1) % len(PLOTS)
        self._show_plot()

    def action_next_x(self) -> None:
        self.x_mode = X_MODES[(X_MODES.index(self.x_mode) + 1) % len(X_MODES)]
        self._draw_curves()

    def action_next_smoothing(self) -> None:
        i = SMOOTHING.index(self.smoothing) if self.smoothing in SMOOTHING else 0
        self.smoothing = SMOOTHING[(i + 1) % len(SMOOTHING)]
        self._draw_curves()

    def action_stop(self) -> None:
        if self.info is not None:
            self.amc.confirm_stop(self.info)

    def action_resume(self) -> None:
        if self.info is not None:
            self.amc.resume(self.info)

    def action_analysis(self) -> None:
        self.amc.open_analysis(self.run_dir)

    def action_runlog(self) -> None:
        self.amc.open_runlog(self.info.id if self.info else None)


def _step_log_every(run: object) -> int | None:
    """The run's [run] step_log_every (the config default when it does not set one)."""

    value = read_config_dict(run).get("run", {}).get("step_log_every")  # type: ignore[arg-type]
    return value if isinstance(value, int) and value > 0 else RunConfig().step_log_every


def _run_gpus(info: RunInfo) -> list[int]:
    """Physical GPU indices a run uses: status.gpus, else the index in `cuda:N`."""
    if info.gpus:
        return list(info.gpus)
    device = info.device or ""
    if device.startswith("cuda:") and device[5:].isdigit():
        return [int(device[5:])]
    return [0] if device == "cuda" else []


def _mem_pct(used: object, total: object) -> float | None:
    """GPU memory in use as a percent of the total, None when either is unknown."""
    if contract.is_number(used) and contract.is_number(total) and total:
        return 100 * float(used) / float(total)  # type: ignore[arg-type]
    return None


def _gpu_line(idx: int, last: dict) -> str:
    """One GPU in a line (the narrow layout): its latest util, memory, temperature, power."""
    mem = _mem_pct(last.get("mem_used_mb"), last.get("mem_total_mb"))
    return (
        f"[b]GPU {idx}[/b]  util {report.num(last.get('util'), '.0f', 'N/A', '%')}  "
        f"mem {report.num(mem, '.0f', 'N/A', '%')}  {report.num(last.get('temp_c'), '.0f', 'N/A', '°C')}  "
        f"{report.num(last.get('power_w'), '.0f', 'N/A', ' W')}"
    )


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _escape(text: str) -> str:
    return escape(text)
