"""How runs read as plain text: numbers, percents, deltas, times, tables and event lines.

The CLI (`ls`, `show`, `compare`, `tail`, `run`), the RUNLOG writer, the app and the figures
print the same values, so each format lives here once and every surface calls it with its
own digits and missing mark: whether a metric reads as a percent is `contract.is_percent`'s
call alone, a share's difference reads in points (`pt`), anything that is not a finite number
reads as the caller's missing mark, and the live ETA is `contract.eta_s`. Pure (no I/O, only
`contract`), so the trainer may import it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from amc_tui import contract

MISSING = "-"
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")  # fmt: skip

# --------------------------------------------------------------------------- values


def pct(value: Any, digits: int = 2, missing: str = MISSING, unit: str = "%") -> str:
    """A share (0..1) as percent with `digits` decimals: 0.4061 -> `40.61%` (`40.6%` with 1,
    `40.61` with `unit=""`)."""
    return f"{100 * float(value):.{digits}f}{unit}" if contract.is_number(value) else missing


def num(value: Any, spec: str = ".3f", missing: str = MISSING, unit: str = "") -> str:
    """A plain number in a format spec: 1.30475 -> `1.305`; `unit` follows a number only."""
    return f"{float(value):{spec}}{unit}" if contract.is_number(value) else missing


def metric(
    name: str,
    value: Any,
    spec: str = ".4g",
    missing: str = MISSING,
    digits: int = 2,
    unit: str = "%",
) -> str:
    """A metric's value as a person reads it: a share as percent with `digits` decimals
    (`unit` after it), anything else (loss, MAE in dB) as a number in `spec`."""
    if contract.is_percent(name):
        return pct(value, digits, missing, unit)
    return num(value, spec, missing)


def delta(
    name: str, value: Any, spec: str = "+.4f", missing: str = MISSING, digits: int = 2
) -> str:
    """A signed difference of a metric: a share's in percentage points with `digits` decimals
    (`-0.36pt`), anything else as a signed number in `spec` (`+0.0029`)."""
    if contract.is_percent(name):
        return points(value, digits, missing)
    return num(value, spec, missing)


def points(value: Any, digits: int = 2, missing: str = MISSING, unit: str = "pt") -> str:
    """A difference of two shares in signed percentage points: -0.0036 -> `-0.36pt`."""
    return f"{100 * float(value):+.{digits}f}{unit}" if contract.is_number(value) else missing


def rate(samples_per_s: Any, missing: str = MISSING) -> str:
    """Throughput: `780 samples/s`, with a k above 10 000 (`12.3k samples/s`)."""
    if not contract.is_number(samples_per_s):
        return missing
    x = float(samples_per_s)
    return f"{x / 1000:.1f}k samples/s" if x >= 10_000 else f"{x:.0f} samples/s"


def config_value(v: Any) -> str:
    """A config value, short (`1e-05`, `true`, `""` for an empty string), for diff tables."""
    if v is None:
        return MISSING
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, str):
        return v if v else '""'
    return str(v)


def best(record: dict[str, Any] | None) -> str:
    """A run's best record (`{"metric", "value", "epoch"}`) as `40.61% @6`."""
    if not record:
        return MISSING
    return (
        f"{metric(str(record.get('metric', '')), record.get('value'))} @{record.get('epoch', '?')}"
    )


# --------------------------------------------------------------------------- times


def duration(seconds: Any, missing: str = MISSING) -> str:
    """Whole seconds, short: `42s`, `6m29s`, `2h05m`, `1d02h`; `missing` for a negative or
    unknown time."""
    if not contract.is_number(seconds) or seconds < 0:
        return missing
    s = int(seconds)
    if s >= 86400:
        return f"{s // 86400}d{s % 86400 // 3600:02d}h"
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def ago(t: Any, now: float, missing: str = MISSING) -> str:
    """`12s ago` for a unix time (a time ahead of `now` reads `0s ago`)."""
    if not contract.is_number(t):
        return missing
    return f"{duration(max(0.0, now - t))} ago"


def clock(t: Any, missing: str = MISSING) -> str:
    """A local date and minute, `2025-06-15 15:40`."""
    if not contract.is_number(t):
        return missing
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def clock_s(t: Any) -> str:
    """A local time of day to the second (`15:40:01`), for event lines."""
    if not contract.is_number(t):
        return "--:--:--"
    return time.strftime("%H:%M:%S", time.localtime(t))


def utc_date(t: Any) -> str:
    """`June 15, 2025, 15:40:01 UTC`: locale- and zone-independent, so every writer of a
    RUNLOG entry writes the same bytes."""
    if not contract.is_number(t):
        return "?"
    g = time.gmtime(float(t))
    return (
        f"{MONTHS[g.tm_mon - 1]} {g.tm_mday}, {g.tm_year}, "
        f"{g.tm_hour:02d}:{g.tm_min:02d}:{g.tm_sec:02d} UTC"
    )


# --------------------------------------------------------------------------- tables


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    """Left-aligned columns two spaces apart, trailing spaces trimmed, header first."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*r).rstrip() for r in [header, *rows])


TRAJECTORY_HEADER = ("EPOCH", "VAL COMB", "VAL MOD", "VAL SNR", "VAL LOSS", "TRAIN COMB",
                     "TRAIN LOSS", "W MOD", "W SNR")  # fmt: skip


def trajectory_table(traj: Sequence[dict[str, Any]], best_epoch: Any = None) -> str:
    """`show`'s table of `analysis.trajectory` rows, the best epoch marked with `*`."""
    rows = [
        [
            str(r["epoch"]) + (" *" if best_epoch is not None and r["epoch"] == best_epoch else ""),
            pct(r["val_acc_combined"]), pct(r["val_acc_mod"]), pct(r["val_acc_snr"]),
            num(r["val_loss"]), pct(r["train_acc_combined"]), num(r["train_loss"]),
            pct(r["w_mod"]), pct(r["w_snr"]),
        ]
        for r in traj
    ]  # fmt: skip
    return table(rows, TRAJECTORY_HEADER)


# --------------------------------------------------------------------------- event lines


def _share_points(value: Any) -> str:
    """A weight share as bare points with one decimal (`61.9`); the line adds the `%`."""
    return num(100 * float(value) if contract.is_number(value) else None, ".1f")


def epoch_line(ev: dict[str, Any], epochs: int | str = "?") -> str:
    """One line per finished epoch: validation and training metrics, weights, speed."""
    v, t = ev.get("val") or {}, ev.get("train") or {}
    w = ev.get("weights") or {}
    line = (
        f"epoch {ev.get('epoch')}/{epochs}  val comb {pct(v.get('acc_combined'))} "
        f"mod {pct(v.get('acc_mod'))} snr {pct(v.get('acc_snr'))} loss {num(v.get('loss'))}"
        f"  | train comb {pct(t.get('acc_combined'))} loss {num(t.get('loss'))}"
    )
    if w:
        line += f"  | w mod/snr {_share_points(w.get('mod'))}/{_share_points(w.get('snr'))}%"
    line += (
        f"  | {num(ev.get('epoch_time_s'), '.1f')} s, "
        f"{num(ev.get('samples_per_s'), '.0f')} samples/s"
    )
    return line + ("  *best*" if ev.get("is_best") else "")


def _batch(ev: dict[str, Any]) -> str:
    return f" batch {ev['batch']}/{ev['batches']}" if "batch" in ev and "batches" in ev else ""


def event_body(ev: dict[str, Any], epochs: int | str = "?") -> str:
    """What an event says, without its time stamp."""
    kind = ev.get("kind")
    if kind == "epoch":
        return epoch_line(ev, epochs)
    if kind == "step":
        return (
            f"epoch {ev.get('epoch')} step {ev.get('step')}{_batch(ev)}  loss {num(ev.get('loss'))} "
            f"(mod {num(ev.get('loss_mod'))}, snr {num(ev.get('loss_snr'))})  "
            f"lr {num(ev.get('lr'), '.2e')}  {num(ev.get('samples_per_s'), '.0f')} samples/s"
        )
    if kind == "start":
        params = ev.get("params")
        return (
            f"start {ev.get('name', '')} on {ev.get('device', '?')}: {ev.get('n_train', '?')} "
            f"train / {ev.get('n_val', '?')} val / {ev.get('n_test', '?')} test frames, "
            f"{len(ev.get('classes') or [])} classes x {len(ev.get('snrs') or [])} SNRs"
            + (f", {params / 1e6:.2f}M parameters" if contract.is_number(params) else "")
            + (" (resumed)" if ev.get("resumed") else "")
        )
    if kind == "end":
        why = f" by {ev['reason']}" if ev.get("reason") else ""
        return (
            f"end: {ev.get('state')}{why} (exit {ev.get('exit_code')}), best {best(ev.get('best'))}"
        )
    if kind == "health":
        return health_line(ev)
    if kind == "submitted":
        array = f" (array {ev['array']})" if ev.get("array") else ""
        return f"submitted to Slurm as job {ev.get('slurm_job_id')}{array}"
    if kind == "restart":
        return (
            f"restart {ev.get('attempt')}/{ev.get('max_restarts')} after {ev.get('reason')} "
            f"(from epoch {ev.get('from_epoch')})"
        )
    rest = " ".join(f"{k}={v}" for k, v in ev.items() if k not in ("t", "kind"))
    return f"{kind} {rest}"


def health_line(ev: dict[str, Any]) -> str:
    """A `health` event: the rule's message when it fires (and the stop it caused), that it
    cleared otherwise."""
    if not ev.get("active", True):
        return f"health: {ev.get('rule')} cleared at epoch {ev.get('epoch')}"
    stop = "; stopped the run (run.stop_on)" if ev.get("action") == "stop" else ""
    return f"health: {ev.get('message') or ev.get('rule')} (epoch {ev.get('epoch')}){stop}"


def event_line(ev: dict[str, Any], epochs: int | str = "?") -> str:
    """One line per event for `tail`: local time of day, then what it says."""
    return f"{clock_s(ev.get('t'))} {event_body(ev, epochs)}"


# --------------------------------------------------------------------------- live progress


def step_eta(
    ev: dict[str, Any],
    epochs: int | None,
    clock: contract.EpochClock | None,
    batch_size: int | None = None,
    batches: int | None = None,
) -> float | None:
    """Seconds left at a `step` event: the run's `contract.EpochClock` (fed its start and epoch
    events) at the step's time, the ETA the app and `show` give at that moment. Before a full
    epoch has ended, the batches of an epoch at the step's throughput, less the step's share
    of them, so the estimate counts down within an epoch.
    """
    current = ev.get("epoch")
    done = max(0, int(current) - 1) if contract.is_number(current) else 0
    t = ev.get("t")
    if clock is not None and clock.epoch_s is not None and contract.is_number(t):
        return clock.eta_s(epochs, done, float(t))
    n = ev.get("batches") or batches
    sps = ev.get("samples_per_s")
    if not (n and batch_size and contract.is_number(sps) and sps > 0):
        return None
    per_epoch = n * batch_size / sps
    batch = ev.get("batch")
    into = per_epoch * min(1.0, batch / n) if contract.is_number(batch) else 0.0
    return contract.eta_s(epochs, done, per_epoch, into)


def progress_line(ev: dict[str, Any], epochs: int | str, eta: float | None) -> str:
    """The live line of a running epoch: where it is, loss, throughput and ETA."""
    where = _batch(ev) or f" step {ev.get('step')}"
    return (
        f"epoch {ev.get('epoch')}/{epochs}{where}  loss {num(ev.get('loss'))}  "
        f"{num(ev.get('samples_per_s'), '.0f')} samples/s  ETA {duration(eta)}"
    )
