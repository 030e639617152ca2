"""The `amc-tui` command surface: parse arguments, call the parts, set exit codes.

Exit codes: 0 ok, 2 bad input (one line on stderr), 130 interrupted; `run` returns the
trainer's. Nothing here imports torch/timm: the trainer and the benchmark run in subprocesses.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from amc_tui import contract, report
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


# --------------------------------------------------------------------------- run


class _Progress:
    """Prints a run's events: epoch lines always; on a TTY a live step line (throughput,
    ETA) rewritten in place; otherwise a plain progress line at most every 10 s."""

    def __init__(self, epochs: int | None, batch_size: int | None, tty: bool) -> None:
        self.epochs, self.batch_size, self.tty = epochs, batch_size, tty
        self.live = False
        self.last_plain = 0.0
        self.epoch_time: float | None = None
        self.batches: int | None = None

    def _clear(self) -> None:
        if self.live:
            sys.stdout.write("\r\x1b[K")
            self.live = False

    def line(self, text: str) -> None:
        self._clear()
        print(text, flush=True)

    def event(self, ev: dict) -> None:
        import time

        kind = ev.get("kind")
        shown = self.epochs or "?"
        if kind == "step":
            eta = report.step_eta(ev, self.epochs, self.epoch_time, self.batch_size, self.batches)
            text = report.progress_line(ev, shown, eta)
            if self.tty:
                sys.stdout.write("\r\x1b[K" + text)
                sys.stdout.flush()
                self.live = True
            elif time.time() - self.last_plain >= 10:
                self.last_plain = time.time()
                print(text, flush=True)
            return
        if kind == "start" and isinstance(ev.get("steps_per_epoch"), int):
            self.batches = ev["steps_per_epoch"]
        if kind == "epoch" and contract.is_number(ev.get("epoch_time_s")):
            self.epoch_time = float(ev["epoch_time_s"])
        if kind in ("epoch", "start", "restart", "end"):
            self.line(report.event_body(ev, shown))

    def close(self) -> None:
        self._clear()


def _exit_code(info) -> int:  # noqa: ANN001
    code = info.exit_code
    if isinstance(code, int):
        return 128 - code if code < 0 else code
    return 0 if info.state in ("completed", "stopped") else 1


def _summary(info, ws: Workspace) -> str:  # noqa: ANN001
    from amc_tui.runlog import runlog_path_for

    lines = [
        f"{info.name} ({info.id}): {info.state}, epoch {info.epoch}/{info.epochs}, best {report.best(info.best)}"
    ]
    ev = info.last_epoch
    if ev:
        v, t = ev.get("val") or {}, ev.get("train") or {}
        lines.append(
            f"  final val: comb {report.pct(v.get('acc_combined'))} mod {report.pct(v.get('acc_mod'))} "
            f"snr {report.pct(v.get('acc_snr'))} loss {report.num(v.get('loss'))}  | train comb "
            f"{report.pct(t.get('acc_combined'))} loss {report.num(t.get('loss'))}"
        )
    from amc_tui.analysis import read_summary

    final = read_summary(info.rundir.final_export)
    if isinstance(final.get("test"), dict):
        tm = final["test"]
        lines.append(
            f"  test (best checkpoint): comb {report.pct(tm.get('acc_combined'))} mod {report.pct(tm.get('acc_mod'))} "
            f"snr {report.pct(tm.get('acc_snr'))}"
        )
    if info.error and info.state in ("failed", "crashed"):
        lines.append("  error: " + info.error.strip().splitlines()[-1])
    lines.append(f"  run directory: {info.dir}")
    lines.append(f"  RUNLOG:        {runlog_path_for(info.dir)}")
    return "\n".join(lines)


def _follow(ws: Workspace, info, tty: bool) -> int:  # noqa: ANN001
    """Print the run's events until it ends; Ctrl-C stops it gracefully (exit 130)."""
    import time

    from amc_tui.launch import ensure_worker, stop_run, work_queue
    from amc_tui.runs import FINAL_STATES, EventTailer, dig, read_config_dict, read_run

    # The launcher validated the config; the progress line needs only two of its values.
    raw = read_config_dict(info.rundir)
    epochs = read_run(info.dir, with_last_epoch=False).epochs or dig(raw, "train.epochs")
    batch_size = dig(raw, "train.batch_size")
    progress = _Progress(
        epochs if isinstance(epochs, int) else None,
        batch_size if isinstance(batch_size, int) else None,
        tty,
    )
    tailer = EventTailer(info.rundir.events)
    last_queue = 0.0
    try:
        while True:
            for ev in tailer.poll():
                progress.event(ev)
            now = read_run(info.dir, with_last_epoch=False)
            if now.state in ("queued", "crashed") and time.time() - last_queue >= 1.0:
                last_queue = time.time()
                work_queue(ws)  # start it when its turn comes; record/restart a crash
                continue
            if now.state in FINAL_STATES and now.stored_state in FINAL_STATES:
                for ev in tailer.poll():
                    progress.event(ev)
                break
            time.sleep(0.2)
    except KeyboardInterrupt:
        progress.close()
        print(
            f"stopping {info.name}: waiting for the checkpoint (Ctrl-C again to kill)",
            file=sys.stderr,
            flush=True,
        )
        try:
            stop_run(ws, info.dir.name)
        except KeyboardInterrupt:
            stop_run(ws, info.dir.name, grace_s=0)
        print(_summary(read_run(info.dir), ws))
        return 130
    finally:
        progress.close()
    final = read_run(info.dir)
    print(_summary(final, ws))
    ensure_worker(ws)  # other queued runs go on without us
    return _exit_code(final)


def cmd_run(args: argparse.Namespace, ws: Workspace) -> int:
    from amc_tui.launch import launch

    gpus = [int(g) for g in args.gpus.split(",") if g.strip()] if args.gpus else None
    info = launch(ws, ws.resolve(args.config), args.set, args.name, gpus=gpus, detach=args.detach)
    if args.detach:
        print(f"{info.name} {info.id} {info.state}")
        return 0
    where = "queued: waiting for a free device" if info.state == "queued" else f"pid {info.pid}"
    print(f"run {info.name} ({info.id}) {where}; directory {info.dir}", flush=True)
    return _follow(ws, info, sys.stdout.isatty())


# --------------------------------------------------------------------------- ls, show, tail


def cmd_ls(args: argparse.Namespace, ws: Workspace) -> int:
    from amc_tui.runs import STATES, list_runs

    if args.state and args.state not in STATES:
        raise UserError(f"--state must be one of {', '.join(STATES)}, got {args.state!r}")
    runs = list_runs(ws, state=args.state)
    if args.json:  # one row per line: the C encoder (an indent would take the slow path)
        rows = [json.dumps(r.to_row(), default=str) for r in runs]
        sys.stdout.write("[\n" + ",\n".join(rows) + "\n]\n" if rows else "[]\n")
        return 0
    if not runs:
        print(f"no runs in {ws.runs}" + (f" with state {args.state}" if args.state else ""))
        return 0
    rows = []
    for r in runs:
        val = (r.last_epoch or {}).get("val") or {}
        rows.append([
            r.name, r.id, r.state, r.arch or "-", f"{r.epoch}/{r.epochs or '?'}",
            report.pct(val.get("acc_combined")), report.best(r.best), report.clock(r.started_at or r.created_at),
            report.duration(r.elapsed_s()),
        ])  # fmt: skip
    print(
        report.table(
            rows, ["NAME", "ID", "STATE", "ARCH", "EPOCH", "VAL COMB", "BEST", "STARTED", "ELAPSED"]
        )
    )
    return 0


def _show_data(info) -> dict:  # noqa: ANN001
    from amc_tui.analysis import list_exports, trajectory
    from amc_tui.runs import read_config_dict, read_events, read_meta

    config = read_config_dict(info.rundir)
    # the start event tells an empty split (its metrics are no data, not 0)
    traj = trajectory(
        [e for e in read_events(info.rundir.events) if e.get("kind") in ("start", "epoch")]
    )
    return {
        "run": info.to_row(),
        "meta": read_meta(info.rundir),
        "config": config,
        "last_epoch": info.last_epoch,
        "trajectory": traj,
        "exports": {n: str(info.rundir.export / n) for n in list_exports(info.dir)},
        "checkpoints": {
            k: str(p)
            for k, p in (("last", info.rundir.last_ckpt), ("best", info.rundir.best_ckpt))
            if p.is_file()
        },
        "log": str(info.rundir.log),
    }


def cmd_show(args: argparse.Namespace, ws: Workspace) -> int:
    from amc_tui.runs import resolve_run

    info = resolve_run(ws, args.run)
    data = _show_data(info)
    if args.json:
        _print_json(data)
        return 0
    cfg = data["config"]

    def c(table: str, key: str) -> object:
        return (cfg.get(table) or {}).get(key, "?")

    print(
        f"{info.name} ({info.id})  {info.state}  epoch {info.epoch}/{info.epochs}  best {report.best(info.best)}"
    )
    print(
        f"  started {report.clock(info.started_at)}  ended {report.clock(info.ended_at)}  elapsed {report.duration(info.elapsed_s())}"
        + (f"  ETA {report.duration(info.eta_s())}" if info.eta_s() else "")
    )
    print(
        f"  device {info.device or '-'}{' GPU ' + ','.join(map(str, info.gpus)) if info.gpus else ''}"
        f"  pid {info.pid or '-'}  restarts {info.restarts}"
    )
    print(
        f"  arch {c('model', 'arch')}  batch {c('train', 'batch_size')}  lr {c('train', 'lr')}  "
        f"epochs {c('train', 'epochs')}  image {c('image', 'size')} px {c('image', 'normalize')}  "
        f"loss {c('loss', 'weighting')}  data {c('data', 'path')}"
    )
    if info.phase or info.notes or info.tags:
        print(
            f"  phase {info.phase or '-'}  tags {', '.join(info.tags) or '-'}  notes {info.notes or '-'}"
        )
    if info.error:
        print("  error: " + info.error.strip().splitlines()[-1])
    if data["trajectory"]:
        print()
        print(report.trajectory_table(data["trajectory"], (info.best or {}).get("epoch")))
    print()
    for name, path in data["exports"].items():
        print(f"  export {name}: {path}")
    for name, path in data["checkpoints"].items():
        print(f"  checkpoint {name}: {path}")
    print(f"  log: {data['log']}")
    return 0


def cmd_tail(args: argparse.Namespace, ws: Workspace) -> int:
    import time

    from amc_tui.runs import FINAL_STATES, EventTailer, read_run, resolve_run

    info = resolve_run(ws, args.run)
    tailer = EventTailer(info.rundir.events)
    epochs: int | str = info.epochs or "?"
    while True:  # Ctrl-C (130) and a closed pipe (0) are handled by main()
        for ev in tailer.poll():
            print(report.event_line(ev, epochs), flush=True)
        if read_run(info.dir, with_last_epoch=False).state in FINAL_STATES:
            for ev in tailer.poll():
                print(report.event_line(ev, epochs), flush=True)
            return 0
        if not args.follow:
            return 0
        time.sleep(0.25)


# --------------------------------------------------------------------------- stop, resume, queue


def cmd_stop(args: argparse.Namespace, ws: Workspace) -> int:
    from amc_tui.launch import stop_run
    from amc_tui.runs import resolve_run

    info = resolve_run(ws, args.run)
    if info.state not in ("running", "queued"):
        print(f"{info.name} is {info.state}: nothing to stop")
        return 0
    if info.state == "running":
        print(f"stopping {info.name} (pid {info.pid}): waiting for its checkpoint", flush=True)
    out = stop_run(ws, info, grace_s=args.grace)
    ckpt = out.rundir.last_ckpt
    print(f"{out.name} {out.state}" + (f"; checkpoint {ckpt}" if ckpt.is_file() else ""))
    return 0


def cmd_resume(args: argparse.Namespace, ws: Workspace) -> int:
    from amc_tui.launch import resume_run
    from amc_tui.runs import resolve_run

    info = resolve_run(ws, args.run)
    out = resume_run(ws, info, as_new=args.as_new)
    how = (
        f"as new run {out.name} ({out.id}) from {info.name}"
        if args.as_new
        else f"{out.name} ({out.id})"
    )
    print(
        f"resumed {how}: {out.state}"
        + (f", pid {out.pid}" if out.pid and out.state == "running" else "")
    )
    return 0


def cmd_queue(args: argparse.Namespace, ws: Workspace) -> int:
    from amc_tui.launch import run_worker, worker_alive
    from amc_tui.runs import list_runs

    if worker_alive(ws):
        print("a queue worker is already running for this workspace")
        return 0

    def started(info) -> None:  # noqa: ANN001
        print(
            f"started {info.name} ({info.id}) pid {info.pid}"
            + (f" GPU {info.gpus}" if info.gpus else ""),
            flush=True,
        )

    run_worker(ws, once=args.once, on_start=started)  # Ctrl-C / closed pipe: main() handles
    left = [r for r in list_runs(ws, with_last_epoch=False) if r.state in ("queued", "running")]
    print("queue empty" if not left else f"{len(left)} run(s) still active")
    return 0


# --------------------------------------------------------------------------- compare, gpus, runlog


def cmd_compare(args: argparse.Namespace, ws: Workspace) -> int:
    from amc_tui.analysis import compare_runs
    from amc_tui.runs import resolve_run

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


def cmd_runlog_sync(args: argparse.Namespace, ws: Workspace) -> int:
    from amc_tui.runlog import sync_all

    changed = sync_all(ws)
    if changed:
        print(
            f"updated {len(changed)} entr{'y' if len(changed) == 1 else 'ies'} in {ws.runlog}: {', '.join(changed)}"
        )
    else:
        print(f"{ws.runlog} is current")
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

    sp = add("run", cmd_run, "create and start (or queue) a run; follow it unless --detach")
    sp.add_argument("config")
    sp.add_argument("--set", action="append", default=[], metavar="TABLE.KEY=VALUE")
    sp.add_argument("--name", help="run name (default adjective-noun-N)")
    sp.add_argument("--gpus", help="GPU indices, e.g. 0,1 (default: run.gpus)")
    sp.add_argument("--detach", "-d", action="store_true", help="print name and id and return")
    sp = add("ls", cmd_ls, "list runs, newest first")
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--state", help="queued | running | completed | failed | stopped | crashed")
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
    sp = add("compare", cmd_compare, "config differences, metrics and cells of two runs")
    sp.add_argument("a")
    sp.add_argument("b")
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
