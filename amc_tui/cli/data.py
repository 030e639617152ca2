"""`config check`, `data synth`, `data inspect`: configs and data files, before any run."""

from __future__ import annotations

import argparse
import sys

from amc_tui.cli.output import print_json
from amc_tui.config import dumps_config, load_config
from amc_tui.data.radioml import format_inspection, inspect_file
from amc_tui.data.synth import synthesize
from amc_tui.mirror.targets import require_packages
from amc_tui.workspace import Workspace


def cmd_config_check(args: argparse.Namespace, ws: Workspace) -> int:
    cfg = load_config(ws.resolve(args.file), args.set)
    require_packages(cfg)  # a mirror whose package is missing: exit 2 with the install command
    if args.json:
        print_json(cfg.to_dict())
    else:
        sys.stdout.write(dumps_config(cfg))
    return 0


def cmd_data_synth(args: argparse.Namespace, ws: Workspace) -> int:
    out = ws.resolve(args.out)
    classes: str | list[str] = args.classes
    if classes not in ("digital", "all"):
        classes = [c for c in classes.split(",") if c]
    n = synthesize(
        out,
        classes=classes,
        frames_per_cell=args.frames_per_cell,
        snr_min=args.snr_min,
        snr_max=args.snr_max,
        seed=args.seed,
    )
    print(f"wrote {n} frames to {out}")
    return 0


def cmd_data_inspect(args: argparse.Namespace, ws: Workspace) -> int:
    report = inspect_file(ws.resolve(args.file))
    if args.json:
        print_json(report)
    else:
        print(format_inspection(report))
    return 0
