"""`train_mirrors_on`: training samples/s of a real CPU trainer with both mirrors on
(TensorBoard + W&B offline, `[mirror]`) over the same trainer with them off, measured in the
same run (goal: ratio >= 0.98, the mirrors cost at most 2 %).

The two trainers run at the same time, one core's share each (the trainer's automatic thread
count), so the load of whatever else runs on the machine hits both alike: on a shared machine
two trainers one after the other differed by more than 2x between epochs, at once by a few
percent. Each side's value is the median epoch samples/s of its trainers (the first epoch,
warm-up, left out), over `pairs` pairs (the mirrored one named first, then second, so a
difference between the first and the second process started cancels out). Wall-clock rates on
a loaded machine swing more than 2 %; `extra.cpu_s_extra` (CPU seconds, on - off, from wait4)
does not depend on the neighbours and shows what the mirrors cost.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_train import SHARE_CLASSES, run_trainers
from benchmarks.common import Figure, rate_figure


def put_cost_ns(root: Path, n: int) -> dict[str, float]:
    """What the trainer's thread pays per event handed to the mirror (`MirrorSink.put`, the
    only mirror code on the step path), with a target that discards: a step event (filtered
    out at once) and an epoch event (queued)."""
    from amc_tui.mirror.sink import MirrorSink
    from amc_tui.run.rundir import RunDir

    class Discard:
        def write(self, rec: Any) -> None:
            pass

        def close(self) -> None:
            pass

    run = RunDir(root / "put-cost")
    run.path.mkdir(parents=True, exist_ok=True)
    run.meta.write_text(json.dumps({"id": "putcost1", "name": "put-cost"}))
    run.config.write_text("")
    sink = MirrorSink(run, ["tensorboard"], lambda t: Discard(), lambda *a, **k: None)
    out = {}
    for kind in ("step", "epoch"):
        ev = {"t": 0.0, "kind": kind, "epoch": 1, "step": 1, "loss": 1.0}
        t0 = time.perf_counter()
        for _ in range(n):
            sink.put(ev)
        out[f"{kind}_event_ns"] = round((time.perf_counter() - t0) / n * 1e9, 1)
    sink.close("completed")
    return out


MIRRORS = '[mirror]\ntensorboard = true\nwandb = "offline"\n'
GOAL = 0.98


def mirror_figure(root: Path, quick: bool) -> Figure:
    from amc_tui.data.synth import synthesize

    fpc, epochs, pairs = (16, 2, 1) if quick else (96, 6, 2)
    ws = root / "mirror"
    data = ws / "data" / "tiny.h5"
    data.parent.mkdir(parents=True, exist_ok=True)
    synthesize(data, classes=SHARE_CLASSES, frames_per_cell=fpc, snr_min=0, snr_max=20, seed=0)
    env = {"WANDB_MODE": "offline", "WANDB_SILENT": "true",
           **{f"WANDB_{k}_DIR": str(ws / f"wandb-{k.lower()}") for k in ("CONFIG", "CACHE", "DATA")}}  # fmt: skip
    rates: dict[str, list[float]] = {"off": [], "on": []}
    runs: list[dict[str, Any]] = []
    for i in range(pairs):
        on, off = f"on-{i + 1}", f"off-{i + 1}"
        names = [on, off] if i % 2 == 0 else [off, on]
        for r in run_trainers(ws, names, data, fpc, epochs, extra={on: MIRRORS}, env_extra=env):
            side = "on" if r["name"] == on else "off"
            folder = ws / "runs" / r["name"]
            tb, wb = (
                (folder / "tensorboard").is_dir(),
                any((folder / "wandb").glob("offline-run-*")),
            )
            if side == "on" and not (tb and wb):
                raise RuntimeError(f"trainer {r['name']} wrote no mirror: {r}")
            rates[side] += r["epoch_rates"]
            runs.append({**r, "mirrors": side, "tensorboard": tb, "wandb_offline": wb})
    on_rate, off_rate = statistics.median(rates["on"]), statistics.median(rates["off"])
    by = {r["name"]: r for r in runs}
    pair_ratios = [round(by[f"on-{i + 1}"]["samples_per_s"] / by[f"off-{i + 1}"]["samples_per_s"], 3)
                   for i in range(pairs)]  # fmt: skip
    # CPU seconds (wait4: the trainer and the W&B service it reaped), which other processes'
    # load does not inflate the way it does wall-clock rates
    cpu_ratios = [round(by[f"on-{i + 1}"]["cpu_s"] / by[f"off-{i + 1}"]["cpu_s"], 4)
                  for i in range(pairs)]  # fmt: skip
    cpu_extra = [round(by[f"on-{i + 1}"]["cpu_s"] - by[f"off-{i + 1}"]["cpu_s"], 2)
                 for i in range(pairs)]  # fmt: skip
    return rate_figure(
        "train_mirrors_on", on_rate, "samples/s", "the same trainer with mirrors off, at once",
        off_rate,
        extra={"runs": runs, "pair_ratios": pair_ratios, "cpu_s_on_over_off": cpu_ratios,
               "cpu_s_extra": cpu_extra,
               "goal_ratio": GOAL,
               "put": put_cost_ns(ws, 1000 if quick else 100_000),
               "usable_cores": len(os.sched_getaffinity(0))},  # fmt: skip
        note=(f"{pairs} pair(s) of real trainers side by side, one with TensorBoard + W&B "
              f"offline, one without; tiny Swin 32 px batch 32, {fpc} frames per cell, "
              f"{epochs} epochs; median epoch samples/s without the first epoch; goal "
              f"ratio >= {GOAL}; `put`: ns per event on the trainer's thread"),
    )  # fmt: skip
