"""The text of each notification: it names the run (or group), its state, the numbers that
matter and the host, so the message alone says whether to get up. Pure functions."""

from __future__ import annotations

import dataclasses
import math
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from amc_tui import contract, report
from amc_tui.run.rundir import RunInfo, error_line

if TYPE_CHECKING:
    from amc_tui.sweeps.group import Summary

KIND = {"completed": "success", "stopped": "info", "failed": "failure", "crashed": "failure"}


@dataclass(frozen=True)
class Notice:
    """One notifiable event: `key` names it once and for all (the ledger's file name);
    `event` is one of settings.EVENTS; `t` is when it happened."""

    key: str
    event: str
    subject: str
    t: float
    title: str
    body: str
    kind: str = "info"
    fields: dict[str, Any] = field(default_factory=dict)

    def what(self) -> dict[str, Any]:
        """What the ledger keeps of it beside the outcome."""
        return {"event": self.event, "subject": self.subject, "t": self.t,
                "title": self.title, "body": self.body, **self.fields}  # fmt: skip


def host_of(info: RunInfo) -> str:
    return info.host or socket.gethostname()


def _who(info: RunInfo) -> str:
    return f"{info.name} ({info.id}) on {host_of(info)}"


def _progress(info: RunInfo) -> str:
    parts = [f"epoch {info.epoch}/{info.epochs or '?'}"]
    if info.best:
        parts.append(f"best {info.best.get('metric', '')} {report.best(info.best)}")
    elapsed = info.elapsed_s()
    if elapsed is not None:
        parts.append(report.duration(elapsed))
    return ", ".join(parts)


def _run_notice(
    info: RunInfo, key: str, event: str, run_state: str, t: float, lines: list[str],
    kind: str, **extra: Any,
) -> Notice:  # fmt: skip
    """A notice about one run: its key under the run's id, title and fields from the run."""
    return Notice(
        key=f"{info.id}.{key}",
        event=event,
        subject=info.name,
        t=t,
        title=f"amc-tui: {info.name} {event}",
        body="\n".join(lines),
        kind=kind,
        fields={
            "run": info.name,
            "run_id": info.id,
            "run_state": run_state,
            **extra,
            "host": host_of(info),
        },  # fmt: skip
    )


def run_end(info: RunInfo, end: dict[str, Any], n: int) -> Notice:
    """The run's `n`-th end (its `n`-th `end` event, or its final status.json before that
    event is written): `end` holds state, t, and maybe error, reason, best."""
    state = str(end.get("state") or info.state)
    best = end.get("best") if isinstance(end.get("best"), dict) else info.best
    shown = dataclasses.replace(info, best=best) if best is not info.best else info
    lines = [f"{_who(info)}: {state}", _progress(shown)]
    if end.get("reason"):
        lines.append(f"reason: {end['reason']}")
    why = error_line(end.get("error") or info.error) if state in ("failed", "crashed") else None
    if why:
        lines.append(f"error: {why}")
    t = float(end.get("t") or 0.0)
    return _run_notice(info, f"end.{n}", state, state, t, lines, KIND.get(state, "info"))


def run_stalled(info: RunInfo, now: float) -> Notice:
    beat = float(info.heartbeat_at or info.started_at or now)
    lines = [
        f"{_who(info)}: stalled, no heartbeat for {report.duration(now - beat)} "
        f"(the trainer holds the run but is paused, suspended or stuck)",
        _progress(info),
    ]
    t = beat + contract.STALE_AFTER_S
    return _run_notice(info, f"stalled.{int(beat)}", "stalled", "stalled", t, lines, "warning")


def run_health(info: RunInfo, ev: dict[str, Any]) -> Notice:
    """A health rule that fired (a `health` event with active true, or an entry of
    status.json `health`)."""
    rule = str(ev.get("rule") or "health")
    epoch = ev.get("epoch")
    lines = [
        f"{_who(info)}: {rule} at epoch {epoch if epoch is not None else '?'}/{info.epochs or '?'}"
    ]
    if ev.get("message"):
        lines.append(str(ev["message"]))
    if ev.get("action") == "stop":
        lines.append("action: the run stops (run.stop_on)")
    key = f"health.{rule}.e{epoch if epoch is not None else 'x'}"
    t = float(ev.get("t") or 0.0)
    return _run_notice(info, key, rule, info.state, t, lines, "warning", rule=rule)


def _point_text(summary: Summary, point_key: str) -> tuple[str, str]:
    """(`p2 (lr=0.001)`, `val.acc_combined 45.21% ± 1.30 (n = 3)`) for a point."""
    group = summary.group
    label = next((p["label"] for p in group.points if p["key"] == point_key), "")
    name = f"{point_key} ({label})" if label else point_key
    stat = next((ps.stat(group.metric) for ps in summary.points if ps.point == point_key), None)
    if stat is None or not stat.n:
        return name, "no result"
    value = report.metric(group.metric, stat.mean)
    if not math.isnan(stat.std):
        value += f" ± {report.metric(group.metric, stat.std, unit='')}"
    return name, f"{group.metric} {value} (n = {stat.n})"


def best_point(summary: Summary) -> str | None:
    """The key of the group's best point with a result (`p2`), None before any."""
    for ranked in summary.ranking():
        if ranked.stat.n:
            return str(ranked.point)
    return None


def group_done(summary: Summary, host: str) -> Notice:
    group = summary.group
    states = [s for m in group.members for s in [_member_state(summary, m)]]
    counts = ", ".join(f"{states.count(s)} {s}" for s in dict.fromkeys(sorted(states)))
    lines = [f"group {group.name} done on {host}: {len(states)} runs ({counts})"]
    best = best_point(summary)
    if best:
        name, value = _point_text(summary, best)
        lines.append(f"best point {name}: {value}")
    ended = max((i.ended_at or 0.0 for i in summary.infos.values() if i), default=0.0)
    return Notice(
        key=f"group.{group.id}.done",
        event="group-done",
        subject=group.name,
        t=ended,
        title=f"amc-tui: group {group.name} done",
        body="\n".join(lines),
        kind="success",
        fields={"group": group.name, "group_state": "done", "best_point": best, "host": host},
    )


def group_best(summary: Summary, point: str, t: float, host: str) -> Notice:
    group = summary.group
    name, value = _point_text(summary, point)
    return Notice(
        key=f"group.{group.id}.best.{point}",
        event="group-best",
        subject=group.name,
        t=t,
        title=f"amc-tui: group {group.name} new best point {point}",
        body=f"group {group.name} on {host}: new best point {name}: {value}",
        kind="info",
        fields={
            "group": group.name,
            "group_state": summary.state,
            "best_point": point,
            "host": host,
        },
    )


def _member_state(summary: Summary, member: dict[str, Any]) -> str:
    info = summary.infos.get(member["id"])
    return info.state if info is not None else "missing"
