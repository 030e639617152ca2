"""The training state a checkpoint holds (capture), and the one a `--resume` continues from.

capture() is everything a resume needs, also in the middle of an epoch (the position in the
epoch and the train counters so far), which SIGTERM and `run.checkpoint_minutes` both use.
restore() continues from the newest readable full training state: last.pt and best.pt are both full training states (checkpoint.py). A trainer killed while
writing its first last.pt leaves best.pt of epoch 1 and no last.pt (or, on a filesystem that
broke the atomic rename, an unreadable one); with `run.checkpoint_every` > 1 best.pt can be
newer than last.pt. So both are read and the one with the most steps wins (last.pt on a tie).
A file that cannot be read is skipped with its reason printed; when none can be used the
resume fails naming every file and what was wrong with it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amc_tui.config import resolve_arch
from amc_tui.run.events import last_event
from amc_tui.run.rundir import RunDir
from amc_tui.train import checkpoint as ckpt
from amc_tui.train.export import plain
from amc_tui.train.model import load_weights

if TYPE_CHECKING:
    from amc_tui.train.loop import Trainer


def capture(tr: Trainer) -> dict[str, Any]:
    """The trainer's full state: tensors and plain values only (weights_only loading)."""
    cfg = tr.cfg
    assert cfg is not None
    mid = tr.batch_in_epoch > 0
    b = tr.built
    return {
        "format": ckpt.FORMAT,
        "arch": resolve_arch(cfg.model.arch),
        "model": b.model.state_dict(),
        "optimizer": b.optimizer.state_dict(),
        "schedule": tr.schedule.state_dict(),
        "scaler": b.scaler.state_dict(),
        "weighting": b.weighting.state_dict(),
        "weighting_scheme": cfg.loss.weighting,
        "epoch": tr.epoch,
        "step": tr.step,
        "batch_in_epoch": tr.batch_in_epoch,
        "world_size": tr.dist.world,
        "train_acc": tr.dist.acc_state(tr.train_acc) if mid else None,  # summed over ranks
        "epoch_samples": tr.epoch_samples if mid else 0,
        "epoch_train_s": tr.epoch_train_s if mid else 0.0,
        "best": tr.best,
        "bad_epochs": tr.bad_epochs,
        "stopped_early": tr.stopped_early,
        "last_epoch_event": tr.last_epoch_event,
        "weighting_pending": tr.weighting_pending,
        "rng": ckpt.rng_state(),
        "config": plain(cfg.to_dict()),
        "config_hash": cfg.hash(),
        "run_id": tr.meta.get("id", tr.run.path.name),
        "saved_at": time.time(),
    }


def restore(tr: Trainer) -> None:
    """Continue from the newest readable state (pick), saying in train.log what was skipped
    and where training resumes."""
    picked = pick(tr.run)
    if picked is None:
        print(f"resume: no checkpoint in {tr.run.checkpoints} yet, starting from the beginning",
              flush=True)  # fmt: skip
        return
    path, state, skipped = picked
    for why in skipped:
        print(f"resume: skipped {why}", flush=True)
    assert tr.cfg is not None
    arch = resolve_arch(tr.cfg.model.arch)
    if state.get("arch") != arch:
        raise ckpt.CheckpointError(
            f"cannot resume from {path}: it holds a {state.get('arch')!r} model, "
            f"this run uses {arch!r}"
        )
    b = tr.built
    load_weights(b.model, state["model"], path)  # one-line error on a shape mismatch
    b.model.load_state_dict(state["model"])
    b.optimizer.load_state_dict(state["optimizer"])
    tr.schedule.load_state_dict(state["schedule"])
    b.scaler.load_state_dict(state["scaler"])
    b.weighting.load_state_dict(state["weighting"])
    tr.epoch, tr.step = int(state["epoch"]), int(state["step"])
    tr.batch_in_epoch = int(state["batch_in_epoch"])
    # another number of processes: the epoch in progress restarts (Dist.restart_epoch)
    if tr.dist.restart_epoch(state, tr.schedule, tr.epoch * tr.steps_per_epoch):
        tr.batch_in_epoch = 0
    tr.best = state.get("best")
    tr.bad_epochs = int(state.get("bad_epochs", 0))
    tr.stopped_early = bool(state.get("stopped_early", False))
    tr.last_epoch_event = state.get("last_epoch_event")
    if state.get("train_acc") is not None:
        tr.train_acc.load(state["train_acc"])
        tr.epoch_samples = int(state.get("epoch_samples", 0))
        tr.epoch_train_s = float(state.get("epoch_train_s", 0.0))
    if state.get("weighting_pending"):  # best.pt is written before this epoch-end step
        b.weighting.end_epoch(state["weighting_pending"])
    ckpt.set_rng_state(state["rng"])
    tr.dist.after_restore(tr.train_acc, tr.cfg.train.seed, tr.step)
    # the epoch event may be missing when the process died between checkpoint and event
    ev = tr.last_epoch_event
    seen = last_event(tr.run.events, "epoch")
    if ev and (seen is None or int(seen.get("epoch", 0)) < int(ev["epoch"])):
        tr.event("epoch", **{k: v for k, v in ev.items() if k not in ("t", "kind")})
    print(
        f"resumed from {path}: epoch {tr.epoch} done, step {tr.step}, "
        f"batch {tr.batch_in_epoch} of epoch {tr.epoch + 1}",
        flush=True,
    )


def candidates(run: RunDir) -> tuple[list[tuple[Path, dict[str, Any]]], list[str]]:
    """Readable full states (newest first) and, for every other file, why it was skipped."""
    found: list[tuple[int, int, Path, dict[str, Any]]] = []
    problems: list[str] = []
    for rank, path in enumerate((run.best_ckpt, run.last_ckpt)):
        if not path.exists():
            problems.append(f"{path.name} does not exist")
            continue
        try:
            state = ckpt.load(path)
        except ckpt.CheckpointError as e:
            problems.append(f"{path.name}: {e}")
            continue
        if not ckpt.is_full(state):
            problems.append(f"{path.name}: {path} is not an amc-tui training checkpoint")
            continue
        found.append((_int(state.get("step")), rank, path, state))
    found.sort(key=lambda f: (f[0], f[1]), reverse=True)
    return [(path, state) for _, _, path, state in found], problems


def pick(run: RunDir) -> tuple[Path, dict[str, Any], list[str]] | None:
    """(file, state, notes on skipped files) to resume from; None when the run has no
    checkpoint at all (it starts from the beginning); CheckpointError when it has some but
    none can be used."""
    found, problems = candidates(run)
    if found:
        path, state = found[0]
        skipped = [p for p in problems if not p.endswith("does not exist")]
        return path, state, skipped
    if all(p.endswith("does not exist") for p in problems):
        return None
    raise ckpt.CheckpointError(
        f"cannot resume run {run.name}: no usable checkpoint in {run.checkpoints} ("
        + "; ".join(problems)
        + "); remove them to start the run from the beginning"
    )


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1
