"""`amc-tui ls` and the TUI's first paint with many runs on disk.

The workspace holds `n` run directories written by helper C's fake-run generator
(tests/runs_fixtures.make_fake_runs: config.toml, meta.json, status.json, events.jsonl with
start/step/epoch/checkpoint/end events; no exports). Every figure is a wall time of a fresh
process, best of a few, so interpreter start-up and imports are inside it, as a user sees it.
The baselines are the issue's goals (0.5 s for ls, 1.0 s for first paint); floors measured in
the same run (bare Python start-up, a bare Textual app's first paint, the JSON reads alone)
are recorded next to them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import Figure, best_time, time_figure

REPO = Path(__file__).resolve().parents[1]
LS_GOAL_S = 0.5
PAINT_GOAL_S = 1.0
SIZE = (120, 40)  # terminal size of the first-paint probes


def make_workspace(root: Path, n: int, epochs: int, steps_per_epoch: int) -> tuple[Any, float]:
    sys.path.insert(0, str(REPO / "tests"))
    from runs_fixtures import make_fake_runs

    from amc_tui.workspace import Workspace

    for sub in ("configs", "runs", "data"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    ws = Workspace(root)
    t0 = time.perf_counter()
    make_fake_runs(ws, n, epochs=epochs, steps_per_epoch=steps_per_epoch)
    return ws, time.perf_counter() - t0


def amc_tui_exe() -> list[str]:
    exe = Path(sys.executable).with_name("amc-tui")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "amc_tui.cli"]


def wall(cmd: list[str], repeats: int, env: dict[str, str] | None = None) -> float:
    def once() -> None:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr[-500:]}")

    return best_time(once, repeats)


def json_floor(ws: Any) -> float:
    """Reading and parsing status.json and meta.json of every run, nothing else."""
    for d in os.scandir(ws.runs):
        if d.name.startswith("."):  # runs/.amc-tui/: the state folder (the run index)
            continue
        for name in ("status.json", "meta.json"):
            with open(os.path.join(d.path, name), "rb") as f:
                json.loads(f.read())
    return 0.0


def paint_times(root: Path, args: list[str], timeout: float = 90.0) -> dict[str, float]:
    """Seconds from spawning benchmarks/tui_paint.py to each event line it prints."""
    cmd = [sys.executable, str(REPO / "benchmarks" / "tui_paint.py"), str(root),
           "--size", f"{SIZE[0]}x{SIZE[1]}", *args]  # fmt: skip
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "TEXTUAL": ""}, cwd=str(REPO))  # fmt: skip
    out: dict[str, float] = {}
    try:
        assert p.stdout is not None
        for line in p.stdout:
            ev = json.loads(line)
            out[ev["event"]] = time.perf_counter() - t0
            out[ev["event"] + "_in_child"] = ev["t"]
            if ev["event"] in ("loaded", "timeout"):
                break
            if time.perf_counter() - t0 > timeout:
                break
    finally:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if "painted" not in out:
        err = p.stderr.read()[-800:] if p.stderr else ""
        raise RuntimeError(f"the TUI never painted run rows: {err}")
    return out


def best_paint(root: Path, args: list[str], repeats: int) -> dict[str, float]:
    runs = [paint_times(root, args) for _ in range(repeats)]
    return min(runs, key=lambda r: r["painted"])


def notify_figure(ws: Any, n: int, repeats: int) -> Figure:
    """`observe_workspace` as the queue worker calls it each pass, with notifications
    configured and every run's events older than the ledger (the steady state: nothing to
    send), against the worker's own scan of the same runs."""
    from amc_tui.launch.supervise import scan
    from amc_tui.notify.observe import observe_workspace

    (ws.root / "amc-tui.toml").write_text('[notify]\nurls = ["json://127.0.0.1:9/none"]\n')
    try:
        observe_workspace(ws, scan(ws))  # makes the ledger; reads each active run once
        t_scan = best_time(lambda: scan(ws), repeats, min_s=0.2)
        t_pass = best_time(lambda: observe_workspace(ws, scan(ws)), repeats, min_s=0.2)
    finally:
        (ws.root / "amc-tui.toml").unlink()
    return time_figure(
        f"notify_pass_{n}_runs_s", t_pass, "the worker's scan of the same runs (cached)", t_scan,
        note="the queue worker's pass: its scan plus amc_tui.notify.observe_workspace, "
        "amc-tui.toml configured, nothing new to send, best of a few",
    )  # fmt: skip


def run(root: Path, quick: bool) -> tuple[list[Figure], dict[str, Any]]:
    n = 50 if quick else 1000
    repeats = 1 if quick else 3
    ws, gen_s = make_workspace(root / "ws", n, epochs=10, steps_per_epoch=10)
    extra: dict[str, Any] = {"runs": n, "generate_s": round(gen_s, 2)}
    figs: list[Figure] = []

    # --- amc-tui ls as a subprocess, and list_runs in-process
    from amc_tui.run.rundir import list_runs

    ls_cmd = [*amc_tui_exe(), "--workspace", str(ws.root), "ls"]
    t_ls = wall(ls_cmd, repeats)
    t_py = wall([sys.executable, "-c", "pass"], repeats)
    t_import = wall([sys.executable, "-c", "import amc_tui.cli"], repeats)
    t_list = best_time(lambda: list_runs(ws), repeats)
    t_floor = best_time(lambda: json_floor(ws), repeats)
    figs.append(
        time_figure(
            f"ls_{n}_runs_s", t_ls, f"goal {LS_GOAL_S} s", LS_GOAL_S,
            note=f"`amc-tui ls` wall time as a fresh process, {n} fake runs (10 epochs, 100 step "
            "events each), best of a few",
            extra={"python_startup_s": round(t_py, 4), "import_amc_tui_cli_s": round(t_import, 4),
                   "list_runs_in_process_s": round(t_list, 4)},
        )
    )  # fmt: skip
    figs.append(
        time_figure(
            f"ls_{n}_runs_inprocess_s", t_list,
            "json.loads of status.json + meta.json of every run (the I/O floor)", t_floor,
            note="amc_tui.run.rundir.list_runs(ws) in-process (status, meta, last epoch event per run)",
        )
    )  # fmt: skip

    # --- notifications: the queue worker's pass (amc-tui.toml configured, nothing new to send)
    figs.append(notify_figure(ws, n, repeats))

    # --- TUI first paint (headless, fresh process): helper D's probe, plus our phase marks
    try:
        from amc_tui.tui.bench import first_paint_seconds
    except ImportError:  # older tree: our own probe measures the same moment
        first_paint_seconds = None
    if first_paint_seconds is not None:
        paint = min(first_paint_seconds(ws, SIZE) for _ in range(repeats))
        how = "amc_tui.tui.bench.first_paint_seconds"
    else:
        paint = best_paint(ws.root, [], repeats)["painted"]
        how = "benchmarks/tui_paint.py"
    phases = best_paint(ws.root, [], 1)
    # the floor costs a TUI start each: full runs only
    bare = best_paint(ws.root, ["--floor"], 2) if not quick else {"painted": float("nan")}
    figs.append(
        time_figure(
            f"tui_first_paint_{n}_runs_s", paint, f"goal {PAINT_GOAL_S} s", PAINT_GOAL_S,
            note=f"from spawning the TUI (headless, {SIZE[0]}x{SIZE[1]}) to the refresh that "
            f"first shows run rows (AmcApp.first_rows_painted), via {how}, best of {repeats}",
            extra={
                "bare_textual_app_first_paint_s": round(bare["painted"], 4),
                "all_runs_loaded_s": round(phases["loaded"], 4),
                "phases_s": {k: round(v, 4) for k, v in phases.items() if not k.endswith("_child")},
            },
        )
    )  # fmt: skip
    return figs, extra
