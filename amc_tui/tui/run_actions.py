"""Stop and resume a run from the app: what the app's "run-action" thread workers call, loaded
through the screen registry (`registry.RUN_ACTIONS`) on first use, because amc_tui.launch
imports numpy, h5py and psutil (and runlog, sweeps) and the app's start path must not. Each
returns the line the app shows; an error propagates and is shown in place.
"""

from __future__ import annotations

from pathlib import Path

from amc_tui.launch.queue import resume_run
from amc_tui.launch.stop import stop_run
from amc_tui.run.rundir import RunInfo, read_run
from amc_tui.workspace import Workspace


def stop(ws: Workspace, run_dir: Path) -> str:
    """Ask the run to stop (its trainer checkpoints first); a queued run leaves the queue."""
    info = stop_run(ws, read_run(run_dir), wait=False)
    if info.state == "running":
        return f"stopping {info.name}: waiting for its checkpoint"
    if info.state == "submitted":  # the cancel goes on in a thread
        return f"cancelling {info.name}'s Slurm job {info.slurm_job_id}"
    return f"{info.state} {info.name}"  # a queued run left the queue; a quick trainer is done


def resume(ws: Workspace, info: RunInfo, as_new: bool = False) -> str:
    """Resume in place, or (`as_new`) as a new run trained on from its checkpoint."""
    new = resume_run(ws, read_run(info.dir), as_new=as_new)
    if as_new:
        return f"resumed {info.name} as new run {new.name}: {new.state}"
    return f"resumed {new.name}: {new.state}"
