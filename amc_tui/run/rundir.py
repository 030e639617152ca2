"""The run directory contract (DESIGN.md section 3) and its event stream (section 4).

Processes talk only through these files: the trainer writes status.json (atomic replace) and
events.jsonl (append-only); the launcher, CLI and TUI read them. Readers tolerate missing
files, a torn last event line and unknown kinds/keys.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amc_tui import contract
from amc_tui.config import Config, loads_config
from amc_tui.errors import UserError
from amc_tui.fsutil import atomic_write_json, read_json, remove_stale_tmp
from amc_tui.run import health, runlock
from amc_tui.run.events import (  # noqa: F401  (the run contract's readers, re-exported)
    EVENTS_FILE,
    EventTailer,
    append_event,
    earlier_attempts_s,
    epoch_event,
    epoch_events,
    eta_events,
    first_event,
    last_event,
    read_events,
)
from amc_tui.run.runlock import pid_alive
from amc_tui.workspace import Workspace

CONFIG_FILE = "config.toml"
META_FILE = "meta.json"
STATUS_FILE = "status.json"
LOG_FILE = "train.log"
CHECKPOINT_DIR = "checkpoints"
EXPORT_DIR = "export"

STATES = (
    "queued", "submitted", "running", "stalled", "completed", "failed", "stopped", "crashed",
    "unknown",
)  # fmt: skip
# submitted: a Slurm job exists for the run (run.executor = "slurm"), no trainer has written
# yet; stalled: the trainer lives (it holds the run's lock) but its heartbeat is old (paused,
# suspended, a stuck filesystem); unknown: status.json is unreadable, nothing acts on the run.
ACTIVE_STATES = frozenset({"queued", "submitted", "running", "stalled"})
FINAL_STATES = frozenset({"completed", "failed", "stopped", "crashed"})


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run directory."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def meta(self) -> Path:
        return self.path / META_FILE

    @property
    def status(self) -> Path:
        return self.path / STATUS_FILE

    @property
    def events(self) -> Path:
        return self.path / EVENTS_FILE

    @property
    def log(self) -> Path:
        return self.path / LOG_FILE

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINT_DIR

    @property
    def last_ckpt(self) -> Path:
        return self.checkpoints / "last.pt"

    @property
    def best_ckpt(self) -> Path:
        return self.checkpoints / "best.pt"

    @property
    def export(self) -> Path:
        return self.path / EXPORT_DIR

    def epoch_export(self, epoch: int) -> Path:
        return self.export / contract.epoch_export_name(epoch)

    @property
    def final_export(self) -> Path:
        return self.export / contract.FINAL_EXPORT


# --------------------------------------------------------------------------- status


def read_status(run: RunDir) -> dict[str, Any]:
    """status.json as a dict ({} when missing or unreadable)."""
    return status_or_error(run)[0]


def attempt_started(status: dict[str, Any], now: float) -> dict[str, float]:
    """The `started_at` (and, once, `first_started_at`) a trainer writes as it begins: the
    launcher's stamp when the launcher stamped this attempt (`running` and no pid yet: it
    writes them before the process exists), so the elapsed clock does not start over when the
    trainer takes over; else `now` (a Slurm job's trainer, one started by hand)."""
    started = _num(status.get("started_at"))
    stamped = status.get("state") == "running" and status.get("pid") is None
    if not stamped or started is None or started > now:
        started = now
    out = {"started_at": started}
    if _num(status.get("first_started_at")) is None:
        out["first_started_at"] = started
    return out


def status_or_error(run: RunDir) -> tuple[dict[str, Any], str | None]:
    """status.json and, when it is missing or unreadable, why: such a run is `unknown`."""
    try:
        raw = run.status.read_bytes()
    except FileNotFoundError:
        return {}, "status.json is missing"
    except OSError as e:
        return {}, f"status.json cannot be read: {e.strerror or e}"
    try:
        data = json.loads(raw)
    except ValueError as e:
        return {}, f"status.json is not valid JSON ({e})"
    if not isinstance(data, dict) or not isinstance(data.get("state"), str):
        return {}, "status.json has no state"
    return data, None


def write_status(run: RunDir, **updates: Any) -> dict[str, Any]:
    """Merge `updates` into status.json and replace it atomically. Only one process writes a
    run's status at a time (the trainer while it lives, the launcher otherwise). A damaged
    status.json is never overwritten: the run waits for `amc-tui repair`."""
    status, error = status_or_error(run)
    if error and run.status.exists():
        raise UserError(
            f"run {run.name}: {error}; nothing was changed (amc-tui repair {run.name} rebuilds it)"
        )
    status.update(updates)
    atomic_write_json(run.status, status)
    return status


def read_meta(run: RunDir) -> dict[str, Any]:
    data = read_json(run.meta)
    return data if isinstance(data, dict) else {}


def run_workspace(run: RunDir) -> Path:
    """The workspace a run belongs to: meta.json "workspace", else two folders up."""
    ws = read_meta(run).get("workspace")
    return Path(ws) if isinstance(ws, str) and ws else run.path.resolve().parent.parent


def read_config_dict(run: RunDir) -> dict[str, Any]:
    """config.toml as the raw TOML dict ({} when missing or bad), for readers that show or
    compare it; validation and defaults are config.load_config's job."""
    try:
        return tomllib.loads(run.config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def derive_state(
    status: dict[str, Any],
    now: float | None = None,
    host: str | None = None,
    run_dir: str | os.PathLike[str] | None = None,
) -> str:
    """The state a reader should show for a stored `running`. The run's lock decides first:
    held -> `running`, or `stalled` when the heartbeat is older than 3 intervals; free ->
    `crashed` (the kernel dropped it with the trainer). A run without a lock file (a trainer
    that has not taken it yet) falls back to its pid (same host) and heartbeat, and so does
    another host's trainer whose lock looks free from here."""
    state = status.get("state") or "queued"
    if state != "running":
        return state
    now = time.time() if now is None else now
    beat = status.get("heartbeat_at") or status.get("started_at")
    stale = beat is not None and now - float(beat) > contract.STALE_AFTER_S
    same_host = status.get("host") in (None, host or socket.gethostname())
    if status.get("slurm_job_id") and not same_host:
        # a trainer on a cluster node: its job's state (polled by the queue worker) says
        # when it has ended; until then an old heartbeat only says it is slow or stuck
        return "stalled" if stale else state
    if run_dir is not None and runlock.has_lock_file(run_dir):
        if runlock.holder(run_dir) is not None:
            return "stalled" if stale else "running"
        if same_host:
            return "crashed"
        # another host's trainer: a lock that looks free here may be held there (flock is
        # local to each client on some network filesystems), so the heartbeat decides
    if same_host and status.get("pid") and not pid_alive(status["pid"]):
        return "crashed"
    return "crashed" if stale else state


# --------------------------------------------------------------------------- run info (listing)


@dataclass
class RunInfo:
    """One run as a reader sees it: status.json + meta.json + the last epoch event.

    `state` is derived (running -> crashed when the pid is gone or the heartbeat is stale).
    Built without parsing a whole event file, so listing 1,000 runs stays fast.
    """

    id: str
    name: str
    dir: Path
    state: str = "queued"
    arch: str = ""
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    best: dict[str, Any] | None = None
    created_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    heartbeat_at: float | None = None
    pid: int | None = None
    device: str = ""
    gpus: list[int] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    phase: str = ""
    notes: str = ""
    last_epoch: dict[str, Any] | None = None
    error: str | None = None
    # beyond the agreed API
    pgid: int | None = None
    host: str = ""
    exit_code: int | None = None
    restarts: int = 0
    resumed_from: dict[str, Any] | None = None
    stored_state: str = "queued"
    queued_at: float | None = None
    assigned_gpus: list[int] = field(default_factory=list)
    runlog_error: str | None = None  # why RUNLOG.md could not be updated (None: it was)
    earlier_s: float = 0.0  # time trained by the attempts before this one (a resumed run)
    slurm_job_id: str | None = None  # the run's latest Slurm job (run.executor = "slurm")
    slurm_settled: bool = False  # how that job ended is recorded (no more polling)
    waiting: str | None = None  # why a queued run has not started (the queue's last pass)
    # the health rules active now ([{rule, epoch, message}], severe first; run/health.py)
    health: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str | None = None  # why the run stopped itself (a health rule in stop_on)
    # a running run's ETA inputs (`events.eta_events`); None: from last_epoch alone
    epoch_clock: contract.EpochClock | None = field(default=None, repr=False, compare=False)
    # meta.json as parsed (keys beyond the fields above: a sweep member's group and point,
    # cells, baseline); read-only
    meta: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # the best epoch's event (or export summary) when it is not `last_epoch`; None when it is
    best_event: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def rundir(self) -> RunDir:
        return RunDir(self.dir)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def elapsed_s(self, now: float | None = None) -> float | None:
        """Time trained: the earlier attempts of a resumed run plus this one, which runs until
        the end when ended, until the last heartbeat when the trainer died without one (a
        crashed run's clock does not keep running); a run queued to resume shows what it
        trained so far."""
        if self.started_at is None:
            return None
        if self.state == "queued":
            return self.earlier_s or None
        end = self.ended_at
        if end is None:
            end = self.heartbeat_at if self.state == "crashed" and self.heartbeat_at else None
        if end is None:
            end = now or time.time()
        return self.earlier_s + max(0.0, end - self.started_at)

    def eta_s(self, now: float | None = None) -> float | None:
        """Remaining time of a running run by `contract.EpochClock`: the latest full epoch's
        time (a partial epoch after a mid-epoch resume is not one), counting down from where
        the epoch in progress was picked up (None before a full epoch ends)."""
        if self.state != "running":
            return None
        clock = self.epoch_clock
        if clock is None:  # built without its events: the last epoch event alone
            clock = contract.EpochClock()
            if self.last_epoch:
                clock.feed(self.last_epoch)
        return clock.eta_s(self.epochs, self.epoch, now or time.time())

    def metric(self, dotted: str = "val.acc_combined") -> float | None:
        """A value from the last epoch event by dotted path, e.g. `val.acc_combined`."""
        return dig(self.last_epoch, dotted)

    def to_row(self, now: float | None = None) -> dict[str, Any]:
        """The `ls --json` row (elapsed and ETA at `now`, as every screen shows them)."""
        now = now or time.time()
        return {
            "id": self.id,
            "name": self.name,
            "state": self.state,
            "arch": self.arch,
            "epoch": self.epoch,
            "epochs": self.epochs,
            "step": self.step,
            "best": self.best,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "heartbeat_at": self.heartbeat_at,
            "elapsed_s": self.elapsed_s(now),
            "eta_s": self.eta_s(now),
            "pid": self.pid,
            "device": self.device,
            "gpus": self.gpus,
            "tags": self.tags,
            "phase": self.phase,
            "restarts": self.restarts,
            "exit_code": self.exit_code,
            "slurm_job_id": self.slurm_job_id,
            "waiting": self.waiting if self.state == "queued" else None,
            "health": self.health,
            "stop_reason": self.stop_reason,
            "val": (self.last_epoch or {}).get("val"),
            "train": (self.last_epoch or {}).get("train"),
            "error": self.error,
            "dir": str(self.dir),
        }


def error_line(error: str | None) -> str | None:
    """The line of a recorded error that says what went wrong: a traceback's exception line
    (`ValueError: boom`, not the log line printed after it), else the first line."""
    lines = [ln.rstrip() for ln in (error or "").strip().splitlines() if ln.strip()]
    if not lines:
        return None
    starts = [i for i, ln in enumerate(lines) if ln.startswith("Traceback")]
    if starts:
        for ln in lines[starts[-1] + 1 :]:
            if not ln[0].isspace():
                return ln
    return lines[0]


def dig(obj: Any, dotted: str) -> Any:
    """`obj["a"]["b"]` for "a.b"; None when any step is missing."""
    for part in dotted.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _int(value: Any, default: int = 0) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def _ints(value: Any) -> list[int]:
    return [g for g in value if isinstance(g, int)] if isinstance(value, list) else []


def _earlier_s(run: RunDir, status: dict[str, Any], state: str) -> float:
    """A resumed run adds its earlier attempts. Each launch stamps started_at and the first
    also first_started_at, so started_at later than first_started_at means an earlier
    attempt; without first_started_at (a Slurm run before trainers wrote it), a first start
    event older than started_at does. Only then is the event file scanned (a run that never
    restarted costs a read of its first lines)."""
    first, started = _num(status.get("first_started_at")), _num(status.get("started_at"))
    if started is None:
        return 0.0
    if state == "queued":  # queued to resume: every attempt so far (all began before queued_at)
        before = _num(status.get("queued_at")) or float("inf")
        return earlier_attempts_s(run.events, before, first)
    if first is not None:
        return earlier_attempts_s(run.events, started, first) if first < started else 0.0
    ev = first_event(run.events, "start", max_lines=8)
    began = _num(ev.get("t")) if ev else None
    return earlier_attempts_s(run.events, started) if began is not None and began < started else 0.0


def _config_fallback(run: RunDir) -> dict[str, Any]:
    """arch/epochs/tags/phase/notes from config.toml, for runs whose meta.json lacks them."""
    raw = read_config_dict(run)
    if not raw:
        return {}
    return {
        "arch": dig(raw, "model.arch"),
        "epochs": dig(raw, "train.epochs"),
        "tags": raw.get("tags"),
        "phase": raw.get("phase"),
        "notes": raw.get("notes"),
    }


def read_parts(base: str, with_last_epoch: bool = True) -> dict[str, Any]:
    """What a RunInfo is built from, parsed from the run's files: status.json (and why it is
    damaged), meta.json (config.toml filling what an old meta.json lacks), the last epoch
    event, the time earlier attempts trained and a running run's ETA events. Plain JSON
    values; `info_fields` makes RunInfo's fields of them, `info_from_fields` the RunInfo,
    deriving the state of a stored `running` as it is read."""
    run = RunDir(Path(base))
    (status, damage), meta = status_or_error(run), read_meta(run)
    if "arch" not in meta or "epochs" not in meta:
        meta = {**_config_fallback(run), **meta}
    last = (
        last_event(os.path.join(base, EVENTS_FILE), "epoch", block=8192)
        if with_last_epoch
        else None
    )
    stored = str(status.get("state") or "queued") if damage is None else "unknown"
    running = with_last_epoch and stored == "running"
    return {
        "status": status,
        "damage": damage,
        "meta": meta,
        "last": last,
        "best_event": _best_event(run, status, last) if with_last_epoch else None,
        "earlier_s": _earlier_s(run, status, stored),
        # the ETA is only a running run's (a reader re-derives its state)
        "eta": list(eta_events(os.path.join(base, EVENTS_FILE))) if running else None,
    }


def _best_event(
    run: RunDir, status: dict[str, Any], last: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The best epoch's event when it is not the last one (None when it is, or there is no
    best): its export's summary.json (small), else the epoch events themselves."""
    epoch = (
        (status.get("best") or {}).get("epoch") if isinstance(status.get("best"), dict) else None
    )
    if not isinstance(epoch, int) or isinstance(epoch, bool):
        return None
    if last is not None and last.get("epoch") == epoch:
        return None
    summary = read_json(run.epoch_export(epoch) / contract.SUMMARY_FILE)
    if isinstance(summary, dict) and isinstance(summary.get("val"), dict):
        return summary
    return epoch_event(run.path, epoch)


def read_run(path: str | os.PathLike[str], with_last_epoch: bool = True) -> RunInfo:
    """A RunInfo from the run's files; never raises on missing or bad files."""
    base = os.fspath(path)
    parts = read_parts(base, with_last_epoch)
    fields = info_fields(base, parts, with_last_epoch)
    return info_from_fields(base, fields, parts["eta"] if with_last_epoch else None,
                            with_last_epoch)  # fmt: skip


def info_fields(base: str, parts: dict[str, Any], with_last_epoch: bool = True) -> dict[str, Any]:
    """RunInfo's fields from `read_parts`'s values: all but the run folder and what is
    derived as it is read (a stored `running`'s state, the ETA clock). Plain values, so the
    run index (`run/index.py`) stores them."""
    status, damage, meta = parts["status"], parts["damage"], parts["meta"]
    name = os.path.basename(base)
    stored = str(status.get("state") or "queued")
    last = parts["last"] if with_last_epoch else None
    best = status.get("best")
    tags = meta.get("tags")
    epoch = _int(status.get("epoch"))
    if last is not None:
        epoch = max(epoch, _int(last.get("epoch")))
    resumed = meta.get("resumed_from")
    return {
        "id": str(meta.get("id") or status.get("id") or name),
        "name": str(meta.get("name") or name),
        "state": "unknown" if damage is not None else stored,
        "arch": str(meta.get("arch") or ""),
        "epoch": epoch,
        "epochs": _int(status.get("epochs")) or _int(meta.get("epochs")),
        "step": _int(status.get("step")),
        "best": best if isinstance(best, dict) and best.get("value") is not None else None,
        "created_at": _num(meta.get("created_at")),
        "started_at": _num(status.get("started_at")),
        "ended_at": _num(status.get("ended_at")),
        "heartbeat_at": _num(status.get("heartbeat_at")),
        "pid": _int(status.get("pid"), 0) or None,
        "device": str(status.get("device") or ""),
        "gpus": _ints(status.get("gpus")),
        "tags": [str(t) for t in tags] if isinstance(tags, list) else [],
        "phase": str(meta.get("phase") or ""),
        "notes": str(meta.get("notes") or ""),
        "last_epoch": last,
        "error": damage or (str(status["error"]) if status.get("error") else None),
        "pgid": _int(status.get("pgid"), 0) or None,
        "host": str(status.get("host") or ""),
        "exit_code": _int(status.get("exit_code"), 0)
        if status.get("exit_code") is not None
        else None,
        "restarts": _int(status.get("restarts")),
        "resumed_from": resumed if isinstance(resumed, dict) else None,
        "stored_state": stored,
        "queued_at": _num(status.get("queued_at")),
        "assigned_gpus": _ints(status.get("assigned_gpus")),
        "runlog_error": str(status["runlog_error"]) if status.get("runlog_error") else None,
        "earlier_s": float(parts.get("earlier_s") or 0.0),
        "slurm_job_id": str(status["slurm_job_id"]) if status.get("slurm_job_id") else None,
        "slurm_settled": bool(status.get("slurm_settled")),
        "waiting": str(status["waiting"]) if status.get("waiting") else None,
        "health": health.active_of(status.get("health")),
        "stop_reason": str(status["stop_reason"]) if status.get("stop_reason") else None,
        "meta": meta,
        "best_event": parts.get("best_event") if with_last_epoch else None,
    }


def info_from_fields(
    base: str,
    fields: dict[str, Any],
    eta: list[dict[str, Any]] | None = None,
    with_last_epoch: bool = True,
    recheck: bool = True,
) -> RunInfo:
    """A RunInfo from `info_fields` (and a running run's ETA events): a stored `running` is
    derived now (lock, pid, heartbeat), never taken from a cache."""
    info = RunInfo(dir=Path(base), **fields)
    if info.state == "running":
        info.state = live_state(info)
        if recheck and info.state == "crashed":
            # the trainer may have written its end and exited between our reads
            again, damage = status_or_error(info.rundir)
            if damage is None and again.get("state") != "running":
                parts = read_parts(base, with_last_epoch)
                return info_from_fields(base, info_fields(base, parts, with_last_epoch),
                                        parts["eta"], with_last_epoch, recheck=False)  # fmt: skip
    if eta is not None and with_last_epoch and info.stored_state == "running":
        info.epoch_clock = _epoch_clock(eta)
    return info


def live_state(info: RunInfo) -> str:
    """`derive_state` of a stored `running` from what a RunInfo keeps of its status.json."""
    return derive_state(
        {"state": "running", "pid": info.pid, "host": info.host or None,
         "heartbeat_at": info.heartbeat_at, "started_at": info.started_at,
         "slurm_job_id": info.slurm_job_id},
        run_dir=info.dir,
    )  # fmt: skip


def _epoch_clock(events: list[dict[str, Any]]) -> contract.EpochClock:
    clock = contract.EpochClock()
    for ev in events:
        clock.feed(ev)
    return clock


def _folders(ws: Workspace) -> list[str]:
    try:
        entries = list(os.scandir(ws.runs))
    except OSError:
        return []
    return [
        e.path for e in entries if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)
    ]


def is_run_dir(path: str | os.PathLike[str]) -> bool:
    """A run is a folder with config.toml and meta.json (the launcher writes them first);
    anything else under runs/ is foreign: listed by `ls --all`, never acted on."""
    base = os.fspath(path)
    return os.path.isfile(os.path.join(base, META_FILE)) and os.path.isfile(
        os.path.join(base, CONFIG_FILE)
    )


def run_dirs(ws: Workspace) -> list[Path]:
    """Every run directory under runs/ (hidden folders and foreign folders skipped)."""
    return [Path(p) for p in _folders(ws) if is_run_dir(p)]


def foreign_dirs(ws: Workspace) -> list[Path]:
    """Folders under runs/ that are not runs (no config.toml + meta.json)."""
    return [Path(p) for p in _folders(ws) if not is_run_dir(p)]


def _sort_key(info: RunInfo) -> tuple[float, str]:
    return (info.created_at or info.started_at or 0.0, info.name)


def _stamp(path: str) -> tuple[int, int, int] | None:
    """(inode, mtime ns, size): an atomic replace always changes the inode, so a rewrite
    within the filesystem's timestamp granularity is seen too."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def run_key(base: str, with_last_epoch: bool = True) -> tuple[Any, ...]:
    """What decides whether a run's parsed files are still current: the stamps of the run
    folder (its entries: config.toml and meta.json, written once, exist and are the same),
    status.json (replaced atomically, or edited in place) and, with the last epoch,
    events.jsonl (appended to)."""
    stem = base + os.sep if base and not base.endswith(os.sep) else base  # os.path.join's
    return (  # spelling without its cost: 10,000 runs are listed with three of these each
        _stamp(base),
        _stamp(stem + STATUS_FILE),
        _stamp(stem + EVENTS_FILE) if with_last_epoch else None,
        with_last_epoch,
    )


def without_events(key: tuple[Any, ...]) -> tuple[Any, ...]:
    """The `run_key(base, with_last_epoch=False)` made from the same stamps as `key`."""
    return (key[0], key[1], None, False)


class RunCache:
    """Re-reads a run only when its folder, status.json or events.jsonl changed (`run_key`), so a TUI or queue worker polling 1,000 runs every second costs ~3,000 stats; the
    state of a running run is re-derived every time (pid and heartbeat age change silently)."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[tuple[Any, ...], RunInfo]] = {}

    def read(
        self, path: str | os.PathLike[str], with_last_epoch: bool = True, copy: bool = True
    ) -> RunInfo:
        """The run's info; `copy=False` returns the cached object itself (read-only use)."""
        base = os.fspath(path)
        key = run_key(base, with_last_epoch)
        hit = self._entries.get(base)
        if hit is None or hit[0] != key:
            info = read_run(base, with_last_epoch=with_last_epoch)
            self._entries[base] = (key, info)
            return dataclasses.replace(info) if copy else info
        info = dataclasses.replace(hit[1]) if copy else hit[1]
        if info.stored_state == "running" and info.state != "unknown":
            info.state = live_state(info)
        return info

    def peek(self, base: str) -> RunInfo | None:
        """The cached RunInfo of a run as last read, without checking its files."""
        hit = self._entries.get(base)
        return hit[1] if hit is not None else None

    def seed(self, base: str, key: tuple[Any, ...], info: RunInfo) -> bool:
        """Take a run read elsewhere (the run index) under its `run_key`; False (and
        nothing changes) when the run is already cached."""
        if base in self._entries:
            return False
        self._entries[base] = (key, info)
        return True

    def forget_missing(self, keep: set[str]) -> None:
        for base in list(self._entries):
            if base not in keep:
                del self._entries[base]


def list_runs(
    ws: Workspace,
    state: str | None = None,
    with_last_epoch: bool = True,
    cache: RunCache | None = None,
    copy: bool = True,
) -> list[RunInfo]:
    """Every run of the workspace, newest first; `state` filters on the derived state.
    With a `cache`, unchanged runs are not re-read (for callers that poll)."""
    dirs = run_dirs(ws)
    if cache is None:
        runs = [read_run(p, with_last_epoch=with_last_epoch) for p in dirs]
    else:
        runs = [cache.read(p, with_last_epoch=with_last_epoch, copy=copy) for p in dirs]
        cache.forget_missing({os.fspath(p) for p in dirs})
    if state:
        runs = [r for r in runs if r.state == state]
    runs.sort(key=_sort_key, reverse=True)
    return runs


def remove_stale_temp_files(run: RunDir) -> list[Path]:
    """Temp files that a trainer killed mid-write left (a checkpoint's is 50-130 MB), in the
    folders a trainer writes atomically into. Only called while holding the run's lock."""
    folders = [run.path, run.checkpoints, run.export]
    with contextlib.suppress(OSError):
        folders += [p for p in run.export.iterdir() if p.is_dir()]
    return remove_stale_tmp(*folders)


def run_config(rd: RunDir) -> Config:
    """A run's resolved config.toml, validated."""
    return loads_config(rd.config.read_text(encoding="utf-8"), str(rd.config))
