"""The command that starts a run's trainer: one process, or one per GPU through torchrun.

A run with several GPUs (`run.gpus = [0, 1, 2, 3]` on CUDA, or `run.nproc = N`, which takes N
free GPUs, or N processes on the CPU) starts as

    python -m torch.distributed.run --standalone --nproc-per-node N -m <trainer> --run-dir DIR

with the launcher's own interpreter, so the group lives on one machine and finds itself
without a rendezvous server. Nothing here imports torch: torchrun runs in the child.

Why the launcher's restart policy (`run.restart`, `run.max_restarts`) and not torchrun's
`--max-restarts`: torchrun would start the same command line again, without `--resume`,
behind the launcher's back. The launcher's restart resumes from last.pt, counts the attempt
in status.json (`restarts`, shown by `ls` and `show`), writes a `restart` event, and is the
same policy for one process, for several and for Slurm jobs. So torchrun runs with no
restarts: the first rank that dies ends the group, torchrun exits non-zero, the launcher
records the run `crashed` and, with restart = "on-failure", queues it again with --resume.
"""

from __future__ import annotations

import sys
from pathlib import Path

from amc_tui.config import Config

TORCHRUN_MODULE = "torch.distributed.run"


def world_size(cfg: Config, device: str, gpus: list[int]) -> int:
    """How many training processes a run placed on `device` ("cpu" or "cuda") with the
    physical `gpus` gets: one per GPU when it holds several, else `run.nproc`."""
    if device.startswith("cuda") and len(gpus) > 1:
        return len(gpus)
    return max(1, cfg.run.nproc)


def trainer_argv(
    run_dir: str | Path,
    module: str,
    nproc: int = 1,
    resume: bool = False,
    python: str = sys.executable,
) -> list[str]:
    """The trainer's command line: `python -m <module> --run-dir DIR [--resume]`, under
    torchrun (standalone, `nproc` processes, no restarts) when `nproc` > 1."""
    tail = ["-m", module, "--run-dir", str(run_dir), *(["--resume"] if resume else [])]
    if nproc <= 1:
        return [python, *tail]
    return [python, "-m", TORCHRUN_MODULE, "--standalone", "--nproc-per-node", str(nproc),
            "--max-restarts", "0", *tail]  # fmt: skip
