"""What the app rings its bell and shows a toast for: the events of runs this app session saw
active (a run ending, stalling, a health rule firing), with or without `[notify]`
configured. Loaded through the registry (`registry.RUN_ACTIONS["alerts"]`) in the app's
thread worker: amc_tui.notify imports the sweep group record, which the start path must not.
The same pass notifies (`notify.observe.observe_workspace`) when amc-tui.toml asks for it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from amc_tui.notify.message import Notice
from amc_tui.notify.observe import observe_workspace
from amc_tui.run.poll import RunPoll
from amc_tui.run.rundir import ACTIVE_STATES, RunInfo
from amc_tui.workspace import Workspace

SEVERITY = {"failure": "error", "warning": "warning"}


@dataclass(frozen=True)
class Alert:
    title: str
    body: str
    severity: str  # a Textual notify severity


class Alerts:
    """One app session's watch: the runs it saw active, the events it already rang for."""

    def __init__(self, ws: Workspace, started: float | None = None) -> None:
        self.ws = ws
        self.started = time.time() if started is None else started  # file times are real
        self.watched: set[str] = set()
        self.rung: set[str] = set()
        self._poll = RunPoll(ws)

    def tick(self) -> list[Alert]:
        """One pass (a thread worker's): notify, then what is new for this session."""
        runs = self._poll.runs()
        return self.pick(runs, observe_workspace(self.ws, runs, session_since=self.started))

    def pick(self, runs: list[RunInfo], notices: list[Notice]) -> list[Alert]:
        self.watched |= {r.id for r in runs if r.state in ACTIVE_STATES}
        new = [
            n for n in notices
            if n.fields.get("run_id") in self.watched and n.t >= self.started
            and n.key not in self.rung
        ]  # fmt: skip
        self.rung |= {n.key for n in new}
        return [Alert(n.title.removeprefix("amc-tui: "), n.body, SEVERITY.get(n.kind, "information"))
                for n in new]  # fmt: skip
