"""The `amc-tui` command surface: parse arguments, call the parts, set exit codes.

Exit codes: 0 ok, 2 bad input (one line on stderr), 1 a file that cannot be written
(`runlog sync`), 130 interrupted; `run` returns the trainer's. The run-management commands
live in cli_runs. Nothing here imports torch/timm: the trainer and the benchmark run in subprocesses.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from amc_tui import report
from amc_tui.cli_groups import add_group_parsers, compare_refs
from amc_tui.cli_runs import (
    cmd_ls,
    cmd_queue,
    cmd_repair,
    cmd_resume,
    cmd_run,
    cmd_runlog_sync,
    cmd_show,
    cmd_stop,
    cmd_tail,
)
from amc_tui.errors import UserError
from amc_tui.serve import add_serve_parser
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


# --------------------------------------------------------------------------- compare, gpus


def cmd_compare(args: argparse.Namespace, ws: Workspace) -> int:
    from amc_tui.analysis import compare_runs
    from amc_tui.refs import resolve_run

    if (rc := compare_refs(args, ws)) is not None:  # a group or a point on either side
        return rc
    a, b = resolve_run(ws, args.a), resolve_run(ws, args.b)
    out = compare_runs(a, b)
    if args.json:
        _print_json(out)
        return 0
    print(f"A = {a.name} ({a.id}), {a.state}, best {report.best(a.best)}")
    print(f"B = {b.name} ({b.id}), {b.state}, best {report.best(b.best)}")
    print("\nconfig keys that differ:" if out["config_diff"] else "\nconfigs are identical")
    for key, va, vb in out["config_diff"]:
        print(f"  {key}: {va!r} -> {vb!r}")

    def row(r: dict) -> list[str]:
        m = r["metric"]
        values = [report.metric(m, r[k], ".4f") for k in ("best_a", "best_b")]
        finals = [report.metric(m, r[k], ".4f") for k in ("final_a", "final_b")]
        return [
            m,
            *values,
            report.delta(m, r["best_delta"]),
            *finals,
            report.delta(m, r["final_delta"]),
        ]

    rows = [row(r) for r in out["metrics"]]
    ep = {f"{k}{w}": report.MISSING if out[w][k] is None else out[w][k]
          for k in ("best_epoch", "epoch") for w in ("a", "b")}  # fmt: skip
    print(
        f"\nmetrics (best by {out['select_metric']}: A epoch {ep['best_epocha']}, B epoch {ep['best_epochb']}; "
        f"final: A epoch {ep['epocha']}, B epoch {ep['epochb']}):"
    )
    print(
        report.table(rows, ["METRIC", "BEST A", "BEST B", "DELTA", "FINAL A", "FINAL B", "DELTA"])
    )
    if out["top_cells"]:
        print(f"\ncells that changed most (acc_combined, export {out['export']}):")
        print(report.table(
            [[c["modulation"], str(c["snr_db"]), report.pct(c["a"]), report.pct(c["b"]), report.delta("acc_combined", c["delta"])] for c in out["top_cells"]],
            ["MODULATION", "SNR", "A", "B", "DELTA"],
        ))  # fmt: skip
    elif out["export"]:
        print(f"\nno cells with data in both runs (export {out['export']})")
    else:
        print("\nno common export to compare cells")
    return 0


def cmd_gpus(args: argparse.Namespace, ws: Workspace) -> int:
    from amc_tui.gpu import GpuSampler, format_snapshot, snapshot_dict

    snap = GpuSampler().sample()
    if args.json:
        _print_json(snapshot_dict(snap))
    else:
        print(format_snapshot(snap))
    return 0


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
    add_serve_parser(sub)
    add_group_parsers(sub)

    sp = add("run", cmd_run, "create and start (or queue) a run; follow it unless --detach")
    sp.add_argument("config")
    sp.add_argument("--set", action="append", default=[], metavar="TABLE.KEY=VALUE")
    sp.add_argument("--name", help="run name (default adjective-noun-N)")
    sp.add_argument("--gpus", help="GPU indices, e.g. 0,1 (default: run.gpus)")
    sp.add_argument("--detach", "-d", action="store_true", help="print name and id and return")
    sp = add("ls", cmd_ls, "list runs, newest first")
    sp.add_argument("--json", action="store_true")
    sp.add_argument(
        "--state",
        help="queued | running | stalled | completed | failed | stopped | crashed | unknown "
        "| foreign",
    )
    sp.add_argument("--group", help="only the members of this sweep group")
    sp.add_argument(
        "--all", action="store_true", help="also folders in runs/ that are not runs (foreign)"
    )
    sp = add("show", cmd_show, "a run's config, status, metrics, trajectory and exports")
    sp.add_argument("run", help="name, id, or a unique prefix of either")
    sp.add_argument("--json", action="store_true")
    sp = add("tail", cmd_tail, "print a run's events as lines, following until it ends")
    sp.add_argument("run")
    sp.add_argument("--no-follow", dest="follow", action="store_false", help="print and return")
    sp = add("stop", cmd_stop, "stop a run gracefully (checkpoint), SIGKILL after the grace period")
    sp.add_argument("run")
    sp.add_argument("--grace", type=float, help="seconds before SIGKILL (default run.stop_grace_s)")
    sp = add("resume", cmd_resume, "continue a stopped/crashed/failed run from its last checkpoint")
    sp.add_argument("run")
    sp.add_argument("--as-new", action="store_true", help="a new run seeded from its checkpoint")
    sp = add("repair", cmd_repair, "rebuild a damaged status.json from the run's events")
    sp.add_argument("run")
    sp = add("compare", cmd_compare, "two runs; or groups/points (G, G:POINT): means, effects")
    sp.add_argument("a", help="run, group or G:POINT")
    sp.add_argument("b", help="run, group or G:POINT")
    sp.add_argument("--json", action="store_true")
    sp = add("gpus", cmd_gpus, "NVIDIA GPUs: utilisation, memory, temperature, power, processes")
    sp.add_argument("--json", action="store_true")
    sp = add("queue", cmd_queue, "work the run queue in the foreground until nothing is active")
    sp.add_argument("--once", action="store_true", help="one pass, then return")
    rl = sub.add_parser("runlog", help="RUNLOG.md tools").add_subparsers(dest="sub", required=True)
    add("sync", cmd_runlog_sync, "rebuild missing or stale RUNLOG.md entries", rl)
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
    except BrokenPipeError:  # `amc-tui ls | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
