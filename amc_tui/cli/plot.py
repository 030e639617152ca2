"""`plot RUN|G|G:POINT... --out DIR`: paper figures of runs, of each point of a group, or of
one point (its completed members pooled), through matplotlib (`sweeps/plot.py`); with
`--figures saliency`, a run's explain export (`sweeps/saliency_plot.py`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from amc_tui.errors import UserError
from amc_tui.sweeps.group import Group, member_runs, resolve_ref, state_of
from amc_tui.sweeps.plot import Target, plot_targets
from amc_tui.sweeps.saliency_plot import plot_saliency
from amc_tui.sweeps.sweep import format_value
from amc_tui.workspace import Workspace


def _point_target(g: Group, point: dict[str, Any], infos: dict[str, Any]) -> Any:
    ms = g.point_members(point["index"])
    dirs = tuple(infos[m["id"]].dir for m in ms if state_of(infos.get(m["id"])) == "completed")
    if not dirs:
        states = ", ".join(f"{m['name']} {state_of(infos.get(m['id']))}" for m in ms) or "none"
        raise UserError(f"{g.name}:{point['key']}: no completed run to plot ({states})")
    values = ", ".join(format_value(v) for v in point["values"].values())  # short legends
    return Target(f"{g.name}:{point['key']} {values}".strip(), dirs)


def cmd_plot(args: argparse.Namespace, ws: Workspace) -> int:
    targets = []
    for text in args.targets:
        ref = resolve_ref(ws, text)
        if ref.kind == "run":
            assert ref.run is not None
            targets.append(Target.of_run(ref.run.dir, ref.run.name))
            continue
        g = ref.group
        assert g is not None
        infos = member_runs(ws, g)
        for p in [ref.point] if ref.point else g.points:
            try:
                targets.append(_point_target(g, p, infos))
            except UserError as e:
                if ref.point:
                    raise
                print(f"amc-tui: skipped {e}", file=sys.stderr)
    formats = [f for f in args.format.split(",") if f.strip()]
    kinds = [k for k in args.figures.split(",") if k.strip()] if args.figures else None
    saliency = kinds is not None and "saliency" in kinds  # a run's explain export, on request
    kinds = [k for k in kinds if k != "saliency"] if kinds is not None else None
    extra = {"kinds": kinds} if kinds else {}
    paths = [] if saliency and not kinds else plot_targets(
        targets, ws.resolve(args.out), formats, args.split, **extra)  # fmt: skip
    if saliency:
        paths += plot_saliency(targets, ws.resolve(args.out), formats, args.split)
    for path in paths:
        print(path)
    return 0
