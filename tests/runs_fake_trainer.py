"""A stand-in trainer for launcher tests: `python -m runs_fake_trainer --run-dir DIR [--resume]`.

It keeps the real trainer's file contract (status.json, events.jsonl, checkpoints/last.pt,
export/, RUNLOG via runlog.sync_entry (a failure kept as status.json `runlog_error`, cleared once
it works), SIGTERM -> checkpoint + `stopped` + exit 0) but trains
nothing, so queue/crash/stop/restart behaviour is tested in seconds with real processes.
Like the real one it takes the run's lock (runlock.acquire) before anything else and holds it
for life: a second trainer on the same folder exits 2 naming the holder.
Knobs (environment): FAKE_EPOCH_S (seconds per epoch, default 0.3), FAKE_IGNORE_TERM=1,
FAKE_FAIL_AT=<epoch> (raise: state failed, exit 1), FAKE_LOCK_CHILD=1 (fork a child that keeps
the run lock, as a data-loader worker inherits it, until the file `release-lock` appears),
FAKE_QUIET_AFTER=<epoch> (after that epoch's writes print "quiet" and write nothing more until
SIGTERM: a test may then change status.json with no write of ours in flight),
FAKE_HOLD_AFTER=<epoch> or <run name>:<epoch>,... (after that epoch's writes print "holding" and
wait for SIGTERM, heartbeat still beating: a run that is still running when a test stops or
kills it, however slow the test; the name form picks runs, as a worker passes it to all).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import sys
import time
import tomllib
import traceback
from pathlib import Path

from runs_fixtures import epoch_event, write_export

from amc_tui.fsutil import atomic_write_json
from amc_tui.run import runlock
from amc_tui.run.rundir import RunDir, append_event, read_meta, read_status, write_status
from amc_tui.runlog.sync import not_written_reason, runlog_path_for, sync_entry

STEPS = 5


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--run-dir", required=True)
    p.add_argument("--resume", action="store_true")
    args = p.parse_args()
    try:
        lock = runlock.acquire(args.run_dir)
    except runlock.RunLocked as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return e.exit_code
    if os.environ.get("FAKE_LOCK_CHILD") == "1" and os.fork() == 0:
        while not os.path.exists(os.path.join(args.run_dir, "release-lock")):
            time.sleep(0.02)
        os._exit(0)
    try:
        return train(args)
    finally:
        lock.release()


def train(args: argparse.Namespace) -> int:
    rd = RunDir(Path(args.run_dir))
    cfg = tomllib.loads(rd.config.read_text())
    epochs = int(cfg["train"]["epochs"])
    epoch_s = float(os.environ.get("FAKE_EPOCH_S", "0.3"))
    fail_at = int(os.environ.get("FAKE_FAIL_AT", "0"))
    quiet_after = int(os.environ.get("FAKE_QUIET_AFTER", "0"))
    hold_after = for_run(os.environ.get("FAKE_HOLD_AFTER", ""), rd.path.name)
    meta = read_meta(rd)
    term = {"flag": False}
    if os.environ.get("FAKE_IGNORE_TERM") == "1":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda *_: term.update(flag=True))
    first = 1
    best = read_status(rd).get("best") if args.resume else None
    if args.resume and rd.last_ckpt.is_file():
        first = json.loads(rd.last_ckpt.read_text())["epoch"] + 1
    now = time.time()
    write_status(
        rd,
        state="running",
        pid=os.getpid(),
        pgid=os.getpgid(0),
        host=socket.gethostname(),
        device="cpu",
        epoch=first - 1,
        epochs=epochs,
        step=0,
        heartbeat_at=now,
        ended_at=None,
        runlog_error=None,
    )
    classes, snrs = ["BPSK", "QPSK"], [0, 10]
    append_event(
        rd,
        "start",
        run_id=meta.get("id"),
        name=meta.get("name"),
        device="cpu",
        world_size=1,
        n_train=80,
        n_val=10,
        n_test=10,
        classes=classes,
        snrs=snrs,
        params=1234,
        resumed=args.resume,
    )
    rd.checkpoints.mkdir(exist_ok=True)
    runlog = runlog_path_for(rd.path)
    runlog_error = {"last": None}

    def sync_runlog() -> None:
        error = None
        try:
            sync_entry(rd.path, runlog)
        except Exception as e:  # a RUNLOG problem never fails training
            error = not_written_reason(e)
            print(f"RUNLOG.md not updated: {error}", flush=True)
        if error != runlog_error["last"]:
            runlog_error["last"] = error
            write_status(rd, runlog_error=error)

    rng = random.Random(0)

    def finish(state: str, code: int, error: str | None = None) -> int:
        write_status(rd, state=state, ended_at=time.time(), exit_code=code, error=error)
        append_event(rd, "end", state=state, exit_code=code, best=best)
        sync_runlog()
        return code

    try:
        for epoch in range(first, epochs + 1):
            for step in range(1, STEPS + 1):
                time.sleep(epoch_s / STEPS)
                if term["flag"]:
                    return finish("stopped", 0)
                append_event(
                    rd,
                    "step",
                    epoch=epoch,
                    step=step,
                    loss=1.0,
                    loss_mod=0.5,
                    loss_snr=0.5,
                    lr=1e-4,
                    samples_per_s=100.0,
                )
                write_status(rd, step=step, heartbeat_at=time.time())
            if epoch == fail_at:
                raise RuntimeError(f"fake failure at epoch {epoch}")
            ev = epoch_event(epoch, epochs, rng, False)
            value = ev["val"]["acc_combined"]
            ev["is_best"] = best is None or value > best["value"]
            if ev["is_best"]:
                best = {"metric": "val.acc_combined", "value": value, "epoch": epoch}
            ev.pop("t")
            ev.pop("kind")
            append_event(rd, "epoch", **ev)
            print(f"epoch {epoch}/{epochs}: val comb {value:.4f}", flush=True)  # as train.log has
            atomic_write_json(rd.last_ckpt, {"epoch": epoch})
            if ev["is_best"]:
                atomic_write_json(rd.best_ckpt, {"epoch": epoch})
            append_event(rd, "checkpoint", epoch=epoch, path=str(rd.last_ckpt), best=ev["is_best"])
            write_export(
                rd.epoch_export(epoch),
                meta.get("id"),
                epoch,
                {**ev, "t": 0, "kind": "epoch"},
                classes,
                snrs,
                rng,
            )
            append_event(rd, "export", epoch=epoch, dir=str(rd.epoch_export(epoch)))
            write_status(rd, epoch=epoch, best=best, heartbeat_at=time.time())
            sync_runlog()
            if epoch == quiet_after:
                print("quiet", flush=True)
                while not term["flag"]:
                    time.sleep(0.02)
            if epoch == hold_after:
                print("holding", flush=True)
                while not term["flag"]:
                    write_status(rd, heartbeat_at=time.time())
                    time.sleep(0.2)
            if term["flag"]:
                return finish("stopped", 0)
        return finish("completed", 0)
    except Exception:
        return finish("failed", 1, traceback.format_exc()[-2000:])


def for_run(spec: str, name: str) -> int:
    """The epoch `spec` gives run `name`: "<epoch>" any run, "<name>:<epoch>,..." those named;
    0: none."""
    if spec.strip().isdigit():
        return int(spec)
    pairs = (item.strip().rsplit(":", 1) for item in spec.split(",") if ":" in item)
    return next((int(epoch) for run, epoch in pairs if run == name), 0)


if __name__ == "__main__":
    sys.exit(main())
