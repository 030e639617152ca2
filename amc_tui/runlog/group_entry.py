"""A sweep group's RUNLOG.md entry, and how group statistics read as text.

The entry sits between `<!-- amc-tui:group-begin ID -->` and `<!-- amc-tui:group-end ID -->`:
the question (the sweep's notes), the axes, a table of points (mean ± std and n of the main
metrics), the best point, the axis effects as sentences and every member's state. It is a
function of the group's files and its members' run directories alone, so every writer
writes the same bytes. It is written with runlog's own lock and atomic replace. Rendering
reads every member (seconds on a busy machine), so it happens outside the lock and is
written only if no member changed state meanwhile (else rendered again): two members ending
at once each render after their own end was recorded, and the last write shows both. Text
outside the markers is kept byte for byte.

A member's end refreshes it (`sync_group_of`, called by runlog.sync_entry), as do the
group's creation, stop and resume, and `amc-tui runlog sync`.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amc_tui import contract, report
from amc_tui.run import health
from amc_tui.run.rundir import FINAL_STATES, RunDir, read_meta, read_status, run_workspace
from amc_tui.runlog.store import HEADER, lock, read, write
from amc_tui.sweeps import point_tables
from amc_tui.sweeps.group import groups_root, list_groups, progress, read_group, state_of, summarize
from amc_tui.sweeps.stats import SHORT_NAMES
from amc_tui.sweeps.sweep import format_value
from amc_tui.workspace import Workspace

if TYPE_CHECKING:
    from amc_tui.sweeps.group import Group, Summary
    from amc_tui.sweeps.stats import Stat

log = logging.getLogger(__name__)

BEGIN = "<!-- amc-tui:group-begin {id} -->"
END = "<!-- amc-tui:group-end {id} -->"
_BEGIN_RE = re.compile(r"<!-- amc-tui:group-begin (\S+) -->")
DASH = "–"
ICONS = {"queued": "⏳", "submitted": "📤", "running": "🔄", "stalled": "🔄", "completed": "✅", "failed": "❌",
         "stopped": "⏹️", "crashed": "💥", "missing": "❓", "unknown": "❓"}  # fmt: skip
SUMMARY_METRICS = ("val.acc_combined", "val.acc_mod", "val.acc_snr")
TEST_METRIC = "test.acc_combined"
RENDER_TRIES = 3  # renders outside the lock before one is done holding it


# --------------------------------------------------------------------------- text of numbers


def metric_title(metric: str) -> str:
    """`val.acc_combined` -> `val combined`; `test.acc_mod` -> `test modulation`."""

    split, _, name = metric.rpartition(".")
    return f"{split} {SHORT_NAMES.get(name, name)}".strip()


def main_metrics(metric: str) -> list[tuple[str, str]]:
    """(metric, best|final) columns: the sweep metric, the other validation accuracies at the
    best epoch, and the test combined accuracy of the final export."""
    cols = [(metric, "best")]
    cols += [(m, "best") for m in SUMMARY_METRICS if m != metric]
    return [*cols, (TEST_METRIC, "final")]


def _stat_value(metric: str) -> Callable[[float], str]:
    """How one statistic of `metric` reads in an entry: a share as bare percent with 2
    decimals (the unit goes after the whole, `41.23 ± 0.85 %`), another value in `.4g`."""
    return partial(report.metric, metric, spec=".4g", digits=2, unit="")


def _unit(metric: str) -> str:
    return " %" if contract.is_percent(metric) else ""


def mean_std(stat: Stat, metric: str, missing: str = DASH) -> str:
    """`41.23 ± 0.85 %` (mean ± sample std); the mean alone when n = 1."""
    if stat.n == 0 or not math.isfinite(stat.mean):
        return missing
    value = _stat_value(metric)
    text = value(stat.mean)
    if stat.n >= 2 and math.isfinite(stat.std):
        text += f" ± {value(stat.std)}"
    return text + _unit(metric)


def ci(stat: Stat, metric: str, missing: str = DASH) -> str:
    """`[40.38, 42.08] %`: the 95 % CI of the mean; `missing` when n < 2."""
    if stat.n < 2 or not math.isfinite(stat.lo):
        return missing
    value = _stat_value(metric)
    return f"[{value(stat.lo)}, {value(stat.hi)}]{_unit(metric)}"


def progress_text(counts: dict[str, int]) -> str:
    """`3 done, 1 running, 4 queued` (zero counts left out)."""
    return ", ".join(f"{n} {col}" for col, n in counts.items() if n) or "no runs"


def plan_text(group: Group) -> str:
    """`grid, 4 points x 2 repeats = 8 runs` (Optuna: trials asked of the budget)."""
    n_runs = group.n_points * group.repeats
    if group.adaptive:
        return (f"optuna, {len(group.points)} of {group.n_points} trials asked x "
                f"{group.repeats} repeats (at most {n_runs} runs)")  # fmt: skip
    return f"{group.strategy}, {group.n_points} points x {group.repeats} repeats = {n_runs} runs"


def axes_text(group: Group) -> list[str]:
    """One `key = a, b, c` (or `key in [min, max]`) per axis."""

    out = []
    for axis in group.sweep.get("axes", []):
        if "values" in axis:
            out.append(f"{axis['key']} = {', '.join(format_value(v) for v in axis['values'])}")
        else:
            scale = ", log" if axis.get("log") else ""
            kind = " integers" if axis.get("int") else ""
            lo, hi = format_value(axis["min"]), format_value(axis["max"])
            out.append(f"{axis['key']} in [{lo}, {hi}]{kind}{scale}")
    return out


def best_text(summary: Summary) -> str:
    """The best point by the sweep metric, with its mean, CI and n; says when no point has
    the two completed runs a CI needs."""
    metric = summary.group.metric
    ranked = summary.ranking()
    if not ranked or ranked[0].stat.n == 0 and not ranked[0].dead:
        return "no completed runs yet"
    top = ranked[0]
    if top.dead:
        return "none: every point's runs learned nothing or diverged (health)"
    label = summary.group.point(int(top.point[1:]))["label"]
    what = f"{top.point} ({label}): {metric_title(metric)} {mean_std(top.stat, metric)}"
    if top.uncertain:
        return f"{what} (n = 1: uncertain, no point has 2 completed runs yet)"
    return f"{what} (95 % CI {ci(top.stat, metric)}, n = {top.stat.n})"


# --------------------------------------------------------------------------- the entry


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_body(summary: Summary) -> str:
    g, metric = summary.group, summary.group.metric
    states = [s for p in g.points for s in summary.point_states(p["index"])]
    L = [
        f"## Group {g.name} ({g.id})",
        "",
        f"**Question**: {' '.join(g.notes.split()) or DASH}  ",
        f"**Sweep**: {plan_text(g)}; points ranked by {metric} (best epoch)  ",
        f"**Created**: {report.utc_date(g.created_at)}  ",
        f"**Axes**: {'; '.join(f'`{a}`' for a in axes_text(g)) or 'none (repeats only)'}  ",
        f"**Status**: **{summary.state.upper()}** ({progress_text(_counts(states))})"
        + ("  " if g.error else ""),
    ]
    if g.error:
        L.append(f"**Error**: `{g.error.replace('`', chr(39))}`")
    cols = main_metrics(metric)
    L += ["", "| Point | Values | n | " + " | ".join(metric_title(m) for m, _ in cols) + " |"]
    L.append("|---|---|---|" + "---|" * len(cols))
    by_key = {ps.point: ps for ps in summary.points}
    for p in g.points:
        ps = by_key[p["key"]]
        cells = [mean_std(ps.stat(m, which), m) for m, which in cols]
        L.append(f"| {p['key']} | {_cell(p['label'])} | {ps.n} | " + " | ".join(cells) + " |")
    L += ["", f"Mean ± std over each point's completed runs (validation: the epoch best by "
          f"{metric}; test: the final export).", ""]  # fmt: skip
    marked = [(p, by_key[p["key"]]) for p in g.points if by_key[p["key"]].health_note()]
    if marked:
        L.append("**Health**: " + "; ".join(
            f"⚠ {p['key']} ({_cell(p['label'])}): {ps.health_note()}" for p, ps in marked
        ) + " (a point whose runs all did is never ranked)  ")  # fmt: skip
    L.append(f"**Best point**: {best_text(summary)}")
    effects = summary.effects()
    if effects:
        L += ["", "**Effects** (difference of means, 95 % CI):"]
        L += [f"- {e.sentence()}" for e in effects]
    L += _point_tables([(p["key"], by_key[p["key"]].members) for p in g.points])
    L += ["", "**Members**:"]
    for p in g.points:
        ms = [
            _member_text(m, summary.infos.get(m["id"]), summary)
            for m in g.point_members(p["index"])
        ]
        L.append(f"- {p['key']} ({_cell(p['label'])}): " + (", ".join(ms) or "no runs"))
    return "\n".join(L)


def _point_tables(points: list[tuple[str, list[Any]]]) -> list[str]:
    """Accuracy per SNR band and the reliable-from SNR of each point, mean ± 95 % CI half-width
    over its runs (`sweeps/point_tables.py`)."""
    tabs = [point_tables.point_tables(key, ms) for key, ms in points]
    if not any(t.n for t in tabs):
        return []
    L = []
    for title, (header, rows) in (
        ("Accuracy per SNR band", point_tables.band_rows(tabs)),
        ("Reliable from (SNR), overall modulation accuracy", point_tables.knee_rows(tabs)),
    ):
        head = header
        L += ["", f"**{title}** (mean ± 95 % CI half-width over the point's runs):", ""]
        L.append("| " + " | ".join(_cell(h) for h in head) + " |")
        L.append("|---|" + "---:|" * (len(head) - 1))
        L += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return L


def _counts(states: list[str]) -> dict[str, int]:
    return progress(states)


def _member_text(member: dict[str, Any], info: Any, summary: Summary) -> str:
    state = state_of(info)
    text = f"{ICONS.get(state, '')} {member['name']}".strip()
    why = next((m.why_excluded for m in summary.members if m.run_id == member["id"]), "")
    if state in ("queued", "submitted", "running", "stalled"):
        text += f" ({state})"
    elif why:
        text += f" ({why}, excluded)"
    elif info is not None and info.health:
        text += f" ({health.mark(info.health)})"
    return text


def render_group_entry(summary: Summary) -> str:
    gid = summary.group.id
    return f"{BEGIN.format(id=gid)}\n{render_body(summary)}\n\n---\n{END.format(id=gid)}\n"


def group_offsets(text: str) -> dict[str, tuple[int, int]]:
    """{group id: (start, end)} of each group entry, end marker and newline included."""
    out: dict[str, tuple[int, int]] = {}
    for m in _BEGIN_RE.finditer(text):
        gid = m.group(1)
        stop = text.find(END.format(id=gid), m.end())
        if gid in out or stop < 0:
            continue
        end = stop + len(END.format(id=gid))
        out[gid] = (m.start(), end + 1 if text.startswith("\n", end) else end)
    return out


def _merge(text: str, gid: str, entry: str) -> str:
    span = group_offsets(text).get(gid)
    if span is not None:
        return text[: span[0]] + entry + text[span[1] :]
    if text and not text.endswith("\n"):
        text += "\n"
    if text and not text.endswith("\n\n"):
        text += "\n"
    return text + entry


def sync_group(
    ws: Workspace, group: Group, runlog_path: str | os.PathLike[str] | None = None
) -> bool:
    """Render the group's entry under RUNLOG.md's lock and put it in place (or append it);
    True when the file changed."""

    path = Path(runlog_path) if runlog_path else ws.runlog
    for _ in range(RENDER_TRIES):
        fresh = read_group(group.dir) or group
        seen = _snapshot(ws, fresh)
        entry = render_group_entry(summarize(ws, fresh))
        with lock(path):
            if _snapshot(ws, read_group(group.dir) or fresh) == seen:
                return _put(path, fresh.id, entry)
        # a member changed while we rendered: render again
    with lock(path):  # members keep changing: render holding the lock
        fresh = read_group(group.dir) or group
        return _put(path, fresh.id, render_group_entry(summarize(ws, fresh)))


def _put(path: Path, gid: str, entry: str) -> bool:
    """Merge the entry into RUNLOG.md (the caller holds its lock); True when it changed."""

    old = read(path)
    new = _merge(HEADER if old is None else old, gid, entry)
    if new == old:
        return False
    write(path, new)
    return True


def _snapshot(ws: Workspace, group: Group) -> tuple[Any, ...]:
    """What the entry depends on that can change: the group record and members' states
    (a completed member's metrics are final)."""
    states = tuple(read_status(RunDir(ws.runs / m["name"])).get("state") for m in group.members)
    return (len(group.points), group.stopped, group.error, states,
            tuple(p.get("told") for p in group.points))  # fmt: skip


def sync_group_of(run_dir: str | os.PathLike[str], runlog_path: str | os.PathLike[str]) -> None:
    """A member run that ended refreshes its group's entry; anything else returns at once.
    Never raises: a RUNLOG problem must not break the run's own entry."""
    try:
        rd = RunDir(Path(run_dir))
        meta = read_meta(rd)
        name = meta.get("group")
        if not isinstance(name, str) or not name:
            return
        if read_status(rd).get("state") not in FINAL_STATES:
            return

        ws = Workspace(run_workspace(rd))
        group = read_group(groups_root(ws) / name)
        if group is not None and any(m["id"] == meta.get("id") for m in group.members):
            sync_group(ws, group, runlog_path)
    except Exception as e:  # noqa: BLE001
        log.warning("RUNLOG group entry for %s not updated: %s", run_dir, e)


def sync_groups(ws: Workspace) -> list[str]:
    """Every group's entry (`amc-tui runlog sync`); the ids of those that changed."""

    return [f"group {g.id}" for g in reversed(list_groups(ws)) if sync_group(ws, g)]
