"""The `amc-tui` argument tree. Each command names its handler as "module:function" (a module
of this package, or a dotted path), loaded by `main` when that command runs: `amc-tui ls` does
not import the app, pandas or h5py, and a new command is one entry here."""

from __future__ import annotations

import argparse
from typing import Any

WORKSPACE_HELP = "workspace folder (default $AMC_TUI_WORKSPACE or .)"


def accept_workspace_anywhere(parser: argparse.ArgumentParser) -> None:
    """`amc-tui ls -w WS` as well as `amc-tui -w WS ls`: every command takes the option too.
    Its default is SUPPRESS, so a value given before the command is kept when none follows."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                if not any(isinstance(a, argparse._SubParsersAction) for a in child._actions):
                    child.add_argument(
                        "--workspace", "-w", default=argparse.SUPPRESS, help=WORKSPACE_HELP
                    )
                accept_workspace_anywhere(child)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="amc-tui",
        description="Run manager for modulation-classification research on RadioML 2018.01A.",
    )
    p.add_argument("--workspace", "-w", help=WORKSPACE_HELP)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, handler: str, help: str, parent=sub) -> argparse.ArgumentParser:
        sp = parent.add_parser(name, help=help, description=help)
        sp.set_defaults(handler=handler)
        return sp

    cfg = sub.add_parser("config", help="check configs").add_subparsers(dest="sub", required=True)
    sp = add("check", "data:cmd_config_check", "validate a config and print it resolved", cfg)
    sp.add_argument("file")
    sp.add_argument("--set", action="append", default=[], metavar="TABLE.KEY=VALUE")
    sp.add_argument("--json", action="store_true")

    data = sub.add_parser("data", help="dataset tools").add_subparsers(dest="sub", required=True)
    sp = add("synth", "data:cmd_data_synth", "write a synthetic RadioML-layout HDF5 file", data)
    sp.add_argument("out")
    sp.add_argument("--classes", default="digital", help="digital | all | NAME,NAME,...")
    sp.add_argument("--frames-per-cell", type=int, default=64)
    sp.add_argument("--snr-min", type=int, default=-20)
    sp.add_argument("--snr-max", type=int, default=30)
    sp.add_argument("--seed", type=int, default=0)
    sp = add(
        "inspect", "data:cmd_data_inspect", "validate a RadioML HDF5 file and count its cells", data
    )
    sp.add_argument("file")
    sp.add_argument("--json", action="store_true")

    sp = add("bench", "system:cmd_bench", "training/inference/rendering throughput on this device")
    sp.add_argument("config", nargs="?")
    sp.add_argument("--json", action="store_true")

    add("tui", "system:cmd_tui", "open the Textual app (the default)")
    add_serve_parser(sub)
    add_group_parsers(sub)

    sp = add("run", "runs:cmd_run", "create and start (or queue) a run; follow it unless --detach")
    sp.add_argument("config")
    sp.add_argument("--set", action="append", default=[], metavar="TABLE.KEY=VALUE")
    sp.add_argument("--name", help="run name (default adjective-noun-N)")
    sp.add_argument("--gpus", help="GPU indices, e.g. 0,1 (default: run.gpus)")
    sp.add_argument("--detach", "-d", action="store_true", help="print name and id and return")
    sp = add("ls", "listing:cmd_ls", "list runs, newest first")
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
    sp = add("show", "listing:cmd_show", "a run's config, status, metrics, trajectory and exports")
    sp.add_argument("run", help="name, id, or a unique prefix of either")
    sp.add_argument("--json", action="store_true")
    sp = add("tail", "listing:cmd_tail", "print a run's events as lines, following until it ends")
    sp.add_argument("run")
    sp.add_argument("--no-follow", dest="follow", action="store_false", help="print and return")
    sp = add(
        "stop",
        "runs:cmd_stop",
        "stop a run gracefully (checkpoint), SIGKILL after the grace period",
    )
    sp.add_argument("run")
    sp.add_argument("--grace", type=float, help="seconds before SIGKILL (default run.stop_grace_s)")
    sp = add(
        "resume",
        "runs:cmd_resume",
        "continue a stopped/crashed/failed run from its last checkpoint",
    )
    sp.add_argument("run")
    sp.add_argument("--as-new", action="store_true", help="a new run seeded from its checkpoint")
    sp = add("repair", "runs:cmd_repair", "rebuild a damaged status.json from the run's events")
    sp.add_argument("run")
    sp = add(
        "compare", "compare:cmd_compare", "two runs; or groups/points (G, G:POINT): means, effects"
    )
    sp.add_argument("a", help="run, group or G:POINT")
    sp.add_argument("b", help="run, group or G:POINT")
    sp.add_argument("--json", action="store_true")
    sp = add(
        "explain",
        "explain:cmd_explain",
        "attribution maps of both heads per (modulation, SNR band), with a sanity check",
    )
    sp.add_argument("run", help="name, id, or a unique prefix of either")
    sp.add_argument("--split", default="test", choices=("test", "val"))
    sp.add_argument("--method", default="ig", choices=("ig", "occlusion", "input"),
                    help="integrated gradients, occlusion, or the input itself (a control)")  # fmt: skip
    sp.add_argument("--cells", help="MOD,MOD[@BAND,BAND] or @BAND (bands: low, mid, high)")
    sp.add_argument("--frames", type=int, default=16, help="frames per cell (default 16)")
    sp.add_argument("--force", action="store_true", help="recompute cells already done")
    sp.add_argument("--device", help="instead of the run's run.device, e.g. cpu or cuda:1")
    sp.add_argument("--json", action="store_true")
    sp = add(
        "gpus", "system:cmd_gpus", "NVIDIA GPUs: utilisation, memory, temperature, power, processes"
    )
    sp.add_argument("--json", action="store_true")
    sp = add(
        "queue", "runs:cmd_queue", "work the run queue in the foreground until nothing is active"
    )
    sp.add_argument("--once", action="store_true", help="one pass, then return")
    nt = sub.add_parser("notify", help="notifications (amc-tui.toml [notify])")
    nt = nt.add_subparsers(dest="sub", required=True)
    add("test", "notify:cmd_notify_test", "send one message to every URL; print each answer", nt)
    sp = add(
        "mirror", "mirror:cmd_mirror", "write a run's (or group's) history to TensorBoard or W&B"
    )
    sp.add_argument("target", metavar="RUN|GROUP", help="run name, id or prefix; or a sweep group")
    sp.add_argument("--to", required=True, choices=("tensorboard", "wandb"))
    sp.add_argument(
        "--wandb-mode", choices=("offline", "online"),
        help="default: the run's mirror.wandb, offline when that is off",
    )  # fmt: skip
    rl = sub.add_parser("runlog", help="RUNLOG.md tools").add_subparsers(dest="sub", required=True)
    add("sync", "runs:cmd_runlog_sync", "rebuild missing or stale RUNLOG.md entries", rl)
    accept_workspace_anywhere(p)
    return p


def add_group_parsers(sub: argparse._SubParsersAction) -> None:
    """Register `sweep`, `groups`, `group show|stop|resume` and `plot`."""

    def add(name: str, handler: str, help: str, parent: Any = sub) -> argparse.ArgumentParser:
        sp = parent.add_parser(name, help=help, description=help)
        sp.set_defaults(handler=handler)
        return sp

    sp = add(
        "sweep", "groups:cmd_sweep", "queue a sweep's runs as a group; follow it unless --detach"
    )
    sp.add_argument("file", help="a sweep file (configs/sweeps/*.toml)")
    sp.add_argument("--name", help="group name (default: the sweep's name, made unique)")
    sp.add_argument("--dry-run", action="store_true", help="print the points; create nothing")
    sp.add_argument("--detach", "-d", action="store_true", help="print name and id and return")
    sp.add_argument("--allow-many", action="store_true", help="allow more than 200 runs")
    sp = add("groups", "groups:cmd_groups", "list sweep groups, newest first")
    sp.add_argument("--json", action="store_true")
    grp = sub.add_parser("group", help="one sweep group").add_subparsers(dest="sub", required=True)
    sp = add(
        "show", "groups:cmd_group_show", "a group's points: n, mean, std, CI, ranking, effects", grp
    )
    sp.add_argument("group", help="group name, id or unique prefix")
    sp.add_argument("--json", action="store_true")
    sp = add(
        "stop", "groups:cmd_group_stop", "stop every active member; Optuna asks no more trials", grp
    )
    sp.add_argument("group")
    sp.add_argument("--grace", type=float, help="seconds before SIGKILL (default run.stop_grace_s)")
    sp = add(
        "resume", "groups:cmd_group_resume", "restart failed/stopped members; continue a study", grp
    )
    sp.add_argument("group")
    sp = add("plot", "plot:cmd_plot", "figures of runs, groups (each point) and points (G:POINT)")
    sp.add_argument("targets", nargs="+", metavar="RUN|GROUP|G:POINT")
    sp.add_argument("--out", required=True, help="folder for the figures")
    sp.add_argument("--format", default="png", help="png,svg,pdf (comma-separated)")
    sp.add_argument("--split", default="auto", choices=("auto", "test", "val"))
    sp.add_argument(
        "--figures", help="snr,snr_mod,heatmap,confusion,curves,knee,bands (default: all); saliency"
    )


def add_serve_parser(sub: argparse._SubParsersAction) -> None:
    """Register `amc-tui serve` on the CLI's subcommand table."""
    help = "serve the app to a browser (one app process per visitor, token-protected)"
    sp = sub.add_parser("serve", help=help, description=help)
    sp.set_defaults(handler="amc_tui.serve.command:cmd_serve")
    sp.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback)")
    sp.add_argument("--port", type=int, default=8000, help="TCP port (0: any free one)")
    sp.add_argument("--token-file", metavar="FILE", help="read the token from FILE (mode 600)")
    sp.add_argument(
        "--allow-remote", action="store_true", help="allow a non-loopback --host (token required)"
    )
    sp.add_argument(
        "--no-token",
        action="store_true",
        help="no token (loopback only; any local user can connect)",
    )
