"""Listing with many runs (issue 21): `amc-tui ls` and the app's first paint and all rows
loaded at 1,000 and 10,000 runs, each against the same measurement on an empty workspace in
the same run (the goals: `ls` of 10,000 runs <= 0.5 s and <= 4x the empty workspace; all rows
in the app <= 2 s on 2 cores), and the CPU the app then takes sitting idle (its polls).

Workspaces are written directly: 20 distinct finished runs made by the tests' fake-run
generator (tests/runs_fixtures.make_fake_run: config.toml, meta.json, status.json and
events.jsonl with step and epoch events), then cloned with their own name, id and creation
time in meta.json, so 10,000 runs take seconds to make. Every figure is the wall time of a
fresh process, best of a few (interpreter start-up and imports inside it, as a user sees it),
with the run index warm (made by an earlier command, as after the first `ls` of a day); the
cold figure (the index built by that `ls`) is recorded beside it, and so is the listing
without the index (every run directory read, in-process).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_cli import amc_tui_exe, paint_times, wall
from benchmarks.common import Figure, best_time, time_figure

REPO = Path(__file__).resolve().parents[1]
LS_GOAL_S = 0.5
LS_GOAL_RATIO = 4.0
ALL_ROWS_GOAL_S = 2.0
IDLE_S = 5.0  # seconds of idle CPU measured
IDLE_SETTLE_S = 3.0  # as benchmarks/tui_paint.py waits after loading
TEMPLATES = 20


def make_workspace(root: Path, n: int) -> float:
    """root/{configs,runs,data} with `n` finished runs; seconds it took."""
    sys.path.insert(0, str(REPO / "tests"))
    from runs_fixtures import make_fake_run

    from amc_tui.names import new_id
    from amc_tui.workspace import Workspace

    t0 = time.perf_counter()
    for sub in ("configs", "runs", "data"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    if n == 0:
        return 0.0
    tpl_root = root.parent / f".templates-{root.name}"
    (tpl_root / "runs").mkdir(parents=True, exist_ok=True)
    states = ("completed", "completed", "stopped", "failed")
    templates = [
        make_fake_run(
            Workspace(tpl_root),
            f"tpl-{i}",
            state=states[i % 4],
            seed=i,
            epochs=10,
            steps_per_epoch=10,
            exports=False,
        ).path  # fmt: skip
        for i in range(min(TEMPLATES, n))
    ]
    base = time.time() - 86400 * 30
    for i in range(n):
        tpl = templates[i % len(templates)]
        name = f"bench-run-{i}"
        dest = root / "runs" / name
        dest.mkdir()
        for f in ("config.toml", "status.json", "events.jsonl"):
            shutil.copyfile(tpl / f, dest / f)
        meta = json.loads((tpl / "meta.json").read_text())
        meta.update(id=new_id(), name=name, created_at=base + i, workspace=str(root))
        (dest / "meta.json").write_text(json.dumps(meta))
        old = base + i  # written long ago, as a year's runs are
        for p in (dest / "config.toml", dest / "status.json", dest / "events.jsonl",
                  dest / "meta.json", dest):  # fmt: skip
            os.utime(p, (old, old))
    shutil.rmtree(tpl_root, ignore_errors=True)
    return time.perf_counter() - t0


def idle_cpu(root: Path, seconds: float) -> float:
    """CPU seconds a second of the app sitting idle on the Runs screen after loading (its
    polls and the alerts pass), from benchmarks/tui_paint.py --idle-cpu."""
    cmd = [sys.executable, str(REPO / "benchmarks" / "tui_paint.py"), str(root), "--empty-ok",
           "--idle-cpu", str(seconds)]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=180 + seconds,
                         env={**os.environ, "TEXTUAL": ""}, cwd=str(REPO), check=False)  # fmt: skip
    for line in out.stdout.splitlines():
        ev = json.loads(line)
        if ev["event"] == "idle_cpu":
            return float(ev["cpu_per_s"])
    raise RuntimeError(f"no idle figure from the app: {out.stderr[-800:]}")


def _paint(root: Path, repeats: int) -> dict[str, float]:
    runs = [paint_times(root, ["--empty-ok"], timeout=180.0) for _ in range(repeats)]
    return {k: min(r[k] for r in runs) for k in ("painted", "loaded")}


def run(root: Path, quick: bool) -> tuple[list[Figure], dict[str, Any]]:
    sizes = [50] if quick else [1000, 10000]
    repeats = 1 if quick else 3
    env = {**os.environ, "AMC_TUI_NO_WORKER": "1"}
    empty = root / "empty"
    make_workspace(empty, 0)
    ls = [*amc_tui_exe(), "ls"]
    t_ls_empty = wall([*ls[:-1], "--workspace", str(empty), "ls"], repeats, env)
    paint_empty = _paint(empty, repeats)
    idle_s = 2.0 if quick else IDLE_S
    idle_empty = idle_cpu(empty, idle_s)
    figs: list[Figure] = []
    extra: dict[str, Any] = {"ls_empty_s": round(t_ls_empty, 4),
                             "app_empty_s": {k: round(v, 4) for k, v in paint_empty.items()}}  # fmt: skip
    for n in sizes:
        ws_root = root / f"ws{n}"
        gen_s = make_workspace(ws_root, n)
        cmd = [*ls[:-1], "--workspace", str(ws_root), "ls"]
        t_cold = wall(cmd, 1, env)  # builds the index
        t_ls = wall(cmd, repeats, env)
        from amc_tui.run.rundir import list_runs
        from amc_tui.workspace import Workspace

        t_direct = best_time(lambda ws_root=ws_root: list_runs(Workspace(ws_root)), 1)
        figs.append(
            time_figure(
                f"ls_{n}_runs_indexed_s", t_ls, "`amc-tui ls` of an empty workspace", t_ls_empty,
                note=f"`amc-tui ls` wall time as a fresh process, {n} runs (10 epochs, 100 step "
                f"events each), run index warm, best of {repeats}; goal <= {LS_GOAL_S} s at "
                f"10,000 and <= {LS_GOAL_RATIO}x the empty workspace",
                extra={"cold_index_s": round(t_cold, 4),
                       "direct_list_runs_in_process_s": round(t_direct, 4),
                       "x_empty": round(t_ls / t_ls_empty, 2), "generate_s": round(gen_s, 1)},
            )
        )  # fmt: skip
        paint = _paint(ws_root, repeats)
        figs.append(
            time_figure(
                f"tui_first_paint_{n}_runs_indexed_s", paint["painted"],
                "the app on an empty workspace (its Runs screen ready)", paint_empty["painted"],
                note=f"from spawning the app (headless, 120x40) to the first run rows painted, "
                f"{n} runs, best of {repeats}",
            )
        )  # fmt: skip
        figs.append(
            time_figure(
                f"tui_all_rows_{n}_runs_indexed_s", paint["loaded"],
                "the app on an empty workspace (its Runs screen ready)", paint_empty["loaded"],
                note=f"from spawning the app to every one of {n} runs in the Runs table, best "
                f"of {repeats}; goal <= {ALL_ROWS_GOAL_S} s at 10,000 on 2 cores",
            )
        )  # fmt: skip
        idle = idle_cpu(ws_root, idle_s)
        figs.append(
            Figure(
                f"tui_idle_cpu_{n}_runs", round(idle, 4), "CPU s per s (ratio = baseline / value)",
                "the app idle on an empty workspace", round(idle_empty, 4),
                round(idle_empty / idle, 3) if idle > 0 else float("nan"),
                note=f"CPU time of the app sitting on the Runs screen with {n} runs, "
                f"{idle_s:g} s measured from {IDLE_SETTLE_S:g} s after every row loaded (its "
                "one-second polls and the alerts pass); goal <= 0.15 at 10,000",
            )
        )  # fmt: skip
        shutil.rmtree(ws_root, ignore_errors=True)
    return figs, extra
