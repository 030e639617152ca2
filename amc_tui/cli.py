"""The `amc-tui` command surface: parse arguments, call the parts, set exit codes.

Exit codes: 0 ok, 2 bad input (one line on stderr), 130 interrupted; `run` returns the
trainer's. Nothing here imports torch/timm: the trainer and the benchmark run in subprocesses.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from amc_tui.errors import UserError
from amc_tui.workspace import Workspace

Handler = Callable[[argparse.Namespace, Workspace], int]


def _print_json(obj: object) -> None:
    from amc_tui.fsutil import plain

    print(json.dumps(obj, indent=2, default=plain))


# --------------------------------------------------------------------------- config


def cmd_config_check(args: argparse.Namespace, ws: Workspace) -> int:
    from amc_tui.config import dumps_config, load_config

    cfg = load_config(ws.resolve(args.file), args.set)
    if args.json:
        _print_json(cfg.to_dict())
    else:
        sys.stdout.write(dumps_config(cfg))
    return 0


# --------------------------------------------------------------------------- data


def cmd_data_synth(args: argparse.Namespace, ws: Workspace) -> int:
    from amc_tui.data.synth import synthesize

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
    from amc_tui.data.radioml import format_inspection, inspect_file

    report = inspect_file(ws.resolve(args.file))
    if args.json:
        _print_json(report)
    else:
        print(format_inspection(report))
    return 0


# --------------------------------------------------------------------------- bench, tui


def cmd_bench(args: argparse.Namespace, ws: Workspace) -> int:
    """Runs in a subprocess: only amc_tui/train/ may import torch."""
    import subprocess

    argv = [sys.executable, "-m", "amc_tui.train.bench"]
    if args.config:
        argv.append(str(ws.resolve(args.config)))
    argv += ["--workspace", str(ws.root)]
    if args.json:
        argv.append("--json")
    return subprocess.call(argv)


def cmd_tui(args: argparse.Namespace, ws: Workspace) -> int:
    from amc_tui.tui.app import run_app

    return run_app(ws)


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="amc-tui",
        description="Run manager for modulation-classification research on RadioML 2018.01A.",
    )
    p.add_argument("--workspace", "-w", help="workspace folder (default $AMC_TUI_WORKSPACE or .)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, handler: Handler, help: str, parent=sub) -> argparse.ArgumentParser:
        sp = parent.add_parser(name, help=help, description=help)
        sp.set_defaults(handler=handler)
        return sp

    cfg = sub.add_parser("config", help="check configs").add_subparsers(dest="sub", required=True)
    sp = add("check", cmd_config_check, "validate a config and print it resolved", cfg)
    sp.add_argument("file")
    sp.add_argument("--set", action="append", default=[], metavar="TABLE.KEY=VALUE")
    sp.add_argument("--json", action="store_true")

    data = sub.add_parser("data", help="dataset tools").add_subparsers(dest="sub", required=True)
    sp = add("synth", cmd_data_synth, "write a synthetic RadioML-layout HDF5 file", data)
    sp.add_argument("out")
    sp.add_argument("--classes", default="digital", help="digital | all | NAME,NAME,...")
    sp.add_argument("--frames-per-cell", type=int, default=64)
    sp.add_argument("--snr-min", type=int, default=-20)
    sp.add_argument("--snr-max", type=int, default=30)
    sp.add_argument("--seed", type=int, default=0)
    sp = add("inspect", cmd_data_inspect, "validate a RadioML HDF5 file and count its cells", data)
    sp.add_argument("file")
    sp.add_argument("--json", action="store_true")

    sp = add("bench", cmd_bench, "training/inference/rendering throughput on this device")
    sp.add_argument("config", nargs="?")
    sp.add_argument("--json", action="store_true")

    add("tui", cmd_tui, "open the Textual app (the default)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    ws = Workspace.find(args.workspace)
    handler: Handler = getattr(args, "handler", cmd_tui)
    try:
        return handler(args, ws)
    except UserError as e:
        print(f"amc-tui: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
