"""What the Runs poll worker reads beyond RunInfo (runs_view.RunExtra), with a cache so a
poll re-reads nothing that cannot have changed.

The best epoch's event: the run's last epoch event when that is the best (most runs while
they improve: no extra read), else the best epoch's export summary (a small JSON), else the
epoch events themselves. The config values behind the hyperparameter columns: config.toml is
written once when a run is created, so it is read once per run, and only while such a column
is shown (first paint never waits for 1,000 TOML parses).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from amc_tui import contract
from amc_tui.config import Config
from amc_tui.fsutil import read_json
from amc_tui.run.rundir import dig, epoch_events, read_config_dict
from amc_tui.tui.models.runs_view import COLUMNS, RunExtra

if TYPE_CHECKING:
    from amc_tui.run.rundir import RunInfo

CONFIG_KEYS = tuple(c.config for c in COLUMNS if c.config)


class ExtraReader:
    """Used from the poll worker thread only."""

    def __init__(self) -> None:
        self._best: dict[str, tuple[int, dict[str, Any] | None]] = {}
        self._config: dict[str, dict[str, Any]] = {}

    def read(self, info: RunInfo, with_config: bool) -> RunExtra:
        key = os.fspath(info.dir)
        return RunExtra(
            best_event=self.best_event(info),
            config=self.config(info) if with_config else self._config.get(key),
        )

    def best_event(self, info: RunInfo) -> dict[str, Any] | None:
        epoch = (info.best or {}).get("epoch")
        if not isinstance(epoch, int) or isinstance(epoch, bool):
            return None
        last = info.last_epoch
        if last is not None and last.get("epoch") == epoch:
            return last
        if info.best_event is not None and info.best_event.get("epoch", epoch) == epoch:
            return info.best_event  # read with the run (the run index keeps it)
        key = os.fspath(info.dir)
        hit = self._best.get(key)
        if hit is not None and hit[0] == epoch:
            return hit[1]
        event = _summary(info, epoch) or _from_events(info, epoch)
        self._best[key] = (epoch, event)
        return event

    def config(self, info: RunInfo) -> dict[str, Any]:
        key = os.fspath(info.dir)
        if key not in self._config:
            self._config[key] = _config_values(info)
        return self._config[key]

    def has_config(self, info: RunInfo) -> bool:
        return os.fspath(info.dir) in self._config

    def forget_missing(self, keep: set[str]) -> None:
        for cache in (self._best, self._config):
            for key in [k for k in cache if k not in keep]:
                del cache[key]


def _summary(info: RunInfo, epoch: int) -> dict[str, Any] | None:
    data = read_json(info.rundir.epoch_export(epoch) / contract.SUMMARY_FILE)
    return data if isinstance(data, dict) and isinstance(data.get("val"), dict) else None


def _from_events(info: RunInfo, epoch: int) -> dict[str, Any] | None:
    found = None
    for ev in epoch_events(info.dir):
        if ev.get("epoch") == epoch:
            found = ev  # the last one: a resumed run may repeat an epoch
    return found


def _config_values(info: RunInfo) -> dict[str, Any]:
    """The hyperparameter columns' config keys, defaults filled in for keys the file omits
    (as the trainer saw them); nothing when config.toml cannot be read."""

    raw = read_config_dict(info.rundir)
    if not raw:
        return {}  # missing or unreadable: unknown, never the defaults
    defaults = Config()
    out: dict[str, Any] = {}
    for dotted in CONFIG_KEYS:
        value = dig(raw, dotted)
        out[dotted] = defaults.get(dotted) if value is None else value
    return out
