"""What Slurm says about a job, in amc-tui's run states.

One table (`SLURM_STATES`) maps Slurm's job states to ours; `job_states` asks sacct (parsed
with submitit's reader, which understands array ids such as `1234_[2-5%2]`) and falls back to
squeue for jobs sacct does not know yet or on clusters without accounting. `effective_state`
settles what a run ended as when Slurm and the trainer's own status.json disagree: a trainer
that was told to stop ends its job cleanly (COMPLETED), yet the run is `stopped`; a trainer that
stopped because Slurm's time limit or a preemption came is resumable (`crashed`).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable

from amc_tui.errors import UserError

SUBMITTED = "submitted"  # queued in Slurm: the job exists, no trainer yet
UNKNOWN = "unknown"  # neither sacct nor squeue knows the job (yet, or any more)

SLURM_STATES: dict[str, str] = {
    # waiting for resources, or requeued and waiting again
    "PENDING": SUBMITTED, "CONFIGURING": SUBMITTED, "REQUEUED": SUBMITTED,
    "REQUEUE_HOLD": SUBMITTED, "REQUEUE_FED": SUBMITTED, "RESV_DEL_HOLD": SUBMITTED,
    # allocated: the trainer runs, or is about to, or is being torn down
    "RUNNING": "running", "COMPLETING": "running", "STAGE_OUT": "running",
    "SIGNALING": "running", "RESIZING": "running", "SUSPENDED": "running", "STOPPED": "running",
    "COMPLETED": "completed",
    "FAILED": "failed", "NODE_FAIL": "failed", "OUT_OF_MEMORY": "failed", "BOOT_FAIL": "failed",
    "DEADLINE": "failed", "SPECIAL_EXIT": "failed",
    "CANCELLED": "stopped", "REVOKED": "stopped",
    # ended by the scheduler, not by the trainer: resume from last.pt (restart policy)
    "TIMEOUT": "crashed", "PREEMPTED": "crashed",
}  # fmt: skip
ACTIVE = frozenset({SUBMITTED, "running"})
FINAL = frozenset({"completed", "failed", "stopped", "crashed"})
QUERY_TIMEOUT_S = 60.0


class SlurmError(UserError):
    """Slurm refused or could not be asked; the message is Slurm's own, on one line."""


def one_line(text: str) -> str:
    """Slurm's (possibly multi-line) message as one line fit for stderr."""
    return " ".join(line.strip() for line in text.strip().splitlines() if line.strip())


def slurm_command(argv: list[str]) -> subprocess.CompletedProcess[str] | None:
    """Run a Slurm client; None when it is not installed here."""
    try:
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=QUERY_TIMEOUT_S, check=False
        )
    except (FileNotFoundError, PermissionError):
        return None
    except subprocess.TimeoutExpired:
        raise SlurmError(f"{argv[0]} did not answer within {QUERY_TIMEOUT_S:.0f} s") from None


def _word(state: str) -> str:
    """`CANCELLED by 1000` -> `CANCELLED`; `CANCELLED+` (a narrow column) -> `CANCELLED`."""
    return state.split(" ")[0].rstrip("+").upper() if state else ""


def _from_sacct(job_ids: list[str]) -> dict[str, str] | None:
    from submitit.slurm.slurm import SlurmInfoWatcher  # submitit: only for Slurm runs

    argv = ["sacct", "-o", "JobID,State,NodeList", "--parsable2"]
    for main in sorted({j.split("_")[0] for j in job_ids}):
        argv += ["-j", main]
    done = slurm_command(argv)
    if done is None or done.returncode != 0:
        return None
    info = SlurmInfoWatcher().read_info(done.stdout)
    return {j: _word(info[j].get("State", "")) for j in job_ids if j in info}


def _from_squeue(job_ids: list[str]) -> dict[str, str] | None:
    done = slurm_command(["squeue", "-h", "-r", "-o", "%i|%T", "-j", ",".join(job_ids)])
    if done is None:
        return None
    if done.returncode != 0:  # one finished id can fail the whole query
        if len(job_ids) == 1:
            return {}
        parts = [_from_squeue([j]) for j in job_ids]
        return {k: v for p in parts if p for k, v in p.items()}
    out = {}
    for line in done.stdout.splitlines():
        jid, _, state = line.strip().partition("|")
        if jid in job_ids:
            out[jid] = _word(state)
    return out


def raw_states(job_ids: Iterable[str]) -> dict[str, str]:
    """Slurm's own state word for each job id ("" where Slurm does not know the id)."""
    ids = [str(j) for j in dict.fromkeys(job_ids)]
    if not ids:
        return {}
    found = _from_sacct(ids)
    missing = [j for j in ids if not (found or {}).get(j)]
    queued = _from_squeue(missing) if missing else {}
    if found is None and queued is None:
        raise SlurmError("cannot ask Slurm about jobs: neither sacct nor squeue is on PATH")
    merged = {**(queued or {}), **{k: v for k, v in (found or {}).items() if v}}
    return {j: merged.get(j, "") for j in ids}


def amc_state(raw: str) -> str:
    """amc-tui's state for one Slurm state word (`unknown` for none or an unlisted one)."""
    return SLURM_STATES.get(_word(raw), UNKNOWN)


def job_states(job_ids: Iterable[str]) -> dict[str, str]:
    """amc-tui's state for each job id, with one sacct call for all of them."""
    return {j: amc_state(raw) for j, raw in raw_states(job_ids).items()}


def job_state(job_id: str) -> str:
    """amc-tui's state for one job id: submitted, running, completed, failed, stopped,
    crashed or unknown."""
    return job_states([job_id])[str(job_id)]


def effective_state(slurm_state: str, trainer_state: str | None) -> str:
    """The run's state from the job's (mapped) state and the state the trainer last wrote.

    While the job is queued, running or unknown, that is what counts (a live trainer keeps its
    own status.json). Once it has ended, a final state the trainer wrote wins (it knows why it
    stopped), except `stopped` under TIMEOUT/PREEMPTED: that stop was Slurm's, so `crashed`.
    A trainer that never wrote a final state (killed, out of memory, never started) leaves
    Slurm's word."""
    if slurm_state not in FINAL:
        return slurm_state
    if trainer_state in FINAL and not (trainer_state == "stopped" and slurm_state == "crashed"):
        return trainer_state
    return slurm_state
