"""A sweep group on disk: groups/<name>/group.json, its members, stop and resume.

A group is a record beside the runs, never a second copy of them: group.json holds the
resolved sweep, its points and which run is which point and repeat; every state and metric
is read from the member run directories. Members are ordinary runs (meta.json names their
group, point and repeat), queued like any run, so `stop`, `resume`, `ls` and `compare` work
on them as on any run. group.json is replaced atomically under the group's lock.

What the queue asks of a group (may this member start, which Optuna trial comes next)
lives in `group_queue`. pandas, scipy and optuna are imported only where statistics or a
study are needed: the queue imports this module.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock

from amc_tui.config import TABLES
from amc_tui.errors import UserError
from amc_tui.fsutil import atomic_write_json, read_json
from amc_tui.names import MAX_NAME_LEN, check_name
from amc_tui.run import index
from amc_tui.run.refs import resolve_run
from amc_tui.run.rundir import RunInfo
from amc_tui.sweeps.stats import Member, axis_effect, group_points, member_from_run, rank_points
from amc_tui.sweeps.sweep import sweep_from_dict
from amc_tui.workspace import Workspace

if TYPE_CHECKING:
    from amc_tui.sweeps.stats import Effect, Member, PointStats
    from amc_tui.sweeps.sweep import Point, Sweep

log = logging.getLogger(__name__)

GROUPS_DIR = "groups"
GROUP_FILE = "group.json"
ACTIVE = frozenset({"queued", "submitted", "running", "stalled"})
RESUMABLE = frozenset({"failed", "crashed", "stopped"})
# progress columns: member states counted under each
PROGRESS = {"done": ("completed",), "running": ("running", "stalled"), "queued": ("queued", "submitted"),
            "failed": ("failed", "crashed", "missing", "unknown"), "stopped": ("stopped",)}  # fmt: skip


# --------------------------------------------------------------------------- the record


@dataclass
class Group:
    """group.json: `sweep` is Sweep.to_dict(); `spec` the self-contained sweep file it came
    from (base config inlined), so an Optuna group can be reloaded to ask more trials.
    A point is {index, key, label, values} (+ trial, told, value for Optuna); a member
    {id, name, point, repeat, seed}."""

    id: str
    name: str
    dir: Path
    created_at: float
    sweep: dict[str, Any]
    spec: dict[str, Any]
    points: list[dict[str, Any]] = field(default_factory=list)
    members: list[dict[str, Any]] = field(default_factory=list)
    stopped: bool = False
    error: str | None = None

    @property
    def strategy(self) -> str:
        return str(self.sweep.get("strategy", "grid"))

    @property
    def adaptive(self) -> bool:
        return self.strategy == "optuna"

    @property
    def metric(self) -> str:
        return str(self.sweep.get("metric") or "val.acc_combined")

    @property
    def repeats(self) -> int:
        return int(self.sweep.get("repeats") or 1)

    @property
    def max_parallel(self) -> int:
        return int(self.sweep.get("max_parallel") or 0)

    @property
    def n_points(self) -> int:
        """Planned points (Optuna: the trial budget)."""
        return int(self.sweep.get("n_points") or len(self.points))

    @property
    def notes(self) -> str:
        return str(self.sweep.get("notes") or "")

    @property
    def path(self) -> Path:
        return self.dir / GROUP_FILE

    def point(self, index: int) -> dict[str, Any]:
        return next(p for p in self.points if p["index"] == index)

    def point_members(self, index: int) -> list[dict[str, Any]]:
        return [m for m in self.members if m["point"] == index]

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        del out["dir"]
        return out


def groups_root(ws: Workspace) -> Path:
    return ws.root / GROUPS_DIR


def read_group(folder: str | os.PathLike[str]) -> Group | None:
    """The group in `folder`, or None when group.json is missing or unreadable."""
    data = read_json(Path(folder) / GROUP_FILE)
    if not isinstance(data, dict) or not data.get("id") or not data.get("name"):
        return None
    try:
        return Group(dir=Path(folder), **{k: data[k] for k in _FIELDS if k in data})
    except TypeError:
        return None


_FIELDS = ("id", "name", "created_at", "sweep", "spec", "points", "members", "stopped", "error")


def group_lock(group: Group) -> FileLock:
    return FileLock(group.dir / ".group.lock", timeout=60.0)


def save(group: Group) -> None:
    atomic_write_json(group.path, group.to_json())


def update(group: Group, change: Callable[[Group], None]) -> Group:
    """Re-read group.json under the group's lock, apply `change`, write it back."""
    with group_lock(group):
        fresh = read_group(group.dir) or group
        change(fresh)
        save(fresh)
    return fresh


def list_groups(ws: Workspace) -> list[Group]:
    """Every group of the workspace, newest first."""
    try:
        entries = list(os.scandir(groups_root(ws)))
    except OSError:
        return []
    out = [g for e in entries if not e.name.startswith(".") and (g := read_group(e.path))]
    out.sort(key=lambda g: (-float(g.created_at or 0), g.name))
    return out


def check_group_name(name: str) -> str:
    """A group name is a folder name and the stem of its members' run names."""

    try:
        check_name(name)
    except ValueError as e:
        raise UserError(str(e).replace("run name", "group name")) from None
    if ":" in name or " " in name:
        raise UserError(f"group name {name!r} may not contain ':' or spaces")
    if len(name) > MAX_NAME_LEN - 12:
        raise UserError(f"group name {name!r} is too long: at most {MAX_NAME_LEN - 12} characters")
    return name


# --------------------------------------------------------------------------- references


def _brief(g: Group) -> str:
    return f"{g.name} ({g.id})"


def match_groups(ws: Workspace, ref: str) -> tuple[list[Group], bool]:
    """Groups named `ref` (by name or id: exact=True), else those it prefixes."""
    groups = list_groups(ws)
    exact = [g for g in groups if ref in (g.name, g.id)]
    if exact:
        return exact, True
    return [g for g in groups if g.name.startswith(ref) or g.id.startswith(ref)], False


def resolve_group(ws: Workspace, ref: str) -> Group:
    """A group by name, id or unique prefix; a UserError listing candidates otherwise."""
    ref = (ref or "").strip()
    if not ref:
        raise UserError("empty group reference; give a group name, id or prefix")
    found, _ = match_groups(ws, ref)
    if len(found) == 1:
        return found[0]
    if not found:
        known = ", ".join(_brief(g) for g in list_groups(ws)[:8]) or "none (no sweep yet)"
        raise UserError(f"no group matches {ref!r}; groups: {known}")
    raise UserError(f"{ref!r} is ambiguous: groups {', '.join(_brief(g) for g in found[:8])}")


def resolve_point(group: Group, ref: str) -> dict[str, Any]:
    """A point by key (`p1`), index (`1`) or its label (`loss.weighting=dwa`)."""
    ref = ref.strip()
    for p in group.points:
        if ref in (p["key"], str(p["index"]), p["label"]):
            return p
    near = [p for p in group.points if p["label"].startswith(ref)]
    if len(near) == 1:
        return near[0]
    keys = ", ".join(f"{p['key']} ({p['label']})" for p in group.points[:12]) or "none yet"
    raise UserError(f"group {group.name} has no point {ref!r}; points: {keys}")


@dataclass(frozen=True)
class Ref:
    """What a command-line reference names: a run, a whole group, or one point of a group."""

    kind: str  # run | group | point
    run: RunInfo | None = None
    group: Group | None = None
    point: dict[str, Any] | None = None


def resolve_ref(ws: Workspace, ref: str) -> Ref:
    """`G:POINT` is a point; else an exact run name or id, an exact group name or id, then a
    unique prefix of either. Matching nothing or several is a UserError naming candidates."""

    ref = (ref or "").strip()
    if ":" in ref:
        gref, _, pref = ref.rpartition(":")
        group = resolve_group(ws, gref)
        return Ref("point", group=group, point=resolve_point(group, pref))
    run, run_error = None, None
    try:
        run = resolve_run(ws, ref)
    except UserError as e:
        run_error = e
    if run is not None and ref in (run.name, run.id, run.dir.name):
        return Ref("run", run=run)
    groups, exact = match_groups(ws, ref) if ref else ([], False)
    if len(groups) == 1 and (exact or run is None):
        return Ref("group", group=groups[0])
    if run is not None and not groups:
        return Ref("run", run=run)
    if not groups and run_error is not None:
        known = ", ".join(_brief(g) for g in list_groups(ws)[:8])
        raise UserError(f"{run_error}" + (f"; groups: {known}" if known else ""))
    names = [f"group {_brief(g)}" for g in groups[:8]]
    if run is not None:
        names.insert(0, f"run {run.name} ({run.id})")
    raise UserError(f"{ref!r} is ambiguous: {', '.join(names)}; name one exactly")


# --------------------------------------------------------------------------- members


def member_runs(ws: Workspace, group: Group) -> dict[str, RunInfo | None]:
    """{run id: its RunInfo, or None when the run folder is gone}, through the run index:
    the members' rows, not the workspace."""
    found = index.read_runs(ws, [ws.runs / m["name"] for m in group.members])
    out: dict[str, RunInfo | None] = {}
    for m in group.members:
        info = found.get(os.fspath(ws.runs / m["name"]))
        out[m["id"]] = info if info is not None and info.id == m["id"] else None
    return out


def state_of(info: RunInfo | None) -> str:
    return info.state if info is not None else "missing"


def progress(states: Sequence[str]) -> dict[str, int]:
    """Members counted per progress column (done, running, queued, failed, stopped)."""
    c = Counter(states)
    return {col: sum(c[s] for s in kinds) for col, kinds in PROGRESS.items()}


def complete(group: Group) -> bool:
    """Every point planned (Optuna: the trial budget asked and every trial told)."""
    if not group.adaptive:
        return True
    return len(group.points) >= group.n_points and all(p.get("told") for p in group.points)


def group_state(group: Group, infos: dict[str, RunInfo | None]) -> str:
    """running (members active, or an Optuna trial to ask), stopped, done, or error."""
    states = [state_of(infos.get(m["id"])) for m in group.members]
    if any(s in ACTIVE for s in states):
        return "running"
    if group.error:
        return "error"
    if group.stopped:
        return "stopped"
    return "done" if complete(group) else "running"


def members(
    group: Group,
    infos: dict[str, RunInfo | None],
    point: int | None = None,
    cache: dict[tuple[str, Any], Member] | None = None,
) -> list[Member]:
    """groupstats Members (of one point, or all), point = the point's key (`p0`); only
    completed runs are read from disk, and with a `cache` (a view that polls) only once."""

    out = []
    for m in group.members if point is None else group.point_members(point):
        info, key = infos.get(m["id"]), f"p{m['point']}"
        if info is None:
            out.append(Member(m["id"], m["name"], key, m["repeat"], m.get("seed"),
                              state="missing", error="run folder missing"))  # fmt: skip
        elif info.state != "completed":
            out.append(Member(info.id, info.name, key, m["repeat"], m.get("seed"), info.state))
        elif cache is not None and (info.id, info.ended_at) in cache:
            out.append(cache[(info.id, info.ended_at)])
        else:
            member = member_from_run(info.dir, key, m["repeat"], m.get("seed"))
            if cache is not None:
                cache[(info.id, info.ended_at)] = member
            out.append(member)
    return out


@dataclass
class Summary:
    """A group read once for a view: member runs, stats per point, ranking, axis effects."""

    group: Group
    infos: dict[str, RunInfo | None]
    members: list[Member]
    points: list[PointStats]
    state: str

    def ranking(self, which: str = "best") -> list[Any]:
        return rank_points(self.points, self.group.metric, which)

    def effects(self, metric: str | None = None) -> list[Effect]:
        return axis_effects(self.group, self.points, metric or self.group.metric)

    def point_states(self, index: int) -> list[str]:
        return [state_of(self.infos.get(m["id"])) for m in self.group.point_members(index)]


def summarize(
    ws: Workspace, group: Group, cache: dict[tuple[str, Any], Member] | None = None
) -> Summary:
    infos = member_runs(ws, group)
    ms = members(group, infos, cache=cache)
    points = group_points(ms, order=[p["key"] for p in group.points])
    return Summary(group, infos, ms, points, group_state(group, infos))


def axis_effects(group: Group, points: Sequence[PointStats], metric: str) -> list[Effect]:
    """Per listed axis: each other value against the first one seen, pooled over the other
    axes (ranges have no two levels to compare). Sides with no usable run are left out."""

    values = {p["key"]: p["values"] for p in group.points if not p.get("error")}
    out: list[Effect] = []
    if sum(ps.n for ps in points) < 2:  # nothing to compare yet (and no scipy import)
        return out
    for axis in group.sweep.get("axes", []):
        key = axis["key"]
        if "values" not in axis:
            continue
        seen: list[Any] = []
        for v in values.values():
            if key in v and v[key] not in seen:
                seen.append(v[key])
        for other in seen[1:]:
            eff = axis_effect(points, values, key, metric, "best", a=other, b=seen[0])
            if eff.n_a and eff.n_b:
                out.append(eff)
    return out


# --------------------------------------------------------------------------- creating


def sweep_spec(sweep: Sweep) -> dict[str, Any]:
    cfg = sweep.base_config.to_dict()
    spec: dict[str, Any] = {k: v for k, v in cfg.items() if k in TABLES or k in ("phase", "tags")}
    table: dict[str, Any] = {"strategy": sweep.strategy, "repeats": sweep.repeats,
                             "metric": sweep.metric, "max_parallel": sweep.max_parallel}  # fmt: skip
    if sweep.strategy != "grid":
        table.update(trials=sweep.trials, seed=sweep.seed)
    table["axes"] = {
        a.key: list(a.values or ()) if a.range is None else dataclasses.asdict(a.range)
        for a in sweep.axes
    }
    return {**spec, "name": sweep.name, "notes": sweep.notes, "sweep": table}


def group_sweep(group: Group) -> Sweep:
    """The group's Sweep, rebuilt from its own record (the sweep file may have changed)."""

    return sweep_from_dict(group.spec, f"group {group.name}", allow_many=True, name=group.name)


def run_name(group: str, point: int, repeat: int) -> str:
    return f"{group}-p{point}-r{repeat}"


def point_dict(point: Point, trial: int | None = None) -> dict[str, Any]:
    out = {"index": point.index, "key": f"p{point.index}", "label": point.label,
           "values": point.values}  # fmt: skip
    if trial is not None:
        out.update(trial=trial, told=False, value=None)
    return out


def free_name(ws: Workspace, base: str) -> str:
    """`base`, or `base-2`, `base-3`... when a group of that name exists."""
    root, name, i = groups_root(ws), base, 2
    while (root / name).exists():
        name, i = f"{base}-{i}", i + 1
    return name


def groups_pending(ws: Workspace) -> bool:
    """True while an Optuna group waits for a queue pass (a trial to tell or to ask), so
    the queue worker stays alive for it although no run is queued."""
    return any(g.adaptive and not g.stopped and not g.error and not complete(g)
               for g in list_groups(ws))  # fmt: skip


def group_filter(ws: Workspace, ref: str, runs: list[RunInfo]) -> list[RunInfo]:
    """`ls --group G`: the runs that are members of group G, in the listing's order."""
    ids = {m["id"] for m in resolve_group(ws, ref).members}
    return [r for r in runs if r.id in ids]
