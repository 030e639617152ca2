"""What a run's files say about its mirrors, for `show` and the app: failures recorded by the
sink (`mirror` events), the TensorBoard folder, the offline W&B runs left for `wandb sync`."""

from __future__ import annotations

from typing import Any

from amc_tui.mirror.targets import offline_runs, tb_dir
from amc_tui.run.rundir import RunDir


def failures(events: list[dict[str, Any]]) -> list[str]:
    """One line per recorded failure, in order, each target once per attempt."""
    return [str(e.get("message") or f"{e.get('target')}: {e.get('error')}")
            for e in events if e.get("kind") == "mirror"]  # fmt: skip


def mirror_state(run: RunDir, events: list[dict[str, Any]]) -> dict[str, Any]:
    tb = tb_dir(run)
    return {
        "failures": failures(events),
        "tensorboard": f"tensorboard --logdir {tb}" if tb.is_dir() else None,
        "wandb_sync": [f"wandb sync {p}" for p in offline_runs(run)],
    }


def mirror_lines(state: dict[str, Any]) -> list[str]:
    """`show`'s lines: nothing when the run has no mirror."""
    lines = [f"  mirror: {f}" for f in state["failures"]]
    if state["tensorboard"]:
        lines.append(f"  mirror tensorboard: {state['tensorboard']}")
    lines += [f"  mirror wandb (offline): {cmd}" for cmd in state["wandb_sync"]]
    return lines
