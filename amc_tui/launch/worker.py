"""The detached queue worker: `python -m amc_tui.launch.worker --workspace DIR`.

Left alive by the launcher (own session, like a trainer) while any run is queued or running,
so queued runs start, and crashed runs are recorded and restarted, with no amc-tui process
open. One per workspace (the worker lock, see keeper.py; the spawner passes it locked as
--lock-fd); it exits when nothing is active. `amc-tui queue` runs the same loop
(queue.run_worker) in the foreground. The package does not import this
module, so `python -m` runs it fresh.
"""

from __future__ import annotations

import argparse
import logging
import sys

from amc_tui.launch.queue import WORKER_POLL_S, run_worker
from amc_tui.run.rundir import RunInfo
from amc_tui.workspace import Workspace


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="amc_tui.launch.worker")
    p.add_argument("--workspace", required=True)
    p.add_argument("--poll", type=float, default=WORKER_POLL_S)
    p.add_argument("--lock-fd", type=int, help="the worker lock, already taken by the spawner")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    ws = Workspace.find(args.workspace)

    def started(info: RunInfo) -> None:
        logging.info("started %s (%s) pid %s", info.name, info.id, info.pid)

    return run_worker(ws, poll_s=args.poll, on_start=started, lock_fd=args.lock_fd)


if __name__ == "__main__":
    sys.exit(main())
