"""Several training processes on one machine (DDP): who this process is, the process group,
the reductions the trainer needs and how the data is split between the processes.

A process started by torchrun (`python -m torch.distributed.run`) reads RANK / LOCAL_RANK /
WORLD_SIZE; one started by srun without torchrun reads SLURM_PROCID / SLURM_LOCALID /
SLURM_STEP_NUM_TASKS (SLURM_NTASKS inside a job step only: a batch script's SLURM_NTASKS says
how many tasks the job may run, not that this process is one of them). With one process nothing here
touches torch.distributed and every helper is the identity, so a single-process run trains
exactly as it did before DDP existed.

The rules the trainer relies on:
- rank 0 alone writes status, events, checkpoints, exports and RUNLOG and holds the run
  lock; the other ranks write their output to `train.rank<N>.log` in the run directory;
- every decision that leads to a collective (stop, checkpoint, non-finite loss) is agreed
  through an all-reduce, so no rank waits forever in a collective the others skipped;
- those flags go through a gloo group on the CPU: agreeing every step costs no device sync;
- metric counters are summed over the ranks, and each rank sees a disjoint stride of the
  frames, so an export equals that of one process evaluating the same weights.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import random
import signal
import sys
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch

from amc_tui.data.source import default_ram_budget
from amc_tui.errors import UserError
from amc_tui.train.feed import plan_batches
from amc_tui.train.metrics import Accumulator, Summary
from amc_tui.train.place import Place, env_int, env_place, first_host

TIMEOUT = timedelta(minutes=30)  # a collective waits this long (ranks load data unevenly)
ACC_FIELDS = ("cells", "conf_mod", "conf_snr", "conf_mod_snr", "loss_sum")
# Errors a collective raises when another rank is gone (gloo closes its sockets; NCCL aborts).
PEER_LOST_MARKERS = ("Connection closed by peer", "Connection reset by peer", "Broken pipe",
                     "NCCL", "ProcessGroup", "Gloo", "gloo")  # fmt: skip


def _srun_rendezvous(env: dict[str, str] | os._Environ[str]) -> None:
    """MASTER_ADDR / MASTER_PORT for processes started by srun alone (torchrun sets them)."""
    nodes = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_NODELIST") or "localhost"
    env.setdefault("MASTER_ADDR", first_host(nodes))
    env.setdefault("MASTER_PORT", str(20000 + env_int(env, "SLURM_JOB_ID", 0) % 20000))


def _die_with_parent(parent: int) -> None:
    """SIGKILL this process when torchrun dies: torchrun starts each rank in a session of its
    own, so the launcher's SIGKILL of torchrun's group (a stop past its grace period) would
    leave the ranks running. Linux only; elsewhere a no-op."""

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before the call took effect
        os.kill(os.getpid(), signal.SIGKILL)


# --------------------------------------------------------------------------- the group


class Dist:
    """The trainer's view of its process group; with one process every method is a no-op
    or the identity (and torch.distributed is never initialised)."""

    def __init__(self, place: Place | None = None) -> None:
        self.place = place or env_place()
        self.rank, self.world = self.place.rank, self.place.world
        self.local_rank = self.place.local_rank
        self.is_main = self.rank == 0
        self.enabled = self.world > 1
        self._ctl: Any = None  # the gloo group for flags (None: the default group is gloo)
        self._said: set[str] = set()
        self._up = False
        self._parent = os.getppid()  # torchrun, when it started this process

    # ----------------------------------------------------------------- process

    def owner_pid(self) -> int:
        """status.json's pid: the process the launcher started and signals, which is torchrun
        under torchrun (it forwards SIGTERM to every rank and its exit code says how the group
        ended), else this process."""
        return os.getppid() if self.place.launcher == "torchrun" else os.getpid()

    def redirect_output(self, run_dir: Path) -> None:
        """Ranks other than 0 write stdout and stderr to `train.rank<N>.log` in the run
        directory: train.log stays one readable stream (torchrun merges every rank's output
        into it otherwise)."""
        if self.rank == 0:
            return
        sys.stdout.flush()
        sys.stderr.flush()
        path = Path(run_dir) / f"train.rank{self.rank}.log"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)

    def setup(self, device: torch.device) -> torch.device:
        """Join the process group (nccl on CUDA, gloo on the CPU) and return this rank's
        device: `cuda:LOCAL_RANK` among the GPUs the launcher made visible."""
        if not self.enabled:
            return device
        import torch.distributed as tdist  # torch.distributed: only in a multi-process run

        if self.place.launcher == "srun":
            _srun_rendezvous(os.environ)
        if self.place.launcher == "torchrun":
            _die_with_parent(self._parent)
        cuda = device.type == "cuda"
        if cuda:
            if self.local_rank >= torch.cuda.device_count():
                raise UserError(
                    f"process {self.rank} needs GPU {self.local_rank} but this machine shows "
                    f"{torch.cuda.device_count()}; give run.gpus or run.nproc that fit"
                )
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
        tdist.init_process_group(
            "nccl" if cuda else "gloo", rank=self.rank, world_size=self.world, timeout=TIMEOUT,
            **({"device_id": device} if cuda else {}),
        )  # fmt: skip
        self._up = True
        if cuda:
            self._ctl = tdist.new_group(backend="gloo", timeout=TIMEOUT)
        print(
            f"distributed: rank {self.rank} of {self.world} ({'nccl' if cuda else 'gloo'}, "
            f"local rank {self.local_rank}, pid {os.getpid()}), device {device}",
            flush=True,
        )
        return device

    def close(self) -> None:
        """Leave the group (best effort: a peer may be gone already)."""
        if self._up:
            self._up = False
            import torch.distributed as tdist  # torch.distributed: only in a multi-process run

            with contextlib.suppress(Exception):  # the process ends anyway
                tdist.destroy_process_group()

    def leave(self, exc: BaseException) -> int:
        """Another process of the run is gone and took a collective with it: this rank did
        not fail, so it records no end state. It exits 1 and never calls into the group
        again (destroying it could hang); torchrun then exits non-zero, the launcher records
        the run `crashed` and restart = "on-failure" resumes it."""
        self._up = False
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        print(f"another training process ended ({first}); leaving the run to the launcher",
              file=sys.stderr, flush=True)  # fmt: skip
        return 1

    def peer_lost(self, exc: BaseException) -> bool:
        """Whether `exc` says another rank is gone (its collective failed): the run then ends
        as torchrun reports it (`crashed`), not as a failure of this rank's own."""
        if not self.enabled:
            return False
        import torch.distributed as tdist  # torch.distributed: only in a multi-process run

        if isinstance(exc, tdist.DistError):
            return True
        return isinstance(exc, RuntimeError) and any(m in str(exc) for m in PEER_LOST_MARKERS)

    # ----------------------------------------------------------------- agreement

    def agree(self, flag: bool, what: str = "") -> bool:
        """True on every rank when `flag` is true on any (one all-reduce on the CPU group).
        Every rank must call it at the same point; `what` is printed the first time."""
        if not self.enabled:
            return bool(flag)
        import torch.distributed as tdist  # torch.distributed: only in a multi-process run

        t = torch.tensor([1 if flag else 0], dtype=torch.int32)
        tdist.all_reduce(t, op=tdist.ReduceOp.MAX, group=self._ctl)
        out = bool(t.item())
        if out and what and what not in self._said:
            self._said.add(what)
            print(f"{what}: agreed by all {self.world} processes", flush=True)
        return out

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as tdist  # torch.distributed: only in a multi-process run

            tdist.barrier(group=self._ctl)

    def first_bad(self, nonfinite: torch.Tensor) -> tuple[str, list[int]]:
        """(" on rank N", [mod step, snr step]) of the rank whose loss went non-finite first
        (-1 = finite; rank 0's row when all are). With one process: ("", its row)."""
        if not self.enabled:
            return "", [int(v) for v in nonfinite.tolist()]
        import torch.distributed as tdist  # torch.distributed: only in a multi-process run

        rows = [torch.empty_like(nonfinite) for _ in range(self.world)]
        tdist.all_gather(rows, nonfinite)
        table = [[int(v) for v in r.tolist()] for r in rows]
        hits = [(min(s for s in row if s >= 0), r) for r, row in enumerate(table) if max(row) >= 0]
        rank = min(hits)[1] if hits else 0
        return f" on rank {rank}", table[rank]

    # ----------------------------------------------------------------- data

    def plan_train(
        self, order: np.ndarray, batch_size: int, limit: int, drop_last: bool = True
    ) -> list[np.ndarray]:
        """The epoch's training batches of this rank: global batches of `batch_size x world`
        positions of the epoch's order (the same on every rank), the last partial one
        dropped unless `drop_last` is off, and of each every `world`-th position from this rank's. The ranks see
        disjoint frames, together each frame of a global batch once, and all of them the
        same number of steps. One process: `plan_batches` as it always was."""
        batches = plan_batches(order, batch_size * self.world, drop_last=drop_last, limit=limit)
        if not self.enabled:
            return batches
        out = [b[self.rank :: self.world] for b in batches]
        if any(len(b) == 0 for b in out):
            raise UserError(
                f"the train split has {sum(len(b) for b in batches)} frames per epoch, fewer "
                f"than the {self.world} processes; raise data.frames_per_cell or lower run.nproc"
            )
        return out

    def shard(self, order: np.ndarray) -> np.ndarray:
        """This rank's stride of an evaluation order: each frame on exactly one rank."""
        return order[self.rank :: self.world] if self.enabled else order

    def eval_steps(self, n: int, batch_size: int) -> int:
        """Batches of the largest shard of `n` frames: every rank checks for a stop this often,
        so the ranks' agreements pair up however the frames divide."""
        return math.ceil(math.ceil(n / self.world) / batch_size) if n else 0

    def ram_budget(self) -> int | None:
        """The in-memory data budget of one rank: the machine's, shared by its ranks (each
        holds its own copy of the selection). None with one process: the default."""
        if not self.enabled:
            return None

        return default_ram_budget() // self.place.local_world

    # ----------------------------------------------------------------- metrics

    def _reduced(self, acc: Accumulator) -> Accumulator:
        import torch.distributed as tdist  # torch.distributed: only in a multi-process run

        out = Accumulator(acc.n_mod, acc.n_snr, acc.device)
        for key in ACC_FIELDS:
            t = getattr(acc, key).clone()
            tdist.all_reduce(t)
            setattr(out, key, t)
        return out

    def summary(self, acc: Accumulator) -> Summary:
        """The counters summed over the ranks (a copy; `acc` keeps this rank's own)."""
        return self._reduced(acc).summary() if self.enabled else acc.summary()

    def acc_state(self, acc: Accumulator) -> dict[str, torch.Tensor]:
        """`acc.state()` summed over the ranks, for a mid-epoch checkpoint (rank 0 keeps it
        on resume, the others start from zero)."""
        return self._reduced(acc).state() if self.enabled else acc.state()

    # ----------------------------------------------------------------- model

    def wrap(self, built: Any, compile_model: bool, lr_scale: str) -> None:
        """DDP for the training forward (gradients averaged over the ranks during backward);
        evaluation keeps the bare model, so no rank waits on another's uneven last batch and
        checkpoints hold the bare state dict. The loss weighting's parameters (uncertainty
        log-variances) live outside the model: their gradients are averaged after backward."""
        if not self.enabled:
            return
        from torch.nn.parallel import DistributedDataParallel as DDP  # multi-process runs only

        dev = built.device
        ddp = DDP(built.model, device_ids=[dev.index] if dev.type == "cuda" else None)
        built.train_forward = torch.compile(ddp) if compile_model else ddp
        params = [p for p in built.weighting.parameters() if p.requires_grad]
        if params:
            built.after_backward = lambda: self._average_grads(params)
        self.scale_lr(built.optimizer, lr_scale)  # before the Schedule reads the base lr

    def _average_grads(self, params: list[torch.nn.Parameter]) -> None:
        import torch.distributed as tdist  # torch.distributed: only in a multi-process run

        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        tdist.all_reduce(flat)
        flat /= self.world
        at = 0
        for p, g in zip(params, grads, strict=True):
            p.grad = flat[at : at + g.numel()].view_as(g).clone()
            at += g.numel()

    def sync_buffers(self, model: torch.nn.Module) -> None:
        """Rank 0's floating buffers (BatchNorm statistics) on every rank before evaluating:
        each rank's last forward updated its own, and an export must equal one of rank 0's
        weights (the checkpoint)."""
        if not self.enabled:
            return
        import torch.distributed as tdist  # torch.distributed: only in a multi-process run

        for b in model.buffers():
            if b.is_floating_point():
                tdist.broadcast(b, src=0)

    def scale_lr(self, optimizer: torch.optim.Optimizer, mode: str) -> None:
        """`train.lr_scale`: "linear" multiplies every group's lr by the number of processes
        (the global batch grew by it); "none" leaves it and says so, never silently."""
        if not self.enabled:
            return
        if mode == "linear":
            for g in optimizer.param_groups:
                g["lr"] *= self.world
            print(f"lr x {self.world} for {self.world} processes (train.lr_scale = linear)")
        else:
            print(
                f"lr as configured for {self.world} processes (train.lr_scale = none; "
                '"linear" multiplies it by the number of processes)',
                flush=True,
            )

    # ----------------------------------------------------------------- seeds, resume

    def seed(self, seed: int, step: int = 0) -> None:
        """Other ranks draw their own random numbers (dropout masks), derived from the seed,
        the rank and the step; rank 0 keeps the single-process sequence."""
        if self.rank == 0:
            return
        mixed = np.random.SeedSequence([int(seed) % 2**63, self.rank, int(step)])
        value = int(mixed.generate_state(1, np.uint64)[0] % 2**63)
        torch.manual_seed(value)
        np.random.seed(value % 2**32)
        random.seed(value)

    def restart_epoch(self, state: Mapping[str, Any], schedule: Any, epoch_start: int) -> bool:
        """Whether a mid-epoch checkpoint must restart its epoch: its position counts batches
        of `batch_size x world size` frames, which do not map onto another number of
        processes, so the epoch in progress is trained again from its start (the weights
        keep everything learnt up to the checkpoint) and the lr schedule goes back to the
        epoch's first step `epoch_start` (steps of this run's global batch)."""
        saved = int(state.get("world_size") or 1)
        if saved == self.world or not int(state.get("batch_in_epoch") or 0):
            return False
        schedule.load_state_dict({**schedule.state_dict(), "t": epoch_start})
        print(
            f"resume: the checkpoint was written by {saved} process(es), this run has "
            f"{self.world}: epoch {int(state['epoch']) + 1} restarts from its first batch",
            flush=True,
        )
        return True

    def after_restore(self, train_acc: Accumulator, seed: int, step: int) -> None:
        """After every rank loaded the same checkpoint: rank 0 alone keeps the saved (summed)
        train counters, and the others get their own random streams back."""
        if self.rank != 0:
            train_acc.reset()
            self.seed(seed, step)
