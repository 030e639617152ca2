"""The Textual app: navigation, run actions shared by every screen, and the command palette.

`run_app(ws)` is what `amc-tui` (no command) and `amc-tui tui` call. The app reads and
controls run directories only through amc_tui.run.rundir / launch / gpu / analysis / runlog, does
all file and NVML I/O in thread workers, and never stops a run when it quits.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.dom import DOMNode
from textual.screen import Screen
from textual.widgets import Input

from amc_tui.tui.screens.groups import GroupsScreen
from amc_tui.workspace import Workspace

if TYPE_CHECKING:
    from amc_tui.gpu import GpuSampler, GpuSnapshot
    from amc_tui.run.rundir import RunInfo

Clock = Callable[[], float]


class AmcApp(App):
    """amc-tui. `clock`, `gpu_sampler` and poll intervals are injectable for tests."""

    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses live elsewhere
    TITLE = "amc-tui"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
        Binding("question_mark", "help", "Keys", show=False),
        Binding("G", "groups", "Groups", show=False),
    ]

    def __init__(
        self,
        ws: Workspace,
        *,
        clock: Clock = time.time,
        gpu_sampler: GpuSampler | None = None,
        live_poll_s: float = 0.5,
        runs_poll_s: float = 1.0,
    ) -> None:
        super().__init__()
        self.ws = ws
        self.clock = clock
        self.live_poll_s = live_poll_s
        self.runs_poll_s = runs_poll_s
        self.known_runs: dict[str, RunInfo] = {}  # run dir -> RunInfo, kept by the Runs screen
        self._gpu_sampler = gpu_sampler
        self._gpu_lock = threading.Lock()
        self.sub_title = ws.root.name

    def get_default_screen(self) -> Screen:
        from amc_tui.tui.screens.runs import RunsScreen

        screen = RunsScreen()
        screen.POLL_S = self.runs_poll_s
        return screen

    # ------------------------------------------------------------------ shared services

    def sample_gpus(self) -> GpuSnapshot:
        """A GpuSnapshot (call from a worker thread: NVML I/O); never raises."""
        with self._gpu_lock:
            if self._gpu_sampler is None:
                from amc_tui.gpu import GpuSampler

                self._gpu_sampler = GpuSampler()
            return self._gpu_sampler.sample()

    def on_key(self, event: events.Key) -> None:
        """A printable key reaches the app while a text box has focus only when it was typed
        before the focus moved there (`/calm` typed fast on the Runs screen): it belongs in
        the box. Keys typed in the box itself never get here (the box keeps them)."""
        focused = self.focused
        if isinstance(focused, Input) and event.is_printable and event.character:
            event.stop()
            focused.insert_text_at_cursor(event.character)

    def report_error(self, message: str, title: str = "") -> None:
        """An error in place: a notification (plain text, never markup or a traceback)."""
        line = " ".join(str(message).strip().splitlines()[-1:]) or "error"
        self.notify(line, title=title, severity="error", timeout=8, markup=False)

    def report(self, message: str, severity: str = "information") -> None:
        self.notify(message, severity=severity, markup=False)  # type: ignore[arg-type]

    def first_rows_painted(self) -> None:
        """Called once, after the refresh that first shows run rows (the benchmark hooks it)."""

    # ------------------------------------------------------------------ navigation

    def open_live(self, run_dir: Path) -> None:
        from amc_tui.tui.screens.live import LiveScreen

        self.push_screen(LiveScreen(Path(run_dir)))

    def open_analysis(self, run_dir: Path) -> None:
        from amc_tui.tui.screens.analysis import AnalysisScreen

        self.push_screen(AnalysisScreen(Path(run_dir)))

    def open_compare(self, a: Path, b: Path) -> None:
        from amc_tui.tui.screens.compare import CompareScreen

        self.push_screen(CompareScreen(Path(a), Path(b)))

    def open_runlog(self, run_id: str | None = None) -> None:
        from amc_tui.tui.screens.runlog import RunlogScreen

        self.push_screen(RunlogScreen(run_id))

    def open_gpus(self) -> None:
        from amc_tui.tui.screens.gpus import GpusScreen

        self.push_screen(GpusScreen())

    def open_new_run(self) -> None:
        from amc_tui.tui.screens.new_run import NewRunScreen

        self.push_screen(NewRunScreen())

    def action_groups(self) -> None:  # sweep groups, from any screen
        if not isinstance(self.screen, GroupsScreen):
            self.push_screen(GroupsScreen())

    def action_home(self) -> None:
        while len(self.screen_stack) > 1:
            self.pop_screen()

    def action_help(self) -> None:
        if self.screen.query("KeysPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def action_show_help_panel(self) -> None:
        """The keys panel: the screen's keys first, then the app's, then the focused widget's
        (the palette's "Keys" command lands here too)."""
        from amc_tui.tui.widgets.keys_panel import KeysPanel

        if not self.screen.query(KeysPanel):
            self.screen.mount(KeysPanel())

    def action_hide_help_panel(self) -> None:
        self.screen.query("KeysPanel").remove()

    # ------------------------------------------------------------------ run actions

    def confirm_stop(self, info: RunInfo) -> None:
        from amc_tui.tui.screens.dialogs import Confirm

        if not info.active:
            self.report(f"{info.name} is {info.state}: nothing to stop", "warning")
            return

        def done(ok: bool | None) -> None:
            if ok:
                self._stop(info.dir)

        self.push_screen(Confirm(f"Stop {info.name} ({info.state})?", yes="Stop"), done)

    @work(thread=True, group="run-action", exit_on_error=False)
    def _stop(self, run_dir: Path) -> None:
        from amc_tui.launch.stop import stop_run
        from amc_tui.run.rundir import read_run

        try:
            info = stop_run(self.ws, read_run(run_dir), wait=False)
            if info.state == "running":
                text = f"stopping {info.name}: waiting for its checkpoint"
            else:  # a queued run leaves the queue; a quick trainer may already be done
                text = f"{info.state} {info.name}"
            self.call_from_thread(self.report, text)
        except Exception as e:  # noqa: BLE001 - shown in place, never a traceback
            self.call_from_thread(self.report_error, f"stop failed: {e}")

    def confirm_resume(self, info: RunInfo) -> None:
        """Resume in place a stopped, crashed or failed run; a completed one only as a new run
        trained on from its checkpoint (asked first); never an active or unreadable one."""
        from amc_tui.tui.screens.dialogs import Confirm

        if info.state == "unknown":
            self.report_error(
                f"{info.name}: its status cannot be read ({info.error or 'status.json'}); "
                f"`amc-tui repair {info.name}` rebuilds it. Nothing was resumed."
            )
            return
        if info.active:
            self.report(f"{info.name} is {info.state}: nothing to resume", "warning")
            return
        if info.state != "completed":
            self.resume(info)
            return

        def done(ok: bool | None) -> None:
            if ok:
                self.resume(info, as_new=True)

        self.push_screen(
            Confirm(
                f"{info.name} is completed. Resume it as a new run, trained on from its "
                "checkpoint (this run stays as it is)?",
                yes="Resume as new run",
                danger=False,
            ),
            done,
        )

    @work(thread=True, group="run-action", exit_on_error=False)
    def resume(self, info: RunInfo, as_new: bool = False) -> None:
        from amc_tui.launch.queue import resume_run
        from amc_tui.run.rundir import read_run

        try:
            new = resume_run(self.ws, read_run(info.dir), as_new=as_new)
            text = (f"resumed {info.name} as new run {new.name}: {new.state}" if as_new
                    else f"resumed {new.name}: {new.state}")  # fmt: skip
            self.call_from_thread(self.report, text)
        except Exception as e:  # noqa: BLE001
            self.call_from_thread(self.report_error, f"resume failed: {e}")

    # ------------------------------------------------------------------ command palette

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Every key binding of the current screen and the app, plus navigation, each once
        and named for people (the screen's title, never a class name)."""
        titles: set[str] = set()
        for command in super().get_system_commands(screen):
            titles.add(command.title)
            yield command
        seen: set[str] = {"quit"}
        for node in (screen, self):
            where = screen_title(node)
            for binding in _bindings(node):
                if not binding.description or binding.action in seen:
                    continue
                seen.add(binding.action)
                if binding.description in titles:
                    continue  # e.g. "Keys": Textual's command opens the same panel
                titles.add(binding.description)
                first = dataclasses.replace(binding, key=binding.key.split(",")[0].strip())
                key = self.get_key_display(first)
                yield SystemCommand(
                    binding.description,
                    f"{where} · key {key}",
                    partial(self.run_action, binding.action, node),
                )
        for title, help_text, callback in (
            ("Go to Runs", "the home screen", self.action_home),
            ("Go to New run", "config form, launch and queue", self.open_new_run),
            ("Go to GPUs", "GPU utilisation and holders", self.open_gpus),
            ("Go to RUNLOG", "the workspace's RUNLOG.md", self.open_runlog),
        ):
            if title not in seen:
                yield SystemCommand(title, help_text, callback)


SCREEN_TITLES = {
    "RunsScreen": "Runs",
    "NewRunScreen": "New run",
    "LiveScreen": "Live",
    "AnalysisScreen": "Analysis",
    "CompareScreen": "Compare",
    "RunlogScreen": "RUNLOG",
    "GpusScreen": "GPUs",
}


def screen_title(node: DOMNode) -> str:
    """What the palette calls a screen: its title, "everywhere" for app-wide keys."""
    if isinstance(node, App):
        return "everywhere"
    name = type(node).__name__
    return SCREEN_TITLES.get(name) or name.removesuffix("Screen")


def _bindings(node: DOMNode) -> list[Binding]:
    out: list[Binding] = []
    for b in getattr(type(node), "BINDINGS", []):
        if isinstance(b, Binding):
            out.append(b)
        elif isinstance(b, tuple) and len(b) >= 3:
            out.append(Binding(*b))
    for cls in type(node).__mro__[1:]:
        if cls.__name__ in ("Screen", "App", "Widget", "DOMNode"):
            break
        for b in cls.__dict__.get("BINDINGS", []):
            if isinstance(b, Binding) and all(b.action != o.action for o in out):
                out.append(b)
    return out


def run_app(ws: Workspace) -> int:
    """Open the app; quitting leaves every run running."""
    AmcApp(ws).run()
    return 0
