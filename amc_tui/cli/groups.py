"""The sweep and group commands: `sweep`, `groups`, `group show|stop|resume`, `plot`, and
what `compare` and `ls --group` need to accept groups and points.

A reference names a run, a group (`G`) or one point of a group (`G:p1`, `G:1` or
`G:loss.weighting=dwa`); one that matches nothing or several is exit 2 with the candidates.
Statistics come from sweeps/stats through sweeps/group's summarize; their text from
runlog/group_entry, so
the terminal and RUNLOG.md read the same. `plot` is its own module (`cli/plot.py`: matplotlib).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from amc_tui import report
from amc_tui.cli.output import print_json
from amc_tui.errors import UserError
from amc_tui.launch.groups import create_group, resume_group, stop_group, wait_ended
from amc_tui.launch.keeper import ensure_worker
from amc_tui.launch.queue import work_queue
from amc_tui.run import health, index
from amc_tui.run.rundir import dig, read_config_dict, run_config
from amc_tui.runlog.group_entry import (
    axes_text,
    best_text,
    ci,
    main_metrics,
    mean_std,
    metric_title,
    plan_text,
    progress_text,
)
from amc_tui.sweeps import point_tables
from amc_tui.sweeps.group import (
    free_name,
    group_state,
    groups_root,
    list_groups,
    member_runs,
    members,
    progress,
    read_group,
    resolve_group,
    resolve_ref,
    state_of,
    summarize,
)
from amc_tui.sweeps.stats import member_from_run, point_effect, point_stats
from amc_tui.sweeps.sweep import format_value, load_sweep
from amc_tui.workspace import Workspace

if TYPE_CHECKING:
    from amc_tui.sweeps.group import Group, Ref, Summary
    from amc_tui.sweeps.stats import PointStats, Stat
    from amc_tui.sweeps.sweep import Sweep


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and math.isfinite(x) else None


def stat_dict(s: Stat) -> dict[str, Any]:
    """n, mean, std (ddof 1) and the 95 % CI; NaN (n < 2) as null."""
    return {"n": s.n, "mean": _num(s.mean), "std": _num(s.std), "ci_lo": _num(s.lo),
            "ci_hi": _num(s.hi)}  # fmt: skip


# --------------------------------------------------------------------------- sweep


def _epoch_seconds(ws: Workspace) -> dict[tuple[Any, Any], list[float]]:
    """Wall seconds per epoch of the workspace's completed runs, by (arch, image size)."""

    out: dict[tuple[Any, Any], list[float]] = {}
    for info in index.list_runs(ws, state="completed", with_last_epoch=False):
        elapsed = info.elapsed_s()
        if not elapsed or not info.epoch:
            continue
        cfg = read_config_dict(info.rundir)
        key = (dig(cfg, "model.arch"), dig(cfg, "image.size"))
        out.setdefault(key, []).append(elapsed / info.epoch)
    return out


def dry_run_text(ws: Workspace, sweep: Sweep) -> str:
    """The points table (axis values, seeds, runs, estimated time per run) and the totals."""

    per_epoch = _epoch_seconds(ws)
    source = Path(sweep.source)
    shown = source.relative_to(ws.root) if source.is_relative_to(ws.root) else source
    head = f"sweep {sweep.name} ({shown}): "
    L = []
    if sweep.adaptive:
        L.append(head + f"optuna, {sweep.trials} trials x {sweep.repeats} repeats = at most "
                 f"{sweep.n_runs} runs, {sweep.direction} {sweep.metric}")  # fmt: skip
    else:
        L.append(head + f"{sweep.strategy}, {sweep.n_points} points x {sweep.repeats} repeats = "
                 f"{sweep.n_runs} runs, ranked by {sweep.metric}")  # fmt: skip
    if sweep.notes:
        L.append(f"question: {' '.join(sweep.notes.split())}")
    base_seed = sweep.base_config.train.seed
    seeds = ", ".join(str(base_seed + k) for k in range(sweep.repeats))
    estimates: list[float] = []
    if sweep.adaptive:
        L.append("axes: " + "; ".join(axes_text(_fake_group(sweep))))
        L.append(f"seeds per trial: {seeds}; trials are chosen by Optuna as results come in")
        est = _estimate(per_epoch, sweep.base_config)
        estimates = [est] * sweep.n_runs if est is not None else []
    else:
        keys = [a.key for a in sweep.axes]
        rows = []
        for point, run in ((r.point, r) for r in sweep.runs() if r.repeat == 0):
            est = _estimate(per_epoch, run.config)
            if est is not None:
                estimates += [est] * sweep.repeats
            rows.append([f"p{point.index}", *(format_value(point.values[k]) for k in keys),
                         seeds, str(sweep.repeats), report.duration(est)])  # fmt: skip
        L.append(report.table(rows, ["POINT", *keys, "SEEDS", "RUNS", "EST/RUN"]))
    if estimates:
        total = sum(estimates)
        par = f"; {report.duration(total / sweep.max_parallel)} {sweep.max_parallel} at a time" \
            if sweep.max_parallel > 1 else ""  # fmt: skip
        L.append(f"estimated time: {report.duration(total)} for all {len(estimates)} runs one "
                 f"at a time{par} (from earlier runs of the same arch and image size)")  # fmt: skip
    else:
        L.append("estimated time: unknown (no completed run of the same arch and image size)")
    L.append("nothing created (--dry-run)")
    return "\n".join(L)


def _fake_group(sweep: Sweep) -> Any:
    return SimpleNamespace(sweep=sweep.to_dict())


def _estimate(per_epoch: dict[tuple[Any, Any], list[float]], cfg: Any) -> float | None:
    seen = per_epoch.get((cfg.model.arch, cfg.image.size))
    return statistics.median(seen) * cfg.train.epochs if seen else None


def cmd_sweep(args: argparse.Namespace, ws: Workspace) -> int:
    sweep = load_sweep(ws.resolve(args.file), ws.root, allow_many=args.allow_many)
    if args.dry_run:
        print(dry_run_text(ws, sweep))
        return 0
    if args.name and (groups_root(ws) / args.name).exists():
        raise UserError(f"a group named {args.name!r} already exists in {groups_root(ws)}")
    group = create_group(ws, sweep, args.name or free_name(ws, sweep.name))
    work_queue(ws)  # starts members; asks an Optuna group's first trials
    ensure_worker(ws)  # the group goes on with no amc-tui process open
    group = read_group(group.dir) or group
    if args.detach:
        print(f"{group.name} {group.id} {len(group.members)} runs queued")
        return 0
    print(f"group {group.name} ({group.id}): {plan_text(group)}; folder {group.dir}", flush=True)
    return follow(ws, group)


def follow(ws: Workspace, group: Group) -> int:
    """Print members' state changes until the group ends; Ctrl-C leaves it running (130)."""

    seen: dict[str, str] = {}
    last_pass = 0.0
    try:
        while True:
            g = read_group(group.dir) or group
            infos = member_runs(ws, g)
            states = {m["id"]: state_of(infos.get(m["id"])) for m in g.members}
            for m in g.members:
                state, was = states[m["id"]], seen.get(m["id"])
                info = infos.get(m["id"])
                marks = health.mark(info.health) if info else ""
                seen_as = f"{state} {marks}"  # a rule firing is news too
                if seen_as != was and not (was is None and state == "queued"):
                    best = f"  best {report.best(info.best)}" if info and info.best else ""
                    counts = progress_text(progress(list(states.values())))
                    print(f"{report.clock_s(time.time())}  {m['name']} {state}{best}  [{counts}]",
                          flush=True)  # fmt: skip
                    for h in info.health if info else []:  # what each rule measured
                        print(f"    {h['message']}", flush=True)
                seen[m["id"]] = seen_as
            if group_state(g, infos) != "running":
                break
            if time.time() - last_pass >= 1.0:
                last_pass = time.time()
                work_queue(ws)
            time.sleep(0.5)
    except KeyboardInterrupt:
        ensure_worker(ws)
        print(f"\ngroup {group.name} goes on: `amc-tui group show {group.name}`, "
              f"`amc-tui group stop {group.name}`", file=sys.stderr)  # fmt: skip
        return 130

    summary = summarize(ws, read_group(group.dir) or group)
    print()
    print(show_text(summary))
    ok = all(state_of(i) == "completed" for i in summary.infos.values())
    return 0 if ok and summary.state == "done" else 1


# --------------------------------------------------------------------------- groups, show


def _best_brief(summary: Summary) -> str:
    ranked = summary.ranking()
    if not ranked or ranked[0].stat.n == 0:
        return "-"
    top = ranked[0]
    if top.dead:
        return "- (every point learned nothing)"
    return f"{top.point} {mean_std(top.stat, summary.group.metric, '-')} (n={top.stat.n})"


def cmd_groups(args: argparse.Namespace, ws: Workspace) -> int:
    rows, data = [], []
    for g in list_groups(ws):
        s = summarize(ws, g)
        counts = progress([state_of(i) for i in s.infos.values()])
        ranked = s.ranking()
        best = ranked[0] if ranked and ranked[0].stat.n else None
        data.append({"id": g.id, "name": g.name, "strategy": g.strategy, "metric": g.metric,
                     "state": s.state, "points": len(g.points), "planned_points": g.n_points,
                     "repeats": g.repeats, "runs": len(g.members), "progress": counts,
                     "stopped": g.stopped, "created_at": g.created_at, "dir": str(g.dir),
                     "best": {"point": best.point, **stat_dict(best.stat)} if best else None})  # fmt: skip
        done = f"{counts['done']}/{len(g.members)}"
        rows.append([g.name, g.id, s.state, g.strategy, f"{len(g.points)}x{g.repeats}", done,
                     _best_brief(s), report.clock(g.created_at)])  # fmt: skip
    if args.json:
        print_json(data)
    elif not rows:
        print("no groups: start one with `amc-tui sweep SWEEP.toml`")
    else:
        head = ["NAME", "ID", "STATE", "STRATEGY", "POINTS", "DONE", "BEST", "CREATED"]
        print(report.table(rows, head))
    return 0


def show_data(summary: Summary) -> dict[str, Any]:
    """`group show --json`: the group, each point's stats and members, ranking, effects."""

    g = summary.group
    by_key = {ps.point: ps for ps in summary.points}
    ranking = summary.ranking()
    rank_of = {r.point: r.rank for r in ranking}
    why = {m.run_id: m.why_excluded for m in summary.members}
    points = []
    for p in g.points:
        ps = by_key[p["key"]]
        ms = g.point_members(p["index"])
        points.append({
            **{k: p.get(k) for k in ("key", "index", "label", "values", "trial", "value")},
            "n": ps.n, "rank": rank_of.get(p["key"]),
            "progress": progress(summary.point_states(p["index"])),
            "best": {k: stat_dict(s) for k, s in ps.best.items()},
            "final": {k: stat_dict(s) for k, s in ps.final.items()},
            "members": [{"id": m["id"], "name": m["name"], "repeat": m["repeat"],
                         "seed": m.get("seed"), "state": state_of(summary.infos.get(m["id"])),
                         "excluded": why.get(m["id"]) or None} for m in ms],
        })  # fmt: skip
    effects = [{"axis": e.title, "metric": e.metric, "n_a": e.n_a, "n_b": e.n_b,
                "diff": _num(e.diff), "ci_lo": _num(e.lo), "ci_hi": _num(e.hi), "p": _num(e.p),
                "paired": e.paired, "sentence": e.sentence()} for e in summary.effects()]  # fmt: skip
    excluded = [{"name": m.name, "point": m.point, "reason": m.why_excluded}
                for m in summary.members if not m.usable]  # fmt: skip
    return {
        "group": {
            "id": g.id,
            "name": g.name,
            "state": summary.state,
            "strategy": g.strategy,
            "metric": g.metric,
            "repeats": g.repeats,
            "max_parallel": g.max_parallel,
            "planned_points": g.n_points,
            "notes": g.notes,
            "stopped": g.stopped,
            "error": g.error,
            "created_at": g.created_at,
            "dir": str(g.dir),
            "sweep": g.sweep,
        },  # fmt: skip
        "points": points,
        "ranking": [{"rank": r.rank, "point": r.point, **stat_dict(r.stat)} for r in ranking],
        "best_point": ranking[0].point if ranking and ranking[0].rank == 1 else None,
        "effects": effects,
        "excluded": excluded,
    }


def show_text(summary: Summary) -> str:
    g, metric = summary.group, summary.group.metric
    L = [f"{g.name} ({g.id})  {summary.state}  {plan_text(g)}"]
    if g.notes:
        L.append(f"  question: {' '.join(g.notes.split())}")
    L.append(f"  axes: {'; '.join(axes_text(g)) or 'none (repeats only)'}")
    L.append(f"  folder: {g.dir}")
    if g.error:
        L.append(f"  error: {g.error}")
    by_key = {ps.point: ps for ps in summary.points}
    rank_of = {r.point: r.rank for r in summary.ranking()}
    order = [r.point for r in summary.ranking()]
    points = sorted(g.points, key=lambda p: order.index(p["key"]))
    rows = []
    for p in points:
        ps = by_key[p["key"]]
        best, final = ps.stat(metric, "best"), ps.stat(metric, "final")
        rows.append([str(rank_of.get(p["key"]) or "-"), p["key"] + ("!" if ps.health_note() else ""),
                     p["label"], str(ps.n),
                     progress_text(progress_of(summary, p["index"])),
                     mean_std(best, metric, "-"), ci(best, metric, "-"),
                     mean_std(final, metric, "-")])  # fmt: skip
    title = metric_title(metric).upper()
    L += ["", f"points by {metric} at the best epoch (mean ± std, 95 % CI of the mean):"]
    L.append(report.table(rows, ["RANK", "POINT", "VALUES", "N", "RUNS", f"BEST {title}",
                                 "95 % CI", f"FINAL {title}"]))  # fmt: skip
    others = [(m, w) for m, w in main_metrics(metric) if m != metric]
    rows = [[p["key"], *(mean_std(by_key[p["key"]].stat(m, w), m, "-") for m, w in others)]
            for p in points]  # fmt: skip
    marked = [(p, by_key[p["key"]]) for p in points if by_key[p["key"]].health_note()]
    if marked:
        L += ["", "health (!: runs a health rule marks; a point whose runs all learned nothing "
              "is never ranked):"]  # fmt: skip
        L += [f"  {p['key']} ({p['label']}): {ps.health_note()}" for p, ps in marked]
    L += ["", "other metrics (mean ± std; test: the final export):"]
    L.append(report.table(rows, ["POINT", *(metric_title(m).upper() for m, _ in others)]))
    L += point_tables.text_lines([point_tables.point_tables(p["key"], by_key[p["key"]].members)
                                  for p in points])  # fmt: skip
    L += ["", f"best point: {best_text(summary)}"]
    effects = summary.effects()
    if effects:
        L += ["effects (difference of means, 95 % CI):"]
        L += [f"  {e.sentence()}" for e in effects]
    bad = [m for m in summary.members if not m.usable and m.state not in ("queued", "running")]
    if bad:
        L.append("excluded members:")
        L += [f"  {m.name} ({m.point}): {m.why_excluded}" for m in bad]
    return "\n".join(L)


def progress_of(summary: Summary, index: int) -> dict[str, int]:
    return progress(summary.point_states(index))


def cmd_group_show(args: argparse.Namespace, ws: Workspace) -> int:
    summary = summarize(ws, resolve_group(ws, args.group))
    if args.json:
        print_json(show_data(summary))
    else:
        print(show_text(summary))
    return 0


def cmd_group_stop(args: argparse.Namespace, ws: Workspace) -> int:
    group = resolve_group(ws, args.group)
    asked = stop_group(ws, group, grace_s=args.grace)
    running = [i for i in asked if i.active]  # a Slurm job's cancel ends in a thread too
    if running:
        print(f"stopping {len(running)} running member(s) of {group.name}: waiting for their "
              "checkpoints", flush=True)  # fmt: skip
        graces = [args.grace] if args.grace is not None else [
            run_config(i.rundir).run.stop_grace_s for i in running]  # fmt: skip
        wait_ended(ws, group, timeout=max(graces) + 15.0)  # SIGKILL comes after the grace
    print(f"group {group.name} stopped ({len(asked)} member(s) stopped); "
          f"`amc-tui group resume {group.name}` continues it")  # fmt: skip
    return 0


def cmd_group_resume(args: argparse.Namespace, ws: Workspace) -> int:
    group = resolve_group(ws, args.group)
    names = resume_group(ws, group)
    what = f"requeued {', '.join(names)}" if names else "no member to restart"
    more = "; Optuna continues the study" if group.adaptive else ""
    print(f"group {group.name} resumed: {what}{more}")
    return 0


# --------------------------------------------------------------------------- compare, ls, plot


def _side(ws: Workspace, ref: Ref) -> tuple[str, PointStats]:
    if ref.kind == "run":
        assert ref.run is not None
        label = f"run {ref.run.name} ({ref.run.id})"
        return label, point_stats(label, [member_from_run(ref.run.dir, label)])
    g = ref.group
    assert g is not None
    ms = members(g, member_runs(ws, g), ref.point["index"] if ref.point else None)
    if ref.point:
        label = f"{g.name}:{ref.point['key']} ({ref.point['label']})"
    else:
        label = f"group {g.name} (all points)"
    return label, point_stats(label, ms)


def compare_refs(args: argparse.Namespace, ws: Workspace) -> int | None:
    """`compare` of groups and points (each side: n, mean ± std; effects with 95 % CIs);
    None when both references are runs (the run-vs-run comparison prints as before)."""

    a, b = resolve_ref(ws, args.a), resolve_ref(ws, args.b)
    if a.kind == b.kind == "run":
        return None
    (la, pa), (lb, pb) = _side(ws, a), _side(ws, b)
    metric = next((r.group.metric for r in (a, b) if r.group), "val.acc_combined")
    rows, data = [], []
    for m, which in main_metrics(metric):
        eff = dataclasses.replace(point_effect(pa, pb, m, which), title=metric_title(m))
        sa, sb = pa.stat(m, which), pb.stat(m, which)
        ok = bool(sa.n and sb.n)
        data.append({"metric": m, "which": which, "a": stat_dict(sa), "b": stat_dict(sb),
                     "diff": _num(eff.diff), "ci_lo": _num(eff.lo), "ci_hi": _num(eff.hi),
                     "p": _num(eff.p), "paired": eff.paired,
                     "sentence": eff.sentence() if ok else None})  # fmt: skip
        rows.append([f"{metric_title(m)} ({which})", mean_std(sa, m, "-"), mean_std(sb, m, "-"),
                     eff.sentence().partition(": ")[2] if ok else "-"])  # fmt: skip
    sides = [{"label": la, "n": pa.n, "excluded": [list(x) for x in pa.excluded]},
             {"label": lb, "n": pb.n, "excluded": [list(x) for x in pb.excluded]}]  # fmt: skip
    if args.json:
        print_json({"a": sides[0], "b": sides[1], "metrics": data})
        return 0
    for tag, side in zip("AB", sides, strict=True):
        left = f"; excluded: {', '.join(f'{n} ({w})' for n, w in side['excluded'])}" \
            if side["excluded"] else ""  # fmt: skip
        print(f"{tag} = {side['label']}: {side['n']} completed run(s){left}")
    print("\nmean ± std per side; A - B with its 95 % CI (paired when both ran the same seeds):")
    print(report.table(rows, ["METRIC", "A", "B", "A - B"]))
    return 0
