"""`explain RUN [--split] [--method] [--cells] [--frames] [--force] [--json]`: attribution maps
of both heads with the model-randomisation sanity check. The computation runs in a subprocess
(`python -m amc_tui.train.explain`: only amc_tui/train/ imports torch); this side refuses a run
without a checkpoint before anything starts and prints what the export holds."""

from __future__ import annotations

import argparse
import subprocess
import sys

from amc_tui import contract
from amc_tui.cli.output import print_json
from amc_tui.errors import UserError
from amc_tui.run import saliency as sal
from amc_tui.run.refs import resolve_run
from amc_tui.runlog.sync import not_written_reason, sync_entry
from amc_tui.workspace import Workspace

EXPLAIN_MODULE = f"{contract.TRAINER_MODULE}.explain"


def cmd_explain(args: argparse.Namespace, ws: Workspace) -> int:
    info = resolve_run(ws, args.run)
    sal.checkpoint_of(info.rundir)  # one line and exit 2, before a process starts
    argv = [sys.executable, "-m", EXPLAIN_MODULE, "--run-dir", str(info.dir), "--split",
            args.split, "--method", args.method, "--frames", str(args.frames)]  # fmt: skip
    if args.cells:
        argv += ["--cells", args.cells]
    if args.force:
        argv.append("--force")
    if args.device:
        argv += ["--device", args.device]
    code = subprocess.call(argv, stdout=subprocess.DEVNULL)
    if code != 0:
        return code
    export = sal.read_export(sal.export_dir(info.dir, args.method, args.split))
    if export is None:
        raise UserError(f"{info.name}: the explain export has no summary.json")
    try:  # the entry's Explanations section
        sync_entry(info.dir)
    except Exception as e:  # noqa: BLE001 - RUNLOG never fails the command
        print(f"amc-tui: RUNLOG.md not updated: {not_written_reason(e)}", file=sys.stderr)
    if args.json:
        print_json({"run": info.name, "dir": str(export.folder), **export.summary})
        return 0
    print(f"{info.name}: {export.summary.get('method_name')} on {export.split}, "
          f"{len(export.cells)} cells -> {export.folder}")  # fmt: skip
    for head in sal.HEADS:
        print(
            f"  {sal.HEAD_NAMES[head]:<10} attribution {sal.rings_text(sal.head_rings(export, head))}"
        )
    for head in sal.HEADS:
        rings = sal.rings_text(sal.head_rings(export, head, "random"))
        print(f"  {sal.HEAD_NAMES[head]:<10} random weights {rings}")
    print(f"  {'signal':<10} image       {sal.rings_text(sal.head_rings(export, 'mod', 'image'))}")
    print(f"  {export.sanity_line()}")
    return 0
