"""The rules every reader and writer of a run shares, each defined once.

Which metrics an epoch event carries and how a person reads them (percent or number, lower or
higher is better), the analysis export's file names and per-cell columns, and the ETA formula.
Pure: no I/O, no imports from the rest of the package, so the trainer, the CLI, the RUNLOG
writer and the app can all import it. The run directory's files and readers live in `runs`.
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any

# --------------------------------------------------------------------------- metrics

# The per-split metrics of an epoch event (`train` and `val` objects), in display order.
METRICS = ("loss", "acc_mod", "acc_snr", "acc_combined", "snr_mae_db", "snr_within_1")
# Shares of frames (0..1), shown to people as percent; the others are plain numbers.
PERCENT_METRICS = frozenset({"acc_mod", "acc_snr", "acc_combined", "snr_within_1"})
LOWER_IS_BETTER = frozenset({"loss", "snr_mae_db"})
SPLITS = ("train", "val", "test")
DEFAULT_SELECT = "val.acc_combined"


def metric_name(metric: str) -> str:
    """`val.acc_combined` -> `acc_combined` (a bare name is returned as is)."""
    return metric.rpartition(".")[2]


def is_percent(metric: str) -> bool:
    """True when the metric (bare or dotted) is a share shown as percent."""
    return metric_name(metric) in PERCENT_METRICS


def lower_is_better(metric: str) -> bool:
    return metric_name(metric) in LOWER_IS_BETTER


def is_number(value: Any) -> bool:
    """A finite real number (an int, a float, a numpy scalar; not a bool): anything else is
    'no data'."""
    kind = type(value)
    if kind is float or kind is int:  # the common case, without the slow ABC check
        return math.isfinite(value)
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def metric_value(event: dict[str, Any] | None, dotted: str) -> float | None:
    """The value at a dotted path of an epoch event (`val.acc_combined`); None when missing
    or not a finite number."""
    node: Any = event
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return float(node) if is_number(node) else None


def is_better(value: float | None, best: float | None, metric: str) -> bool:
    """True when `value` beats `best` for `metric`; a missing or non-finite value never does,
    and any finite value beats no best yet."""
    if not is_number(value):
        return False
    if not is_number(best):
        return True
    return value < best if lower_is_better(metric) else value > best  # type: ignore[operator]


# --------------------------------------------------------------------------- export layout

# Health rules (run/health.py evaluates them in the trainer; run.stop_on names them). The two
# severe ones mean the run is wasted: it learned nothing, or its loss ran away.
HEALTH_RULES = ("learned-nothing", "diverged", "plateau", "overfitting", "data-bound")
SEVERE_HEALTH = frozenset({"learned-nothing", "diverged"})


SUMMARY_FILE = "summary.json"
PER_CELL_FILE = "per_cell.csv"
CONFUSION_FILES = {"mod": "confusion_mod.csv", "snr": "confusion_snr.csv"}
F1_FILES = {"mod": "f1_mod.csv", "snr": "f1_snr.csv"}
# The modulation confusion per true SNR, long form: one row per (snr_db, true, pred) with a
# count > 0 (a missing row is 0). Exports written before it existed lack the file.
CONFUSION_BY_SNR_FILE = "confusion_mod_by_snr.csv"
CONFUSION_BY_SNR_COLUMNS = ("snr_db", "true", "pred", "count")
EXPORT_FILES = (
    SUMMARY_FILE,
    PER_CELL_FILE,
    *CONFUSION_FILES.values(),
    CONFUSION_BY_SNR_FILE,
    *F1_FILES.values(),
)
# One row per (modulation, snr_db); n = frames in the cell (0 = no data, never 0 %).
PER_CELL_COLUMNS = ("modulation", "snr_db", "n", "acc_mod", "acc_snr", "acc_combined", "snr_mae_db")
FINAL_EXPORT = "final"


def epoch_export_name(epoch: int) -> str:
    return f"epoch_{epoch:03d}"


# --------------------------------------------------------------------------- trainer liveness

# The trainer rewrites status.json's heartbeat_at this often while it lives (a thread, so a
# long step or evaluation does not delay it); readers call a live trainer `stalled` once the
# heartbeat is older than STALE_AFTER_S (six missed beats: a busy machine or a slow
# filesystem delays a beat, a paused or stuck process misses them all).
HEARTBEAT_S = 5.0
STALE_AFTER_S = 30.0

# The trainer's module (`python -m amc_tui.train --run-dir DIR [--resume]`); tests and fault
# drills put a stand-in trainer in its place through TRAINER_ENV.
TRAINER_MODULE = "amc_tui.train"
TRAINER_ENV = "AMC_TUI_TRAINER_MODULE"


def trainer_module() -> str:
    """The module the launcher starts (locally, under torchrun or in a Slurm job)."""
    return os.environ.get(TRAINER_ENV) or TRAINER_MODULE


# --------------------------------------------------------------------------- ETA


def eta_s(
    epochs_total: int | None,
    epochs_done: int | None,
    epoch_time_s: float | None,
    into_epoch_s: float = 0.0,
) -> float | None:
    """Seconds left: the epochs not yet finished times the latest epoch time, less the time
    already spent in the current epoch (so it counts down between epoch events). None when
    the total or an epoch time is unknown."""
    if not epochs_total or not is_number(epoch_time_s) or epoch_time_s <= 0:  # type: ignore[operator]
        return None
    left = max(0, epochs_total - (epochs_done or 0))
    if left == 0:
        return 0.0
    per_epoch = float(epoch_time_s)  # type: ignore[arg-type]
    return left * per_epoch - min(max(0.0, into_epoch_s), per_epoch)


def start_share(start: dict[str, Any]) -> float:
    """The share of its epoch an attempt had trained before it began, from its `start` event:
    `batch` of `steps_per_epoch` (a resume from a mid-epoch checkpoint); for a start event
    without `batch` (older trainers), a resumed run's steps beyond its finished epochs. 0 for
    a fresh start, a resume at an epoch boundary or a start event that does not say."""
    spe = start.get("steps_per_epoch")
    if not is_number(spe) or spe <= 0:
        return 0.0
    batch = start.get("batch")
    if not is_number(batch):
        step, epoch = start.get("step"), start.get("epoch")
        if not start.get("resumed") or not is_number(step) or not is_number(epoch):
            return 0.0
        batch = step - epoch * spe
    return min(1.0, max(0.0, float(batch) / float(spe)))


class EpochClock:
    """The ETA of a run from its `start` and `epoch` events, fed in file order (other kinds
    are ignored); `contract.eta_s` is the formula.

    The epoch time is the latest *full* epoch's `epoch_time_s`: the first epoch event after a
    `start` that began mid-epoch (`start_share` > 0: a resume from a mid-epoch checkpoint) timed
    only the part of the epoch that attempt trained, so it is not an epoch's length and is
    skipped. The epoch in progress is counted from the later of the last epoch event and the
    last start (plus the share a mid-epoch resume had already done), so the time a run sat
    stopped never counts as progress."""

    def __init__(self) -> None:
        self.epoch_s: float | None = None  # the latest full epoch's time
        self.since: float | None = None  # when the epoch in progress was last picked up
        self.share = 0.0  # the share of that epoch done by then
        self.partial = False  # the next epoch event is a partial epoch

    def feed(self, ev: dict[str, Any]) -> None:
        kind, t = ev.get("kind"), ev.get("t")
        if kind == "start":
            self.share = start_share(ev)
            self.partial = self.share > 0
            self.since = float(t) if is_number(t) else None
        elif kind == "epoch":
            took = ev.get("epoch_time_s")
            if not self.partial and is_number(took) and took > 0:
                self.epoch_s = float(took)
            self.partial, self.share = False, 0.0
            self.since = float(t) if is_number(t) else self.since

    def into_s(self, now: float) -> float:
        """Seconds of the epoch in progress done by `now`, at the latest full epoch's pace."""
        if self.epoch_s is None:
            return 0.0
        since = max(0.0, now - self.since) if self.since is not None else 0.0
        return self.share * self.epoch_s + since

    def eta_s(self, epochs_total: int | None, epochs_done: int | None, now: float) -> float | None:
        """Seconds left at `now` (None before a full epoch has ended)."""
        return eta_s(epochs_total, epochs_done, self.epoch_s, self.into_s(now))
