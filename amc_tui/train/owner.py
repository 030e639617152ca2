"""`python -m amc_tui.train --run-dir DIR [--resume]`: own the run directory, then train.

The run's lock (runlock.py) is taken before torch is imported and before anything is written:
a second trainer started on a live run (a double `resume`, a restart racing a paused trainer)
leaves at once with one line on stderr and exit 2, and writes nothing into a directory whose
status, events and checkpoints belong to the first. The lock is held until the process ends.
Then preflight.py refuses what it can before torch (config, data file, seed checkpoints), so a
run that cannot start fails in a fraction of a second. Importing this module costs no torch.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from pathlib import Path

from amc_tui.errors import UserError
from amc_tui.run import runlock
from amc_tui.run.rundir import RunDir
from amc_tui.train import preflight
from amc_tui.train.place import env_is_main


def take_lock(run_dir: Path) -> runlock.RunLock | None:
    """The run's lock, or None after printing who owns the run (nothing else is written)."""
    try:
        return runlock.acquire(run_dir)
    except runlock.RunLocked as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m amc_tui.train", description="the amc-tui trainer process"
    )
    p.add_argument("--run-dir", required=True, help="run directory holding config.toml")
    p.add_argument("--resume", action="store_true", help="continue from checkpoints/last.pt")
    args = p.parse_args(argv)
    run_dir = Path(args.run_dir)
    if not (run_dir / "config.toml").is_file():
        print(f"error: {run_dir}/config.toml not found", file=sys.stderr)
        return 2
    lock = None
    if env_is_main():  # rank 0 (or the only process) owns the run; other ranks never write it
        lock = take_lock(run_dir)
        if lock is None:
            return runlock.RunLocked.exit_code
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stdout
    )
    run = RunDir(run_dir.resolve())
    try:  # a missing data file or seed checkpoint fails now, not after ~8 s of imports
        preflight.check(run, resuming=args.resume)
    except UserError as e:
        if not env_is_main():  # rank 0 records the failure; the others only leave
            print(f"error: {e}", file=sys.stderr, flush=True)
            return 2
        return preflight.fail(run, str(e))
    # OpenMP threads that wait at a barrier sleep instead of spinning: with other work on
    # the same cores (another trainer, a test suite) spinning threads steal the time slices
    # of the threads they wait for. Measured on 2 busy cores, tiny Swin, 2 torch threads:
    # 7-24 samples/s spinning, 90-350 sleeping. Read when torch loads; a user's value stays.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from amc_tui.train.loop import Trainer  # torch (~8 s): only once the run is ours

    trainer = Trainer(run_dir, resume=args.resume, lock=lock)
    code = trainer.main()
    if trainer.mirror is not None and trainer.mirror.abandoned:  # a hung W&B: its exit hook
        sys.stdout.flush()  # waits for its service; status, events and RUNLOG are written
        sys.stderr.flush()
        os._exit(code)
    return code
