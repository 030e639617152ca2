"""Reading runs: `ls`, `show`, `tail`, and the one-line cause of a failed, crashed or damaged
run that `run` prints too. Loads nothing that creating or starting a run needs (h5py, pandas),
so `amc-tui ls` starts fast. Every command first makes sure a detached queue worker exists
while runs want one (`keep_queue_going`) and says so on stderr when it had to start one.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from pathlib import Path

from amc_tui import contract, report
from amc_tui.cli.output import print_json
from amc_tui.errors import UserError
from amc_tui.launch.keeper import keep_queue_going as keep
from amc_tui.launch.supervise import with_trainer
from amc_tui.mirror.state import mirror_lines, mirror_state
from amc_tui.notify import ledger
from amc_tui.run import health, index, tables
from amc_tui.run.analysis import latest_export, list_exports, read_summary, trajectory
from amc_tui.run.refs import resolve_run
from amc_tui.run.rundir import (
    FINAL_STATES,
    STATES,
    EventTailer,
    error_line,
    foreign_dirs,
    read_config_dict,
    read_events,
    read_meta,
    read_run,
    read_status,
)
from amc_tui.runlog.sync import runlog_path_for
from amc_tui.sweeps.group import group_filter
from amc_tui.workspace import Workspace


def keep_queue_going(ws: Workspace, runs: list | None = None) -> None:
    """Start a queue worker if runs want one and none runs; one line on stderr if so."""

    note = keep(ws, runs)
    if note:
        print(f"amc-tui: {note}", file=sys.stderr, flush=True)


def cause(info) -> str | None:  # noqa: ANN001
    """Why a run is damaged, failed or crashed, in one line: the recorded error's meaningful
    line (a traceback's exception line), else for a crash the trainer that is gone."""

    if info.state == "unknown":
        return f"{info.error}; amc-tui repair {info.name} rebuilds it"
    line = error_line(info.error)
    if line:
        return line
    if info.state == "crashed":
        return (
            f"trainer process {info.pid or '?'} is gone, last heartbeat "
            f"{report.clock(info.heartbeat_at or info.started_at)}"
        )
    return None


def best_text(info) -> str:  # noqa: ANN001
    """The best record, never an epoch whose best.pt is gone (nothing could load it)."""
    if info.best and not info.rundir.best_ckpt.is_file():
        value = report.metric(str(info.best.get("metric", "")), info.best.get("value"))
        return f"{value} (best.pt missing)"
    return report.best(info.best)


def runlog_line(info) -> str:  # noqa: ANN001
    if info.runlog_error:
        return f"  RUNLOG:        not updated ({info.runlog_error}); `amc-tui runlog sync` retries"
    return f"  RUNLOG:        {runlog_path_for(info.dir)}"


# --------------------------------------------------------------------------- ls, show, tail


def _live(ws: Workspace, runs: list) -> list:
    """A just-started trainer's pid from the launcher's record, before its first write."""
    if not any(r.stored_state == "running" and not r.pid for r in runs):
        return runs

    return [with_trainer(ws, r) for r in runs]


def _foreign_rows(ws: Workspace) -> list:
    return sorted(foreign_dirs(ws), key=lambda p: p.name)


def _ls_tag() -> int:
    """The fingerprint of the code that makes an `ls` line (this module, report, health's
    marks, contract's number rules): lines the run index keeps under another are made again."""
    mods = (sys.modules[__name__], report, health, contract)
    blob = b"".join(Path(m.__file__).read_bytes() for m in mods)
    return zlib.crc32(blob) & 0x7FFFFFFF


def _line(r, now: float) -> tuple:  # noqa: ANN001
    """A run's `ls` line: sort key, state, the time STARTED shows (formatted in the local zone
    at print time, so a kept line does not depend on the zone), the other cells, the GPUS,
    HEALTH and JOB cells and whether the run has each. Plain values: the run index keeps the
    line of a settled run (`index.list_memos`), whose elapsed time no longer depends on `now`."""
    val = (r.last_epoch or {}).get("val") or {}
    cells = [
        r.name, r.id, r.state, r.arch or "-", f"{r.epoch}/{r.epochs or '?'}",
        report.pct(val.get("acc_combined")), report.best(r.best), report.duration(r.elapsed_s(now)),
    ]  # fmt: skip
    extra = [
        ",".join(map(str, r.gpus)) or "-",
        health.mark(r.health) or "ok",
        r.slurm_job_id or "-",
    ]
    has = [bool(r.gpus), bool(r.health), bool(r.slurm_job_id)]
    return ((r.created_at or r.started_at or 0.0, r.name), r.state, r.started_at or r.created_at,
            cells, extra, has)  # fmt: skip


def _ls_lines(args: argparse.Namespace, ws: Workspace, now: float) -> list[tuple]:
    """(line, RunInfo or None) of the runs `ls` lists, newest first: a settled run's line
    from the run index when its files did not change (no RunInfo), the others made now."""
    items = index.list_memos(ws, _ls_tag(), lambda info: _line(info, now))
    keep_queue_going(ws, [i for i, _ in items if i is not None])  # memos never want a worker
    if args.state:
        items = [(i, m) for i, m in items if (i.state if i is not None else m[1]) == args.state]
    live = iter(_live(ws, [i for i, _ in items if i is not None]))
    lines = []
    for info, memo in items:
        if info is not None:
            info = next(live)
            memo = _line(info, now)
        lines.append((memo, info))
    lines.sort(key=lambda x: x[0][0], reverse=True)  # index.list_runs' order
    return lines


def cmd_ls(args: argparse.Namespace, ws: Workspace) -> int:
    allowed = (*STATES, "foreign")
    if args.state and args.state not in allowed:
        raise UserError(f"--state must be one of {', '.join(allowed)}, got {args.state!r}")
    now = time.time()  # one clock for every row's elapsed and ETA
    if args.json or getattr(args, "group", None):  # every run's RunInfo
        every = index.list_runs(ws, extras=False)  # the run index: unchanged runs not re-read
        keep_queue_going(ws, every)
        runs = _live(ws, [r for r in every if not args.state or r.state == args.state])
        if getattr(args, "group", None):
            runs = group_filter(ws, args.group, runs)
        lines = [(_line(r, now), r) for r in runs] if not args.json else []
    else:
        lines = _ls_lines(args, ws, now)
    foreign = _foreign_rows(ws) if args.all or args.state == "foreign" else []
    if args.json:  # one row per line: the C encoder (an indent would take the slow path)
        rows = [json.dumps(r.to_row(now), default=str) for r in runs]
        rows += [json.dumps({"id": None, "name": p.name, "state": "foreign", "dir": str(p)})
                 for p in foreign]  # fmt: skip
        sys.stdout.write("[\n" + ",\n".join(rows) + "\n]\n" if rows else "[]\n")
        return 0
    if not lines and not foreign:
        print(f"no runs in {ws.runs}" + (f" with state {args.state}" if args.state else ""))
        return 0
    clock = report.clock
    rows = [[*cells[:7], clock(t), cells[7]] for (_, _, t, cells, _, _), _ in lines]
    heads = ["NAME", "ID", "STATE", "ARCH", "EPOCH", "VAL COMB", "BEST", "STARTED", "ELAPSED"]
    # the GPUs each run holds (several for a DDP run), the health rules active now
    # (run/health.py), runs on a cluster: their Slurm jobs
    for k, head in ((0, "GPUS"), (1, "HEALTH"), (2, "JOB")):
        if any(line[5][k] for line, _ in lines):
            at = 3 if head == "GPUS" else heads.index("STATE") + 1
            heads.insert(at, head)
            for row, (line, _) in zip(rows, lines, strict=True):
                row.insert(at, line[4][k])
    rows += [[p.name, "-", "foreign", *["-"] * (len(heads) - 3)] for p in foreign]
    print(report.table(rows, heads))
    for _, r in lines:
        if r is not None and r.state == "unknown":
            print(f"  {r.name}: {cause(r)}")
    if foreign:
        print(f"  foreign: folders in {ws.runs} that are not runs (no config.toml + meta.json); "
              "amc-tui never writes to them")  # fmt: skip
    return 0


def _show_data(info, now: float) -> dict:  # noqa: ANN001
    config = read_config_dict(info.rundir)
    events = read_events(info.rundir.events)
    # the start event tells an empty split (its metrics are no data, not 0)
    traj = trajectory([e for e in events if e.get("kind") in ("start", "epoch")])
    return {
        "run": info.to_row(now),
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
        "health": [e for e in events if e.get("kind") == "health"],
        "mirror": mirror_state(info.rundir, events),
    }


def health_lines(history: list[dict], active: list[dict]) -> list[str]:
    """`show`'s health: each rule that fired, the epoch and its numbers, and whether it holds
    now (nothing when no rule ever fired)."""
    if not history:
        return []
    now = {h["rule"] for h in active}
    lines = []
    for ev in history:
        if not ev.get("active", True):
            continue
        holds = "" if ev.get("rule") in now else " [cleared since]"
        lines.append(
            f"  health: {ev.get('message') or ev.get('rule')} (epoch {ev.get('epoch')}){holds}"
        )
    return lines


def _tables(info, name: str) -> tuple[tables.Tables, str]:  # noqa: ANN001
    """The latest export's tables and what it holds (`test, final` / `val, epoch 3`)."""
    summary = read_summary(info.rundir.export / name)
    final = name == "final"
    split = summary.get("split") or ("test" if final else "val")
    which = "final" if final else f"epoch {summary.get('epoch', name[6:].lstrip('0'))}"
    return tables.export_tables(info.rundir.export / name), f"{split}, {which}"


def cmd_show(args: argparse.Namespace, ws: Workspace) -> int:
    info = _live(ws, [resolve_run(ws, args.run)])[0]
    keep_queue_going(ws)
    now = time.time()  # one clock for elapsed and ETA, as in `ls` and the app
    data = _show_data(info, now)
    name = latest_export(info.dir)
    got = _tables(info, name) if name else None
    if args.json:
        data["tables"] = tables.as_dict(*got) if got else None
        print_json(data)
        return 0
    cfg, run = data["config"], data["run"]

    def c(table: str, key: str) -> object:
        return (cfg.get(table) or {}).get(key, "?")

    print(
        f"{info.name} ({info.id})  {info.state}  epoch {info.epoch}/{info.epochs}  best {best_text(info)}"
    )
    print(
        f"  started {report.clock(info.started_at)}  ended {report.clock(info.ended_at)}  "
        f"elapsed {report.duration(run['elapsed_s'])}"
        + (f"  ETA {report.duration(run['eta_s'])}" if run["eta_s"] is not None else "")
    )
    print(
        f"  device {info.device or '-'}{' GPU ' + ','.join(map(str, info.gpus)) if info.gpus else ''}"
        f"  pid {info.pid or '-'}  restarts {info.restarts}"
    )
    if info.state == "queued" and info.waiting:
        print(f"  queued: {info.waiting}")
    if info.slurm_job_id:
        st = read_status(info.rundir)
        ended = f"ended {st['slurm_state']}" if st.get("slurm_state") else "not ended"
        print(f"  slurm job {info.slurm_job_id} ({ended})  log {st.get('slurm_log') or '-'}")
    print(
        f"  arch {c('model', 'arch')}  batch {c('train', 'batch_size')}  lr {c('train', 'lr')}  "
        f"epochs {c('train', 'epochs')}  image {c('image', 'size')} px {c('image', 'normalize')}  "
        f"loss {c('loss', 'weighting')}  data {c('data', 'path')}"
    )
    if info.phase or info.notes or info.tags:
        print(
            f"  phase {info.phase or '-'}  tags {', '.join(info.tags) or '-'}  notes {info.notes or '-'}"
        )
    why = cause(info)
    if why:
        print("  error: " + why)
    if info.stop_reason and info.state == "stopped":
        print(f"  stopped by {info.stop_reason} (run.stop_on)")
    for line in health_lines(data["health"], info.health):
        print(line)
    if info.runlog_error:
        print(runlog_line(info))
    if data["trajectory"]:
        best_epoch = (info.best or {}).get("epoch") if "best" in data["checkpoints"] else None
        print()
        print(report.trajectory_table(data["trajectory"], best_epoch))
    if got:
        print()
        print("\n".join(tables.text_lines(*got)))
    print()
    for name, path in data["exports"].items():
        print(f"  export {name}: {path}")
    for name, path in data["checkpoints"].items():
        print(f"  checkpoint {name}: {path}")
    print(f"  log: {data['log']}")
    for line in mirror_lines(data["mirror"]):
        print(line)
    for rec in ledger.records(ledger.ledger_dir(ws), f"{info.id}."):  # what was notified
        outcome = rec.get("state")
        if outcome == "failed" and rec.get("error"):
            outcome = f"failed: {rec['error']}"
        print(f"  notified {rec.get('event')} at {report.clock(rec.get('claimed_at'))}: {outcome}")
    return 0


def cmd_tail(args: argparse.Namespace, ws: Workspace) -> int:
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
