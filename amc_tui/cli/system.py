"""`tui`, `bench`, `gpus`: the app, this machine's throughput and its GPUs. The benchmark runs
in a subprocess: only amc_tui/train/ imports torch."""

from __future__ import annotations

import argparse
import subprocess
import sys

from amc_tui.cli.output import print_json
from amc_tui.gpu import GpuSampler, format_snapshot, snapshot_dict
from amc_tui.tui.app import run_app
from amc_tui.workspace import Workspace


def cmd_bench(args: argparse.Namespace, ws: Workspace) -> int:
    argv = [sys.executable, "-m", "amc_tui.train.bench"]
    if args.config:
        argv.append(str(ws.resolve(args.config)))
    argv += ["--workspace", str(ws.root)]
    if args.json:
        argv.append("--json")
    return subprocess.call(argv)


def cmd_tui(args: argparse.Namespace, ws: Workspace) -> int:
    return run_app(ws)


def cmd_gpus(args: argparse.Namespace, ws: Workspace) -> int:
    snap = GpuSampler().sample()
    if args.json:
        print_json(snapshot_dict(snap))
    else:
        print(format_snapshot(snap))
    return 0
