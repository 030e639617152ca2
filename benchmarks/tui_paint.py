"""Child process of bench_cli: starts the TUI headless on a workspace and reports, on stdout,
one JSON line when the first run rows are painted and one when the first scan has loaded
every run, then exits. `python benchmarks/tui_paint.py WORKSPACE [--floor] [--empty-ok]
[--size WxH] [--idle-cpu S]`. With `--idle-cpu S` it stays on after loading: IDLE_SETTLE_S
later it measures the process's CPU time over S seconds of the app sitting idle (its polls,
the alerts pass) and prints it as one more line, `idle_cpu` with `cpu_per_s`. Phase marks
(scan started, first batch read) come from wrapping amc_tui.run.rundir.read_run.

The parent times from spawning this process to reading each line, so interpreter start-up,
imports and Textual's own start-up are all inside the figure, as a user would see them.
`--floor` paints a bare Textual app with an empty DataTable instead: the part of the first
paint that is Textual's and Python's, not ours.
"""

from __future__ import annotations

import json
import sys
import time

T0 = time.perf_counter()
TIMEOUT_S = 170.0
EMPTY_OK = "--empty-ok" in sys.argv  # an empty workspace: ready = painted and loaded
SIZE = (120, 40)
IDLE_SETTLE_S = 3.0  # after loading: the alerts pass's first scan is over
IDLE_S = float(sys.argv[sys.argv.index("--idle-cpu") + 1]) if "--idle-cpu" in sys.argv else 0.0


def cpu_s() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def say(event: str) -> None:
    """One line per event; `t` = seconds since this script started (after interpreter start)."""
    sys.stdout.write(json.dumps({"event": event, "t": time.perf_counter() - T0}) + "\n")
    sys.stdout.flush()


def floor() -> None:
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable, Footer, Header

    class Bare(App):
        def compose(self) -> ComposeResult:
            yield Header()
            yield DataTable()
            yield Footer()

        def on_mount(self) -> None:
            t = self.query_one(DataTable)
            t.add_columns("name", "state")
            t.add_row("a", "b")
            self.call_after_refresh(self.done)

        def done(self) -> None:
            say("painted")
            say("loaded")
            self.exit()

    Bare().run(headless=True, size=SIZE)


def amc(root: str) -> None:
    from pathlib import Path

    say("imports_start")
    import amc_tui.run.rundir as runs_module
    from amc_tui.tui import app as app_module
    from amc_tui.tui.app import AmcApp
    from amc_tui.tui.screens import runs as screen_module
    from amc_tui.workspace import Workspace

    read_run = runs_module.read_run
    first_batch = int(getattr(screen_module, "FIRST_BATCH", getattr(screen_module, "BATCH", 100)))
    calls = [0]

    def traced_read_run(*a: object, **kw: object) -> object:
        """Marks when the scan worker starts reading runs and when its first batch is read."""
        calls[0] += 1
        if calls[0] == 1:
            say("scan_started")
        out = read_run(*a, **kw)
        if calls[0] == first_batch:
            say("first_batch_read")
        return out

    runs_module.read_run = traced_read_run  # the scan worker looks it up at call time

    class Timed(AmcApp):
        # Textual resolves a relative CSS_PATH next to the subclass's module: point it back
        CSS_PATH = str(Path(app_module.__file__).parent / str(AmcApp.CSS_PATH))

        painted = False
        loaded_at = 0.0
        cpu0: float | None = None

        def first_rows_painted(self) -> None:
            say("painted")
            self.painted = True

        def on_mount(self) -> None:
            super().on_mount()  # the alerts pass: part of what an idle app does
            self.set_interval(0.02, self._check)

        def _check(self) -> None:
            if self.loaded_at:
                self._idle()
                return
            loaded = getattr(self.screen, "loaded", False)
            if EMPTY_OK and loaded and not self.painted and not getattr(self.screen, "infos", 1):
                say("painted")  # an empty workspace: its Runs screen is ready, no row to paint
                self.painted = True
            if self.painted and loaded:
                say("loaded")
                if not IDLE_S:
                    self.exit()
                self.loaded_at = time.perf_counter()
            elif time.perf_counter() - T0 > TIMEOUT_S:
                say("timeout")
                self.exit()

        def _idle(self) -> None:
            since = time.perf_counter() - self.loaded_at
            if self.cpu0 is None and since >= IDLE_SETTLE_S:
                self.cpu0 = cpu_s()
            elif self.cpu0 is not None and since >= IDLE_SETTLE_S + IDLE_S:
                line = {"event": "idle_cpu", "t": time.perf_counter() - T0,
                        "cpu_per_s": (cpu_s() - self.cpu0) / (since - IDLE_SETTLE_S)}  # fmt: skip
                sys.stdout.write(json.dumps(line) + "\n")
                sys.stdout.flush()
                self.exit()

    app = Timed(Workspace(Path(root)))
    say("app_created")
    app.run(headless=True, size=SIZE)


if __name__ == "__main__":
    if "--size" in sys.argv:
        w, h = sys.argv[sys.argv.index("--size") + 1].split("x")
        SIZE = (int(w), int(h))
    if "--floor" in sys.argv:
        floor()
    else:
        amc(sys.argv[1])
