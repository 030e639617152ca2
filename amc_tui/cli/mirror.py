"""`amc-tui mirror RUN|GROUP --to tensorboard|wandb`: older runs join the dashboards (backfill
from events.jsonl and the exports, amc_tui.mirror.backfill)."""

from __future__ import annotations

import argparse
import sys

from amc_tui.errors import UserError
from amc_tui.mirror.backfill import backfill
from amc_tui.mirror.sink import error_line
from amc_tui.run.refs import resolve_run
from amc_tui.run.rundir import RunDir, list_runs
from amc_tui.sweeps.group import match_groups
from amc_tui.workspace import Workspace


def targets_of(ws: Workspace, ref: str) -> list[RunDir]:
    """A run by name/id/prefix, else the members of a sweep group (in creation order)."""
    try:
        return [resolve_run(ws, ref).rundir]
    except UserError as run_error:
        groups, _ = match_groups(ws, ref)
        if len(groups) != 1:
            raise run_error from None
        ids = {m["id"] for m in groups[0].members}
        members = sorted((r for r in list_runs(ws) if r.id in ids), key=lambda r: r.created_at or 0)
        return [r.rundir for r in members]


def cmd_mirror(args: argparse.Namespace, ws: Workspace) -> int:
    """Each run in turn; one that cannot be mirrored is one line on stderr and the others go
    on. Exit 2 when the only run is bad input, 1 when any failed, else 0."""
    runs = targets_of(ws, args.target)
    failed = 0
    for run in runs:
        try:
            where = backfill(run, args.to, args.wandb_mode)
        except UserError as e:
            if len(runs) == 1:
                raise
            print(f"{run.name}: not mirrored: {e}", file=sys.stderr)
            failed += 1
            continue
        except Exception as e:  # noqa: BLE001 - the service's error, as one line
            print(f"{run.name}: not mirrored: {error_line(e, args.to)}", file=sys.stderr)
            failed += 1
            continue
        print(f"{run.name}: mirrored to {args.to}: {where}")
    return 1 if failed else 0
