"""`train_mirrors_on`: training samples/s of a real CPU trainer with both mirrors on
(TensorBoard + W&B offline, `[mirror]`) over the same trainer with them off, measured in the
same run (goal: ratio >= 0.98, the mirrors cost at most 2 %).

The trainers run one at a time in the order off, on, on, off (so a drift of the machine's load
hits both sides alike); each side's value is the median epoch samples/s of its two trainers
(the first epoch, warm-up, left out). The same tiny Swin and file as `train_two_cpu_runs_share`.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path
from typing import Any

from benchmarks.bench_train import SHARE_CLASSES, run_trainers
from benchmarks.common import Figure, rate_figure

MIRRORS = '[mirror]\ntensorboard = true\nwandb = "offline"\n'
GOAL = 0.98


def mirror_figure(root: Path, quick: bool) -> Figure:
    from amc_tui.data.synth import synthesize

    fpc, epochs = (16, 2) if quick else (96, 5)
    ws = root / "mirror"
    data = ws / "data" / "tiny.h5"
    data.parent.mkdir(parents=True, exist_ok=True)
    synthesize(data, classes=SHARE_CLASSES, frames_per_cell=fpc, snr_min=0, snr_max=20, seed=0)
    env = {"WANDB_MODE": "offline", "WANDB_SILENT": "true",
           **{f"WANDB_{k}_DIR": str(ws / f"wandb-{k.lower()}") for k in ("CONFIG", "CACHE", "DATA")}}  # fmt: skip
    order = ["off", "on"] if quick else ["off", "on", "on", "off"]
    rates: dict[str, list[float]] = {"off": [], "on": []}
    runs: list[dict[str, Any]] = []
    for i, side in enumerate(order):
        (r,) = run_trainers(ws, [f"{side}-{i + 1}"], data, fpc, epochs,
                            extra=MIRRORS if side == "on" else "", env_extra=env)  # fmt: skip
        mirrored = (ws / "runs" / r["name"] / "tensorboard").is_dir()
        offline = list((ws / "runs" / r["name"] / "wandb").glob("offline-run-*"))
        if side == "on" and not (mirrored and offline):
            raise RuntimeError(f"trainer {r['name']} wrote no mirror: {r}")
        rates[side] += r["epoch_rates"]
        runs.append({**r, "mirrors": side, "tensorboard": mirrored, "wandb_offline": bool(offline)})
    on, off = statistics.median(rates["on"]), statistics.median(rates["off"])
    return rate_figure(
        "train_mirrors_on", on, "samples/s", "the same trainer with mirrors off", off,
        extra={"runs": runs, "goal_ratio": GOAL, "usable_cores": len(os.sched_getaffinity(0))},
        note=(f"real trainers one at a time ({', '.join(order)}), tiny Swin 32 px batch 32, "
              f"{fpc} frames per cell, {epochs} epochs; TensorBoard + W&B offline vs none; "
              "median epoch samples/s without the first epoch; goal ratio >= 0.98"),
    )  # fmt: skip
