"""The commands that change runs: run (create, start or queue, follow), stop, resume, queue,
repair, runlog sync. Each first makes sure a detached queue worker exists while runs want one
(`listing.keep_queue_going`): a queue never waits on a worker that died. Damaged runs
(`unknown`) and foreign folders are never acted on. Reading runs is `listing.py`."""

from __future__ import annotations

import argparse
import sys
import time

from amc_tui import contract, report
from amc_tui.cli.listing import best_text, cause, keep_queue_going, runlog_line
from amc_tui.launch.keeper import ensure_worker, worker_alive, workers_disabled
from amc_tui.launch.queue import launch, resume_run, run_worker, work_queue
from amc_tui.launch.stop import stop_run
from amc_tui.launch.supervise import queue_lock, read_live, runlog_sync
from amc_tui.notify.observe import observe_run
from amc_tui.run import runlock
from amc_tui.run.analysis import read_summary
from amc_tui.run.refs import resolve_run
from amc_tui.run.repair import repair
from amc_tui.run.rundir import (
    ACTIVE_STATES,
    FINAL_STATES,
    EventTailer,
    dig,
    list_runs,
    read_config_dict,
    read_run,
    write_status,
)
from amc_tui.runlog.sync import not_written_reason, sync_all
from amc_tui.workspace import Workspace

# --------------------------------------------------------------------------- run


class _Progress:
    """Prints a run's events: epoch lines always; on a TTY a live step line (throughput,
    ETA) rewritten in place; otherwise a plain progress line at most every 10 s."""

    def __init__(self, epochs: int | None, batch_size: int | None, tty: bool) -> None:
        self.epochs, self.batch_size, self.tty = epochs, batch_size, tty
        self.live = False
        self.last_plain = 0.0
        self.clock = contract.EpochClock()  # the ETA's epoch time (partial epochs skipped)
        self.batches: int | None = None

    def _clear(self) -> None:
        if self.live:
            sys.stdout.write("\r\x1b[K")
            self.live = False

    def line(self, text: str) -> None:
        self._clear()
        print(text, flush=True)

    def event(self, ev: dict) -> None:
        kind = ev.get("kind")
        shown = self.epochs or "?"
        if kind == "step":
            eta = report.step_eta(ev, self.epochs, self.clock, self.batch_size, self.batches)
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
        self.clock.feed(ev)
        if kind in ("epoch", "start", "restart", "health", "end", "submitted"):
            self.line(report.event_body(ev, shown))

    def close(self) -> None:
        self._clear()


def _exit_code(info) -> int:  # noqa: ANN001
    code = info.exit_code
    if isinstance(code, int):
        return 128 - code if code < 0 else code
    return 0 if info.state in ("completed", "stopped") else 1


def _summary(info, ws: Workspace) -> str:  # noqa: ANN001
    lines = [
        f"{info.name} ({info.id}): {info.state}, epoch {info.epoch}/{info.epochs}, best "
        f"{best_text(info)}, elapsed {report.duration(info.elapsed_s())}"
    ]
    ev = info.last_epoch
    if ev:
        v, t = ev.get("val") or {}, ev.get("train") or {}
        lines.append(
            f"  final val: comb {report.pct(v.get('acc_combined'))} mod {report.pct(v.get('acc_mod'))} "
            f"snr {report.pct(v.get('acc_snr'))} loss {report.num(v.get('loss'))}  | train comb "
            f"{report.pct(t.get('acc_combined'))} loss {report.num(t.get('loss'))}"
        )

    final = read_summary(info.rundir.final_export)
    if isinstance(final.get("test"), dict):
        tm = final["test"]
        lines.append(
            f"  test (best checkpoint): comb {report.pct(tm.get('acc_combined'))} mod {report.pct(tm.get('acc_mod'))} "
            f"snr {report.pct(tm.get('acc_snr'))}"
        )
    why = cause(info) if info.state in ("failed", "crashed", "unknown") else None
    if why:
        lines.append("  error: " + why)
    lines.append(f"  run directory: {info.dir}")
    lines.append(runlog_line(info))
    return "\n".join(lines)


def _follow(ws: Workspace, info, tty: bool) -> int:  # noqa: ANN001
    """Print the run's events until it ends; Ctrl-C stops it gracefully (exit 130). The
    detached worker starts the run when its turn comes: this process only follows, so a
    hang-up (SIGHUP, a dropped SSH session) changes nothing but the printing. With workers
    off (AMC_TUI_NO_WORKER=1) it works the queue itself."""

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
    works = workers_disabled()
    said = None  # why it waits, as last printed
    last_queue = 0.0
    try:
        while True:
            for ev in tailer.poll():
                progress.event(ev)
            now = read_run(info.dir, with_last_epoch=False)
            observe_run(info.dir)  # notifications: whoever sees an event first sends it
            if now.state == "queued" and now.waiting and now.waiting != said:
                said = now.waiting
                progress.line(f"queued: {said}")
            waiting = now.state in ("queued", "crashed", "submitted") or (
                bool(now.slurm_job_id) and not now.slurm_settled  # its job's end: polled
            )
            if waiting and time.time() - last_queue >= (1.0 if works else 5.0):
                last_queue = time.time()
                if works:
                    work_queue(ws)  # start it when its turn comes; record/restart a crash
                    continue
                keep_queue_going(ws)  # the worker died meanwhile: start another
            settled = not now.slurm_job_id or now.slurm_settled  # a Slurm job's end recorded
            if now.state in FINAL_STATES and now.stored_state in FINAL_STATES and settled:
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
    keep_queue_going(ws)
    gpus = [int(g) for g in args.gpus.split(",") if g.strip()] if args.gpus else None
    # the detached worker is left in charge in both cases: a followed run survives a hang-up
    info = launch(ws, ws.resolve(args.config), args.set, args.name, gpus=gpus, detach=True)
    if args.detach:
        print(f"{info.name} {info.id} {info.state}")
        return 0
    where = {
        "queued": "queued: waiting for a free device",
        "submitted": f"submitted to Slurm as job {info.slurm_job_id}",
    }.get(info.state, f"pid {info.pid}")
    print(f"run {info.name} ({info.id}) {where}; directory {info.dir}", flush=True)
    return _follow(ws, info, sys.stdout.isatty())


# --------------------------------------------------------------------------- stop, resume, queue


def cmd_stop(args: argparse.Namespace, ws: Workspace) -> int:
    info = read_live(ws, resolve_run(ws, args.run).dir)
    keep_queue_going(ws)
    damaged_live = info.state == "unknown" and runlock.holder(info.dir) is not None
    if info.state not in ("running", "stalled", "queued", "submitted") and not damaged_live:
        print(f"{info.name} is {info.state}: nothing to stop")
        return 0
    if info.state == "submitted":  # a Slurm job still waiting for its node
        print(f"cancelling Slurm job {info.slurm_job_id} of {info.name} (pending)", flush=True)
    elif info.state != "queued":
        paused = ", stalled: continuing it first" if info.state == "stalled" else ""
        pid = info.pid or (runlock.holder(info.dir) or {}).get("pid") or "?"
        print(f"stopping {info.name} (pid {pid}{paused}): waiting for its checkpoint", flush=True)
    out = stop_run(ws, info, grace_s=args.grace)
    ckpt = out.rundir.last_ckpt
    print(f"{out.name} {out.state}" + (f"; checkpoint {ckpt}" if ckpt.is_file() else ""))
    return 0


def cmd_resume(args: argparse.Namespace, ws: Workspace) -> int:
    info = resolve_run(ws, args.run)
    keep_queue_going(ws)
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
    left = [r for r in list_runs(ws, with_last_epoch=False) if r.state in ACTIVE_STATES]
    print("queue empty" if not left else f"{len(left)} run(s) still active")
    return 0


def cmd_repair(args: argparse.Namespace, ws: Workspace) -> int:
    """Rebuild a damaged status.json from events.jsonl and the checkpoints (exit 2 when the
    run is readable or a trainer owns it)."""

    info = resolve_run(ws, args.run)
    with queue_lock(ws):
        status = repair(info.rundir)
    runlog_sync(info.dir, record=True)
    print(
        f"repaired {info.name}: status.json rebuilt from events.jsonl ({status['state']}, "
        f"epoch {status['epoch']}/{status['epochs'] or '?'}); the damaged file is status.json.bad"
    )
    return 0


# --------------------------------------------------------------------------- runlog


def cmd_runlog_sync(args: argparse.Namespace, ws: Workspace) -> int:
    """Exit 1 with one line when RUNLOG.md (or its lock) cannot be written: nothing else is
    changed. Once it works, finished runs lose their `runlog_error`."""

    try:
        changed = sync_all(ws)
    except OSError as e:
        print(f"amc-tui: error: {ws.runlog} not updated: {not_written_reason(e)}", file=sys.stderr)
        return 1
    _clear_runlog_errors(ws)
    if changed:
        print(
            f"updated {len(changed)} entr{'y' if len(changed) == 1 else 'ies'} in {ws.runlog}: {', '.join(changed)}"
        )
    else:
        print(f"{ws.runlog} is current")
    return 0


def _clear_runlog_errors(ws: Workspace) -> None:
    stale = [r for r in list_runs(ws, with_last_epoch=False)
             if r.runlog_error and r.state in FINAL_STATES and r.stored_state == r.state]  # fmt: skip
    if not stale:
        return
    with queue_lock(ws):
        for r in stale:
            if runlock.holder(r.dir) is None:
                write_status(r.rundir, runlog_error=None)
