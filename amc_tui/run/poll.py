"""Reading every run of a workspace each second or so (the app's Runs view and its alerts
pass), at a cost that does not grow with history: 10,000 ended runs cost the app half a core
when each poll listed the runs folder and checked every run's three files.

- `RunFolders`: the runs folder listed again only when it changed.
- `Turns`: ended runs (completed, failed or stopped, their end recorded: `index.settled`)
  change only when someone resumes, repairs or edits them, so each is checked once every
  ceil(runs / `SETTLED_CHECKS`) polls; live, queued and damaged runs are checked every poll.
- `RunPoll`: both, over a `RunCache` first filled from the run index, for a caller that
  wants every run each poll.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from amc_tui.run import index
from amc_tui.run.gcpause import paused_gc
from amc_tui.run.rundir import (
    RunCache,
    RunInfo,
    _folders,
    _sort_key,
    _stamp,
    is_run_dir,
    without_events,
)
from amc_tui.workspace import Workspace

# ended runs a poll checks: every one of up to this many runs each poll; of 10,000, each
# every 10 polls (checking all of them took 0.3 s of CPU a poll)
SETTLED_CHECKS = 1000


class RunFolders:
    """`run_dirs` for a caller that polls (the app, every second): the runs folder is listed
    again only when its own stamp changed, since making, renaming or removing a run folder
    changes it (the launcher renames a finished folder into runs/; 10,000 runs: one stat
    instead of a listing and 20,000 stats). A folder that was not a run when listed
    (another tool's, or one filled in place) is checked again every time. A stamp younger
    than `RECENT_S` is not trusted (a change in the same clock tick as the listing would keep
    it), so the folder is listed again until it has been quiet that long. Not seen until runs/
    changes: a run folder whose meta.json or config.toml is removed (its RunInfo then says
    why it cannot be read)."""

    RECENT_S = 2.0

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._stamp: tuple[int, int, int] | None = None
        self._runs: list[Path] = []
        self._pending: list[str] = []  # folders that were not runs when last listed

    def list(self) -> list[Path]:
        """Every run directory, as `run_dirs` would list it now."""
        stamp = _stamp(os.fspath(self.ws.runs))
        fresh = stamp is not None and time.time() - stamp[1] / 1e9 > self.RECENT_S
        if stamp is None or stamp != self._stamp or not fresh:
            self._stamp = stamp if fresh else None
            runs: list[Path] = []
            self._pending = []
            for folder in _folders(self.ws):
                if is_run_dir(folder):
                    runs.append(Path(folder))
                else:
                    self._pending.append(folder)
            self._runs = runs
        elif self._pending:
            became = [f for f in self._pending if is_run_dir(f)]
            if became:
                self._pending = [f for f in self._pending if f not in became]
                self._runs = [*self._runs, *map(Path, became)]
        return list(self._runs)


class Turns:
    """Which ended runs a poll checks: a run's turn comes once every `rounds` polls, rounds =
    runs / `per_poll` rounded up, by a hash of its folder, so runs made or deleted meanwhile
    never move another run's turn (positions in the listing would shift). About `per_poll`
    runs a poll; 0 checks none."""

    def __init__(self, per_poll: int | None = None) -> None:
        self.per_poll = SETTLED_CHECKS if per_poll is None else per_poll
        self._poll = 0

    def start(self, n: int) -> tuple[int, int]:
        """Begin a poll over `n` runs: its turn (slot, rounds) for `due`."""
        rounds = -(-max(1, n) // self.per_poll) if self.per_poll > 0 else 0
        slot = self._poll % rounds if rounds else -1
        self._poll += 1
        return slot, rounds

    @staticmethod
    def due(base: str, turn: tuple[int, int]) -> bool:
        """Whether the run in folder `base` is checked by the poll of this turn."""
        slot, rounds = turn
        return rounds > 0 and hash(base) % rounds == slot

    def rests(self, base: str, known: RunInfo | None, turn: tuple[int, int]) -> bool:
        """Whether this poll may take the run as last read (`known`) without checking its
        files: an ended run whose turn it is not."""
        return known is not None and index.settled(known) and not self.due(base, turn)


class RunPoll:
    """Every run of a workspace, newest first, each call (`list_runs(ws,
    with_last_epoch=False)` without its cost): the first from the run index (one query and a
    few stats a run), later ones checking live runs and a turn of ended ones. The RunInfo
    objects are the cache's own: read them, never change them."""

    def __init__(self, ws: Workspace, turns: Turns | None = None) -> None:
        self.ws = ws
        self.folders = RunFolders(ws)
        self.turns = turns or Turns()
        self.cache = RunCache()
        self._seeded = False

    def runs(self) -> list[RunInfo]:
        paths = self.folders.list()
        fresh: dict[str, RunInfo] = {}
        if not self._seeded:
            self._seeded = True
            with paused_gc(keep=True):  # the cache holds them for the poller's life
                try:
                    found = index.scan(self.ws, extras=False)
                except Exception:  # noqa: BLE001 - a cache: the runs are read below
                    found = {}
                fresh = {b: info for b, (key, info) in found.items()
                         if self.cache.seed(b, without_events(key), info)}  # fmt: skip
        turn = self.turns.start(len(paths))
        out: list[RunInfo] = []
        for path in paths:
            base = os.fspath(path)
            info = fresh.pop(base, None)
            if info is None:
                known = self.cache.peek(base)
                if self.turns.rests(base, known, turn):
                    info = known
                else:
                    info = self.cache.read(base, with_last_epoch=False, copy=False)
            out.append(info)
        self.cache.forget_missing({os.fspath(p) for p in paths})
        out.sort(key=_sort_key, reverse=True)  # newest first, as list_runs
        return out
