"""The Textual app: navigation, run actions shared by every screen, and the command palette.

`run_app(ws)` is what `amc-tui` (no command) and `amc-tui tui` call. The app reads and
controls run directories only through amc_tui.run.rundir / launch / gpu / analysis / runlog, does
all file and NVML I/O in thread workers, and never stops a run when it quits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import events, work
from textual.app import App, SystemCommand
from textual.dom import DOMNode
from textual.screen import Screen
from textual.widgets import Input

from amc_tui.gpu import GpuSampler
from amc_tui.tui import keys, registry
from amc_tui.tui.screens.dialogs import Confirm
from amc_tui.tui.widgets.keys_panel import KeysPanel
from amc_tui.workspace import Workspace

if TYPE_CHECKING:
    from amc_tui.gpu import GpuSnapshot
    from amc_tui.run.rundir import RunInfo

Clock = Callable[[], float]
ALERTS_WAIT_S = 30.0  # the first alerts pass waits for the Runs view's rows at most this long


class AmcApp(App):
    """amc-tui. `clock`, `gpu_sampler` and poll intervals are injectable for tests."""

    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses live elsewhere
    TITLE = "amc-tui"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    BINDINGS = keys.bindings("app")

    def __init__(
        self,
        ws: Workspace,
        *,
        clock: Clock = time.time,
        gpu_sampler: GpuSampler | None = None,
        live_poll_s: float = 0.5,
        runs_poll_s: float = 1.0,
        alerts_poll_s: float = 2.0,
    ) -> None:
        super().__init__()
        self.ws = ws
        self.clock = clock
        self.live_poll_s = live_poll_s
        self.runs_poll_s = runs_poll_s
        self.alerts_poll_s = alerts_poll_s
        self._alerts: Any = None  # tui/alerts.py's Alerts, made by the first alerts pass
        self.known_runs: dict[str, RunInfo] = {}  # run dir -> RunInfo, kept by the Runs screen
        self._gpu_sampler = gpu_sampler
        self._gpu_lock = threading.Lock()
        self.sub_title = ws.root.name

    def get_default_screen(self) -> Screen:
        screen = registry.screen_class("runs")()
        screen.POLL_S = self.runs_poll_s
        return screen

    # ------------------------------------------------------------------ shared services

    def sample_gpus(self) -> GpuSnapshot:
        """A GpuSnapshot (call from a worker thread: NVML I/O); never raises."""
        with self._gpu_lock:
            if self._gpu_sampler is None:
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

    def on_mount(self) -> None:
        self.set_timer(self.alerts_poll_s, self._first_alerts_pass)

    def _first_alerts_pass(self, waited_s: float = 0.0) -> None:
        """The first pass reads every run (from the run index): it waits until the Runs view
        has loaded its rows, so the two never share the CPU while the table fills (10,000
        runs: 0.5 s each on 2 cores), but never longer than ALERTS_WAIT_S (a Runs view whose
        scan failed never loads)."""
        runs = next((s for s in self.screen_stack if registry.name_of(s) == "runs"), None)
        if runs is not None and not getattr(runs, "loaded", True) and waited_s < ALERTS_WAIT_S:
            self.set_timer(0.5, partial(self._first_alerts_pass, waited_s + 0.5))
            return
        self._alerts_pass()

    @work(thread=True, group="alerts", exit_on_error=False)
    def _alerts_pass(self) -> None:
        """Notifications and this session's alerts (tui/alerts.py), off the UI thread; the
        next pass is armed when this one is applied, so passes never overlap."""
        try:
            if self._alerts is None:
                self._alerts = registry.run_action("alerts")(self.ws)
            got = self._alerts.tick()
        except Exception:  # noqa: BLE001 - alerts must never take the app down
            got = []
        with contextlib.suppress(RuntimeError):  # the app is closing
            self.call_from_thread(self._ring, got)

    def _ring(self, alerts: list[Any]) -> None:
        """The terminal bell and one toast per event of a run this session watched."""
        if alerts:
            self.bell()
        for a in alerts:
            self.notify(a.body, title=a.title, severity=a.severity, timeout=10, markup=False)
        self.set_timer(self.alerts_poll_s, self._alerts_pass)

    def first_rows_painted(self) -> None:
        """Called once, after the refresh that first shows run rows (the benchmark hooks it)."""

    # ------------------------------------------------------------------ navigation

    def open(self, name: str, *args: object) -> None:
        """Push screen `name` of the screen registry (imported on first use) built with `args`."""
        self.push_screen(registry.screen_class(name)(*args))

    def open_live(self, run_dir: Path) -> None:
        self.open("live", Path(run_dir))

    def open_launched(self, run_dir: Path) -> None:
        """After a launch from New run: the run's Live screen takes the form's place, and the
        Runs screen will highlight the run. Escape then goes to Runs, never back into the
        filled form with a field focused, where a stray key became text ("3g" in the seed);
        `n` opens the form again on the launched config ("(last launched)")."""
        for screen in self.screen_stack:
            if registry.name_of(screen) == "runs":
                screen.highlight(Path(run_dir))  # type: ignore[attr-defined]
        self.switch_screen(registry.screen_class("live")(Path(run_dir)))

    def open_analysis(self, run_dir: Path) -> None:
        self.open("analysis", Path(run_dir))

    def open_explain(self, run_dir: Path) -> None:
        self.open("explain", Path(run_dir))

    def open_compare(self, a: Path, b: Path) -> None:
        self.open("compare", Path(a), Path(b))

    def open_runlog(self, run_id: str | None = None) -> None:
        self.open("runlog", run_id)

    def open_gpus(self) -> None:
        self.open("gpus")

    def open_new_run(self) -> None:
        self.open("new_run")

    def action_groups(self) -> None:  # sweep groups, from any screen
        if registry.name_of(self.screen) != "groups":
            self.open("groups")

    def action_home(self) -> None:
        while len(self.screen_stack) > 1:
            self.pop_screen()

    def action_help(self) -> None:
        if self.screen.query(KeysPanel):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def action_show_help_panel(self) -> None:
        """The keys panel: the screen's keys first, then the app's, then the focused widget's
        (the palette's "Keys" command lands here too)."""
        if not self.screen.query(KeysPanel):
            self.screen.mount(KeysPanel())

    def action_hide_help_panel(self) -> None:
        self.screen.query(KeysPanel).remove()

    # ------------------------------------------------------------------ run actions

    def confirm_stop(self, info: RunInfo) -> None:
        if not info.active:
            self.report(f"{info.name} is {info.state}: nothing to stop", "warning")
            return

        def done(ok: bool | None) -> None:
            if ok:
                self.start_run_action("stop", info.dir)

        self.push_screen(Confirm(f"Stop {info.name} ({info.state})?", yes="Stop"), done)

    def confirm_resume(self, info: RunInfo) -> None:
        """Resume in place a stopped, crashed or failed run; a completed one only as a new run
        trained on from its checkpoint (asked first); never an active or unreadable one."""
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

    def resume(self, info: RunInfo, as_new: bool = False) -> None:
        self.start_run_action("resume", info, as_new)

    @work(thread=True, group="run-action", exit_on_error=False)
    def start_run_action(self, name: str, *args: object) -> None:
        """Run action `name` of the screen registry (`run_actions.stop`, `.resume`) in a thread
        worker: its module (the launcher and what it imports) loads here, off the UI thread."""
        try:
            text = registry.run_action(name)(self.ws, *args)
            self.call_from_thread(self.report, text)
        except Exception as e:  # noqa: BLE001 - shown in place, never a traceback
            self.call_from_thread(self.report_error, f"{name} failed: {e}")
        target = args[0] if args else None
        run_dir = getattr(target, "dir", target)
        if isinstance(run_dir, (str, Path)):
            with contextlib.suppress(RuntimeError):  # the app is closing
                self.call_from_thread(self._recheck, Path(run_dir))

    def _recheck(self, run_dir: Path) -> None:
        """The Runs view reads a run the app just acted on at once (an ended run is otherwise
        checked in turn: run/poll.py)."""
        for screen in self.screen_stack:
            if registry.name_of(screen) == "runs":
                screen.recheck(run_dir)  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ command palette

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Every key of the current screen and the app (the key registry's rows), plus
        navigation, each once and named for people (the screen's title, never a class name)."""
        titles: set[str] = set()
        for command in super().get_system_commands(screen):
            titles.add(command.title)
            yield command
        seen: set[str] = {"quit", "command_palette"}  # Textual's own commands cover these
        for node in (screen, self):
            where = screen_title(node)
            for row in keys.rows(keys.where_of(node)):
                if row.action in seen:
                    continue
                seen.add(row.action)
                if row.text in titles:
                    continue  # e.g. "Keys": Textual's command opens the same panel
                titles.add(row.text)
                first = dataclasses.replace(row.binding(), key=row.key.split(",")[0].strip())
                yield SystemCommand(
                    row.text,
                    f"{where} · key {self.get_key_display(first)}",
                    partial(self.run_action, row.action, node),
                )
        for title, help_text, callback in (
            ("Go to Runs", "the home screen", self.action_home),
            ("Go to New run", "config form, launch and queue", self.open_new_run),
            ("Go to GPUs", "GPU utilisation and holders", self.open_gpus),
            ("Go to RUNLOG", "the workspace's RUNLOG.md", self.open_runlog),
        ):
            if title not in seen:
                yield SystemCommand(title, help_text, callback)


def screen_title(node: DOMNode) -> str:
    """What the palette calls a screen: its title, "everywhere" for app-wide keys."""
    if isinstance(node, App):
        return "everywhere"
    if (name := registry.name_of(node)) is not None:
        return registry.SCREENS[name].title
    return type(node).__name__.removesuffix("Screen")


def run_app(ws: Workspace) -> int:
    """Open the app; quitting leaves every run running."""
    AmcApp(ws).run()
    return 0
