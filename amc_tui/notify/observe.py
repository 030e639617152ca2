"""Which notifiable events exist now, and sending each once (the ledger decides who sends).

Every amc-tui process that can see a run end calls one function: the trainer for its own
run (`observe_run`, health and end events, in a thread), the queue worker's loop, a
followed `amc-tui run`, and the app's poll (`observe_workspace`). Without amc-tui.toml this
costs one stat. Events come from the run's files only: `end` and `health` events (read
incrementally by byte offset), status.json (a final state before its end event is written,
`stalled`, the `health` rules active now) and, when a member of a sweep group ends, the
group record. Nothing here ever raises into its caller: a failure to notify never affects
a run, the worker or the app.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amc_tui.notify import ledger, message, settings
from amc_tui.notify.message import Notice
from amc_tui.notify.send import send
from amc_tui.run.events import EventTailer
from amc_tui.run.rundir import (
    ACTIVE_STATES,
    FINAL_STATES,
    RunDir,
    RunInfo,
    list_runs,
    read_meta,
    read_run,
    read_status,
    run_workspace,
)
from amc_tui.sweeps.group import groups_root, read_group, summarize
from amc_tui.workspace import Workspace

log = logging.getLogger(__name__)
TRAINER_WAIT_S = 15.0  # the trainer waits at most this long at its end for its messages


@dataclass
class _Seen:
    """What this process has read of one run's events: the tailer's offset, the end events
    counted so far and the health rules that fired."""

    tailer: EventTailer
    ends: list[dict[str, Any]] = field(default_factory=list)
    health: dict[tuple[str, Any], dict[str, Any]] = field(default_factory=dict)
    final: tuple[Any, int] | None = None  # (ended_at, events offset) when last read as final
    group: str | None = None  # its sweep group (meta.json), read once it ended
    group_read: bool = False


_seen: dict[str, _Seen] = {}
_groups_done: set[tuple[str, str, int]] = set()  # (group, run id, end number) looked at
_threads: list[threading.Thread] = []
_state_lock = threading.Lock()  # the trainer's thread and its main thread may both observe


def _read_events(run_dir: Path) -> _Seen:
    seen = _seen.get(os.fspath(run_dir))
    if seen is None:
        seen = _seen[os.fspath(run_dir)] = _Seen(EventTailer(run_dir / "events.jsonl"))
    for ev in seen.tailer.poll():
        kind = ev.get("kind")
        if kind == "end":
            seen.ends.append(ev)
        elif kind == "health" and ev.get("active"):
            seen.health.setdefault((str(ev.get("rule")), ev.get("epoch")), ev)
    return seen


def run_notices(info: RunInfo, now: float | None = None) -> list[Notice]:
    """The notifiable events of one run as its files show them now (each with its key)."""
    now = time.time() if now is None else now
    seen = _read_events(info.dir)
    out = [message.run_end(info, ev, i + 1) for i, ev in enumerate(seen.ends)]
    status: dict[str, Any] | None = None
    if info.stored_state in FINAL_STATES:
        status = read_status(info.rundir)
        ended = status.get("ended_at")
        last_end = seen.ends[-1].get("t", 0.0) if seen.ends else None
        if isinstance(ended, int | float) and (last_end is None or last_end < ended - 1):
            # the final state is written before the end event: the same (next) end number
            end = {"state": info.stored_state, "t": ended, "reason": status.get("stop_reason"),
                   "error": status.get("error")}  # fmt: skip
            out.append(message.run_end(info, end, len(seen.ends) + 1))
    if info.state == "stalled":
        out.append(message.run_stalled(info, now))
    health = dict(seen.health)
    if info.state in ACTIVE_STATES or info.stored_state in FINAL_STATES:
        status = status if status is not None else read_status(info.rundir)
        for entry in status.get("health") or []:
            if isinstance(entry, dict) and entry.get("rule"):
                key = (str(entry["rule"]), entry.get("epoch"))
                health.setdefault(key, {**entry, "t": info.heartbeat_at or now})
    out += [message.run_health(info, ev) for ev in health.values()]
    if info.stored_state in FINAL_STATES:
        seen.final = (info.ended_at, seen.tailer.offset)
    return out


def _unchanged(info: RunInfo) -> bool:
    """An ended run this process already read, with no new event or end since."""
    seen = _seen.get(os.fspath(info.dir))
    if seen is None or seen.final is None or info.stored_state not in FINAL_STATES:
        return False
    try:
        size = os.stat(info.dir / "events.jsonl").st_size
    except OSError:
        size = 0
    return seen.final == (info.ended_at, size)


def group_notices(ws: Workspace, group_name: str, want: Iterable[str]) -> list[Notice]:
    """`group-done` (every member ended) or `group-best` (the best point so far) of a group."""
    want = set(want)
    if not want & {"group-done", "group-best"}:
        return []
    group = read_group(groups_root(ws) / group_name)
    if group is None:
        return []
    summary = summarize(ws, group)
    host = _host(summary.infos.values())
    ended = max((i.ended_at or 0.0 for i in summary.infos.values() if i), default=0.0)
    if summary.state == "done":
        return [message.group_done(summary, host)] if "group-done" in want else []
    best = message.best_point(summary)
    if best and "group-best" in want and summary.state == "running":
        return [message.group_best(summary, best, ended, host)]
    return []


def _host(infos: Iterable[RunInfo | None]) -> str:
    hosts = sorted({i.host for i in infos if i is not None and i.host})
    return ", ".join(hosts) or socket.gethostname()


# --------------------------------------------------------------------------- dispatch


def _settings(ws: Workspace) -> settings.NotifySettings | None:
    """The workspace's settings; a bad file is recorded once (as a failed record, one log
    line) and then means nothing is sent."""
    try:
        return settings.load(ws.root)
    except settings.SettingsError as e:
        folder = ledger.ledger_dir(ws)
        try:
            st = settings.settings_path(ws.root).stat()
            key = f"settings.{st.st_mtime_ns}.{st.st_size}"
            if ledger.claim(folder, key, {"event": "settings", "subject": settings.SETTINGS_FILE}):
                ledger.record(folder, key, {"state": "failed", "error": str(e), "answers": []})
                log.warning("notifications off: %s", e)
        except OSError:
            pass
        return None


def dispatch(
    ws: Workspace, conf: settings.NotifySettings, notices: list[Notice], background: bool = False
) -> list[Notice]:
    """Claim and send every wanted notice that happened since the ledger was made and that
    no process has claimed yet; returns the ones this process claimed."""
    wanted = [n for n in notices if conf.wants(n.event)]
    if not wanted:
        return []
    folder = ledger.ledger_dir(ws)
    since = ledger.since(folder, conf.written_at)
    mine = [
        n for n in wanted
        if n.t >= since and not ledger.exists(folder, n.key) and ledger.claim(folder, n.key, n.what())
    ]  # fmt: skip
    if not mine:
        return []
    if background:
        t = threading.Thread(target=_send_all, args=(folder, conf, mine), daemon=True,
                             name="amc-notify")  # fmt: skip
        t.start()
        _threads.append(t)
    else:
        _send_all(folder, conf, mine)
    return mine


def _send_all(folder: Path, conf: settings.NotifySettings, notices: list[Notice]) -> None:
    for n in notices:
        try:
            answers = send(conf.urls, n.title, n.body, n.kind)
            bad = [a for a in answers if not a.ok]
            outcome = {
                "state": "failed" if bad else "sent",
                "error": "; ".join(f"{a.url}: {a.error}" for a in bad) or None,
                "answers": [a.to_json() for a in answers],
                "sent_at": round(time.time(), 3),
            }
        except Exception as e:  # noqa: BLE001 - recorded, never raised into a run
            outcome = {"state": "failed", "error": f"{type(e).__name__}: {e}", "answers": []}
        try:
            ledger.record(folder, n.key, outcome)
        except OSError as e:
            log.warning("recording notification %s failed: %s", n.key, e)


def wait_sent(timeout: float) -> None:
    """Wait (at most `timeout` s in all) for this process's background sends."""
    deadline = time.monotonic() + timeout
    for t in list(_threads):
        t.join(max(0.0, deadline - time.monotonic()))
        if not t.is_alive():
            _threads.remove(t)


# --------------------------------------------------------------------------- entry points


def observe_run(run_dir: str | os.PathLike[str], background: bool = False) -> list[Notice]:
    """Notify what is new about one run (and its sweep group once it ended); the trainer,
    a followed `run` and the launcher call it. Never raises."""
    try:
        rd = RunDir(Path(run_dir))
        ws = Workspace(run_workspace(rd))
        conf = _settings(ws)
        if conf is None or not conf.urls:
            return []
        with _state_lock:
            info = read_run(rd.path, with_last_epoch=False)
            notices = run_notices(info)
            notices += _group_check(ws, conf, [info])
        return dispatch(ws, conf, notices, background)
    except Exception as e:  # noqa: BLE001 - a failure to notify never affects a run
        log.warning("notifications for %s failed: %s", run_dir, e)
        return []


def observe_workspace(
    ws: Workspace, runs: Iterable[RunInfo] | None = None, session_since: float | None = None
) -> list[Notice]:
    """Notify what is new about every run of the workspace (the queue worker's loop and the
    app's poll, with the runs they scanned). Returns the notices found that happened after
    the ledger was made or after `session_since` (the app rings its bell for its own
    session's events even with nothing configured). Never raises."""
    try:
        conf = _settings(ws)
        active = conf is not None and bool(conf.urls)
        if not active and session_since is None:
            return []
        cutoffs = [session_since] if session_since is not None else []
        if active:
            cutoffs.append(ledger.since(ledger.ledger_dir(ws), conf.written_at))
        cutoff = min(cutoffs)
        if runs is None:
            runs = list_runs(ws, with_last_epoch=False)
        with _state_lock:
            todo = [
                r for r in runs
                if r.state in ACTIVE_STATES
                or (r.stored_state in FINAL_STATES and (r.ended_at or 0.0) >= cutoff)
                or os.fspath(r.dir) in _seen  # a run this process watches (requeued after a crash)
            ]  # fmt: skip
            todo = [r for r in todo if not _unchanged(r)]
            notices = [n for r in todo for n in run_notices(r) if n.t >= cutoff]
            if active:
                notices += _group_check(ws, conf, todo)
        if active:
            dispatch(ws, conf, notices)
        return notices
    except Exception as e:  # noqa: BLE001 - a failure to notify never affects the caller
        log.warning("notifications for %s failed: %s", ws.root, e)
        return []


def _group_check(ws: Workspace, conf: settings.NotifySettings, runs: list[RunInfo]) -> list[Notice]:
    """Group notices for the groups whose members ended since this process last looked."""
    if not conf.on & {"group-done", "group-best"}:
        return []
    names: set[str] = set()
    for info in runs:
        if info.stored_state not in FINAL_STATES:
            continue
        seen = _seen.get(os.fspath(info.dir))
        if seen is None:
            continue
        if not seen.group_read:
            got = read_meta(info.rundir).get("group")
            seen.group, seen.group_read = (got if isinstance(got, str) and got else None), True
        group, mark = seen.group, len(seen.ends)
        if group and (group, info.id, mark) not in _groups_done:
            _groups_done.add((group, info.id, mark))
            names.add(group)
    return [n for g in sorted(names) for n in group_notices(ws, g, conf.on)]


def after_trainer_event(run_dir: str | os.PathLike[str], kind: str) -> None:
    """The trainer's hook, after it wrote an event: a `health` or `end` event is observed in a
    daemon thread (training never waits for a network); at the end the trainer waits at most
    TRAINER_WAIT_S for what it sends (under Slurm nothing else may be alive to send it)."""
    if kind not in ("health", "end"):
        return
    try:
        t = threading.Thread(target=observe_run, args=(run_dir,), daemon=True, name="amc-notify")
        t.start()
        _threads.append(t)
        if kind == "end":
            wait_sent(TRAINER_WAIT_S)
    except Exception as e:  # noqa: BLE001 - no thread to spare: the run goes on unnotified
        log.warning("notifications for %s failed: %s", run_dir, e)
