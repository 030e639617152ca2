"""Run trainers as Slurm jobs (run.executor = "slurm"), submitted through submitit.

The launcher calls `check_available`, then `submit` (one run) or `submit_array` (a group, one
job array) and records the returned dict in status.json; this module writes no status itself.
It polls `job_states` and settles a finished job with `effective_state`; `cancel` stops a job
the way a local stop does: SIGTERM so the trainer checkpoints, the hard end after a grace.

The job runs one task per node (srun); each task is submitit's wrapper calling `TrainerTask`,
which starts torchrun (several GPUs or nodes, c10d rendezvous on the first node) or plain
python on the run directory, its output appended to <run>/train.log as for a local run.
submitit's files (sbatch script, pickles, the wrapper's log) go to <run>/slurm/.

Slurm's time-limit warning (USR2, `signal_delay_s` before the end) is turned into SIGTERM for
the trainer, which writes last.pt; the task then waits for the limit so that sacct records
TIMEOUT (-> `crashed`, resumed by the restart policy) and not a clean end. Jobs are submitted
with --no-requeue: amc-tui's restart policy, not Slurm, restarts a run.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from amc_tui import contract
from amc_tui.config import Config, SlurmConfig, diff_configs
from amc_tui.launch.slurm_state import (
    FINAL,
    SLURM_STATES,
    SUBMITTED,
    SlurmError,
    effective_state,
    job_state,
    job_states,
    one_line,
    raw_states,
    slurm_command,
)
from amc_tui.run.rundir import RunDir, run_workspace

__all__ = [
    "SLURM_DIR", "SLURM_STATES", "SlurmError", "TrainerTask", "cancel", "cancel_array",
    "check_available",
    "effective_state", "job_state", "job_states", "raw_states", "scancel", "submit",
    "submit_array", "trainer_argv",
]  # fmt: skip

SLURM_DIR = "slurm"  # <run>/slurm/: submitit's files for the run's jobs
RDZV_PORT = 29400
MIN_SIGNAL_DELAY_S = 90  # the trainer's warning before the time limit
PKG_ROOT = str(Path(__file__).resolve().parent.parent)


def check_available() -> None:
    """Refuse before anything is written when this host cannot submit Slurm jobs."""
    for tool in ("sbatch", "srun"):
        if shutil.which(tool) is None:
            raise SlurmError(f"executor = slurm but {tool} is not on PATH")


def trainer_argv(
    run_dir: str | Path,
    s: SlurmConfig,
    *,
    resume: bool = False,
    master: str = "localhost",
    job_id: str = "0",
    module: str = contract.TRAINER_MODULE,
    python: str = sys.executable,
) -> list[str]:
    """The command one node runs: plain `python -m <trainer>` for one process, else torchrun
    (`python -m torch.distributed.run`, the same interpreter) with one process per GPU,
    standalone on one node or c10d rendezvous at `master` across several."""
    tail = ["-m", module, "--run-dir", str(run_dir), *(["--resume"] if resume else [])]
    if s.nodes == 1 and s.gpus_per_node <= 1:
        return [python, *tail]
    launch = [python, "-m", "torch.distributed.run"]
    if s.nodes == 1:
        launch.append("--standalone")
    else:
        launch += [f"--nnodes={s.nodes}", "--rdzv-backend=c10d",
                   f"--rdzv-endpoint={master}:{RDZV_PORT}", f"--rdzv-id={job_id}"]  # fmt: skip
    return [*launch, f"--nproc-per-node={max(1, s.gpus_per_node)}", *tail]


def _limit_signal() -> signal.Signals:
    from submitit import JobEnvironment  # submitit: only for Slurm runs

    return signal.Signals[f"SIG{JobEnvironment.USR_SIG}"]


@dataclass(frozen=True)
class TrainerTask:
    """What each Slurm task runs (pickled by submitit, called on the node)."""

    run_dir: str
    workspace: str
    slurm: dict[str, Any]
    module: str = contract.TRAINER_MODULE
    resume: bool = False
    cpu_only: bool = False

    def __call__(self) -> int:
        from submitit import JobEnvironment  # submitit: only for Slurm runs

        env = JobEnvironment()
        rd = RunDir(Path(self.run_dir))
        argv = trainer_argv(
            rd.path, SlurmConfig(**self.slurm), resume=self.resume or rd.last_ckpt.is_file(),
            master=env.hostnames[0], job_id=env.job_id, module=self.module,
        )  # fmt: skip
        child_env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if self.cpu_only:
            child_env["CUDA_VISIBLE_DEVICES"] = ""
        log = rd.log if env.node == 0 else rd.path / SLURM_DIR / f"{env.job_id}_node{env.node}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        sig, limit, procs = _limit_signal(), threading.Event(), []

        def on_limit(signum: int, frame: object) -> None:
            limit.set()
            for p in procs:
                with contextlib.suppress(OSError):
                    p.send_signal(signal.SIGTERM)

        signal.signal(sig, on_limit)
        with open(log, "ab") as logf:
            head = f"--- amc-tui: starting trainer at {time.ctime()} in job {env.job_id} "
            logf.write(f"{head}on {socket.gethostname()}: {shlex.join(argv)}\n".encode())
            logf.flush()
            proc = subprocess.Popen(
                argv, cwd=self.workspace, env=child_env, stdin=subprocess.DEVNULL, stdout=logf,
                stderr=subprocess.STDOUT,  # the time-limit warning is handled here, not there:
                preexec_fn=functools.partial(signal.signal, sig, signal.SIG_IGN),
            )  # fmt: skip
        procs.append(proc)
        if limit.is_set():  # the warning came while the trainer was starting
            proc.send_signal(signal.SIGTERM)
        rc = proc.wait()
        if limit.is_set():
            print("time limit near: the trainer checkpointed; waiting for Slurm's end", flush=True)
            while True:  # ended by Slurm at the limit: sacct says TIMEOUT
                time.sleep(3600)
        if rc != 0:
            raise RuntimeError(f"trainer exited with code {rc}; its output is in {log}")
        return rc


def _parameters(s: SlurmConfig, name: str, cluster: str, stop_grace_s: float) -> dict[str, Any]:
    """submitit parameters for the [slurm] table (0 or "" leaves a key to Slurm)."""
    params: dict[str, Any] = {
        "name": f"amc-{name}",
        "timeout_min": s.time_min,
        "nodes": s.nodes,
        "tasks_per_node": 1,
        "stderr_to_stdout": True,
        f"{cluster}_setup": [
            *s.setup,
            f"export PYTHONPATH={shlex.quote(PKG_ROOT)}${{PYTHONPATH:+:$PYTHONPATH}}",
        ],
    }
    for key in ("gpus_per_node", "cpus_per_task", "mem_gb"):
        if getattr(s, key):
            params[key] = getattr(s, key)
    if cluster == "slurm":
        for key in ("partition", "account", "qos", "constraint"):
            if getattr(s, key):
                params[f"slurm_{key}"] = getattr(s, key)
        params["slurm_signal_delay_s"] = max(MIN_SIGNAL_DELAY_S, int(stop_grace_s) + 60)
        params["slurm_additional_parameters"] = {"no_requeue": True, **s.additional}
    return params


def _submit(
    tasks: list[TrainerTask],
    folder: Path,
    s: SlurmConfig,
    name: str,
    *,
    cluster: str,
    stop_grace_s: float,
    parallelism: int = 1,
) -> list[Any]:
    """Submit the tasks as one job (one task) or one job array; submitit's jobs back."""
    import submitit  # submitit: only for Slurm runs
    from submitit.core.utils import FailedJobError, FailedSubmissionError  # Slurm runs only

    if cluster == "slurm":
        check_available()
    try:
        executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
        params = _parameters(s, name, cluster, stop_grace_s)
        if len(tasks) > 1 and cluster == "slurm":
            params["slurm_array_parallelism"] = parallelism
        executor.update_parameters(**params)
        if len(tasks) == 1:
            return [executor.submit(tasks[0])]
        return executor.submit_array(tasks)
    except FailedJobError as e:  # sbatch said no: its stderr is the message
        raise SlurmError(f"sbatch failed: {one_line(str(e)) or 'no message'}") from None
    except (FailedSubmissionError, ValueError, NameError, RuntimeError, OSError) as e:
        raise SlurmError(f"cannot submit to Slurm: {one_line(str(e))}") from None


def _record(job: Any, now: float) -> dict[str, Any]:
    return {
        "state": SUBMITTED,
        "slurm_job_id": str(job.job_id),
        "submitted_at": now,
        "slurm_log": str(job.paths.stdout),
    }


def _task(rd: RunDir, cfg: Config, module: str, resume: bool = False) -> TrainerTask:
    return TrainerTask(
        run_dir=str(rd.path.resolve()), workspace=str(run_workspace(rd)), slurm=asdict(cfg.slurm),
        module=module, resume=resume, cpu_only=cfg.run.device == "cpu",
    )  # fmt: skip


def submit(
    run_dir: str | Path,
    cfg: Config,
    *,
    resume: bool = False,
    module: str = contract.TRAINER_MODULE,
    cluster: str = "slurm",
) -> dict[str, Any]:
    """Submit one run's trainer as a Slurm job; the status fields to record back:
    {"state": "submitted", "slurm_job_id", "submitted_at", "slurm_log"}.

    `resume` forces --resume; a run with checkpoints/last.pt resumes anyway (decided on the
    node when the job starts). `cluster="local"` runs the same task through submitit's local
    executor (no Slurm needed)."""
    rd = RunDir(Path(run_dir))
    task = _task(rd, cfg, module, resume)
    (job,) = _submit(
        [task], rd.path / SLURM_DIR, cfg.slurm, rd.path.name, cluster=cluster,
        stop_grace_s=cfg.run.stop_grace_s,
    )  # fmt: skip
    return _record(job, time.time())


def submit_array(
    run_dirs: Sequence[str | Path],
    cfgs: Sequence[Config],
    parallelism: int,
    *,
    folder: str | Path | None = None,
    module: str = contract.TRAINER_MODULE,
    cluster: str = "slurm",
) -> list[dict[str, Any]]:
    """Submit a group of runs as one job array, at most `parallelism` running at once; one
    record per run, in order (job ids `<array>_<index>`). The runs share one [slurm] table;
    the array's submitit files go to `folder` (default: <runs>/.slurm/, shared by arrays)."""
    if len(run_dirs) != len(cfgs) or not run_dirs:
        raise SlurmError("submit_array needs one config per run and at least one run")
    if parallelism < 1:
        raise SlurmError(f"array parallelism must be >= 1, got {parallelism}")
    base = asdict(cfgs[0].slurm)
    for rd_path, cfg in zip(run_dirs, cfgs, strict=True):
        diff = diff_configs(base, asdict(cfg.slurm))
        if diff:
            key = diff[0][0]
            raise SlurmError(
                f"runs in one Slurm array share the [slurm] table; {Path(rd_path).name} "
                f"differs in slurm.{key}"
            )
    rds = [RunDir(Path(p)) for p in run_dirs]
    tasks = [_task(rd, cfg, module) for rd, cfg in zip(rds, cfgs, strict=True)]
    where = Path(folder) if folder is not None else rds[0].path.parent / f".{SLURM_DIR}"
    jobs = _submit(
        tasks, where, cfgs[0].slurm, f"{rds[0].path.name}+{len(rds) - 1}", cluster=cluster,
        stop_grace_s=max(c.run.stop_grace_s for c in cfgs), parallelism=parallelism,
    )  # fmt: skip
    now = time.time()
    return [_record(job, now) for job in jobs]


def scancel(*args: str) -> bool:
    """scancel with `args`; True when Slurm took it."""
    done = slurm_command(["scancel", *args])
    if done is None:
        raise SlurmError("cannot cancel: scancel is not on PATH")
    return done.returncode == 0


def cancel(job_id: str, grace_s: float = 30.0, poll_s: float = 2.0) -> str:
    """Stop a job: SIGTERM to its steps (the trainer checkpoints and ends, the job with it),
    then a plain scancel if it still runs after `grace_s`; a queued job is cancelled at once.
    Returns the job's last mapped state (`effective_state` gives the run's).

    The signal goes to the job steps only, not `--full`: the batch shell would die of it
    (ending the job at once) and srun would forward a second SIGTERM to torchrun."""
    job_id = str(job_id)
    state = job_state(job_id)
    if state in FINAL:
        return state
    if state == SUBMITTED or not scancel("--signal=TERM", job_id):
        scancel(job_id)
        return "stopped"
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))
        state = job_state(job_id)
        if state in FINAL:
            return state
    scancel(job_id)
    return "stopped"


def cancel_array(array_id: str, task_ids: Sequence[str], grace_s: float = 30.0,
                 poll_s: float = 2.0) -> dict[str, str]:  # fmt: skip
    """Stop the tasks of a job array with one call per step, as `cancel` stops one job: the
    pending tasks cancelled at once (`scancel --state=PENDING ARRAY`), the running ones sent
    SIGTERM (`scancel --signal=TERM --state=RUNNING ARRAY`: the trainers checkpoint), and
    the array cancelled after `grace_s` if any still runs. `task_ids` are the array's tasks
    still open (`ARRAY_K`); returns each one's last mapped state."""
    states = job_states(task_ids)
    if any(s == SUBMITTED for s in states.values()):
        scancel("--state=PENDING", array_id)
    running = [t for t, s in states.items() if s == "running"]
    if not running:
        return {t: "stopped" if s == SUBMITTED else s for t, s in states.items()}
    if not scancel("--signal=TERM", "--state=RUNNING", array_id):
        scancel(array_id)
        return {t: s if s in FINAL else "stopped" for t, s in states.items()}
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))
        now = job_states(running)
        states.update(now)
        if all(s in FINAL for s in now.values()):
            return states
    scancel(array_id)
    return {t: s if s in FINAL else "stopped" for t, s in states.items()}
