"""Who this trainer process is among several (rank, world size), from the environment alone.

Torch-free, so the process entry can ask "am I rank 0?" before torch loads: rank 0 alone
takes the run's lock. torchrun's RANK / LOCAL_RANK / WORLD_SIZE come first; inside an srun
step, SLURM_PROCID / SLURM_LOCALID / SLURM_STEP_NUM_TASKS (a batch script's SLURM_NTASKS says
how many tasks the job may run, not that this process is one of them).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

TORCHRUN_ENV = "TORCHELASTIC_RUN_ID"  # set by torchrun in every worker it starts


@dataclass(frozen=True)
class Place:
    """This process's position: rank among `world` processes, `local_rank` on its machine."""

    rank: int = 0
    local_rank: int = 0
    world: int = 1
    local_world: int = 1
    launcher: str = ""  # "torchrun", "srun" or "" (one plain process)


def env_int(env: Mapping[str, str], key: str, default: int) -> int:
    try:
        return int(env.get(key, default))
    except ValueError:
        return default


def env_place(env: Mapping[str, str] | None = None) -> Place:
    """The Place the environment describes (torchrun's variables first, then srun's)."""
    env = os.environ if env is None else env
    if "RANK" in env and "WORLD_SIZE" in env:
        world = max(1, env_int(env, "WORLD_SIZE", 1))
        return Place(
            rank=env_int(env, "RANK", 0), local_rank=env_int(env, "LOCAL_RANK", 0), world=world,
            local_world=max(1, env_int(env, "LOCAL_WORLD_SIZE", world)),
            launcher="torchrun" if TORCHRUN_ENV in env else "",
        )  # fmt: skip
    in_step = "SLURM_STEP_ID" in env  # srun started this process (not a batch script)
    tasks = env_int(env, "SLURM_STEP_NUM_TASKS", env_int(env, "SLURM_NTASKS", 1) if in_step else 1)
    if tasks > 1 and "SLURM_PROCID" in env:
        per_node = env.get("SLURM_STEP_TASKS_PER_NODE", "").split("(")[0]
        return Place(
            rank=env_int(env, "SLURM_PROCID", 0), local_rank=env_int(env, "SLURM_LOCALID", 0),
            world=tasks, local_world=int(per_node) if per_node.isdigit() else tasks,
            launcher="srun",
        )  # fmt: skip
    return Place()


def env_is_main(env: Mapping[str, str] | None = None) -> bool:
    """Whether this process is rank 0 (or the only one): the one that takes the run lock and
    writes the run's files. Reads the environment only, so it can be asked before torch."""
    return env_place(env).rank == 0


def first_host(nodelist: str) -> str:
    """The first host of a Slurm node list ("gpu-a[07-09,12],gpu-b3" -> "gpu-a07")."""
    head = nodelist.strip()
    depth = 0
    for i, ch in enumerate(head):  # the first item: up to a comma outside brackets
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            head = head[:i]
            break
    if "[" not in head:
        return head
    prefix, rest = head.split("[", 1)
    return prefix + rest.split("]")[0].split(",")[0].split("-")[0]
