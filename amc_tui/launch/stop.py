"""Stop a run wherever it runs: a run with an open Slurm job through Slurm (`slurm_runs.stop`:
SIGTERM to its steps, scancel after the grace), every other one here (`supervise.stop_local`)."""

from __future__ import annotations

from amc_tui.launch import slurm_runs
from amc_tui.launch.supervise import run_info, stop_local
from amc_tui.run.rundir import RunInfo
from amc_tui.workspace import Workspace


def stop_run(
    ws: Workspace, run: RunInfo | str, grace_s: float | None = None, wait: bool = True
) -> RunInfo:
    """Stop `run` (a RunInfo or a reference); returns it as it is afterwards."""
    info = run_info(ws, run)
    if info.slurm_job_id and not info.slurm_settled and info.state != "unknown":
        return slurm_runs.stop(ws, info, grace_s, wait)
    return stop_local(ws, info, grace_s, wait)
