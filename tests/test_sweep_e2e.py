"""Sweeps end to end on the CPU, from a fresh workspace, through the real queue (the detached
worker `amc-tui sweep --detach` leaves) and the real trainer on a tiny config.

One session fixture runs a 2-point grid x 2 repeats (4 runs, max_parallel 3) with one member
killed with SIGKILL mid-run, then `group resume`. The tests then check what it left on disk
against an independent recomputation from the members' exports. An Optuna study stopped and
resumed goes through the same queue and group code with the stand-in trainer
(tests/test_groups.py): each real trainer here costs seconds of CPU, mostly imports.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from runs_fixtures import group_json, group_state
from runs_fixtures import wait_for as shared_wait_for
from scipy import stats
from train_fixtures import WS_TINY, wait_paused

from amc_tui.data.synth import synthesize
from amc_tui.run.rundir import (
    RunDir,
    list_runs,
    pid_alive,
    read_events,
    read_run,
    read_status,
    run_dirs,
)
from amc_tui.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]
LIMIT_S = 300.0
BASE = WS_TINY.format(epochs=1, share_device="share_device = true\n", stop_grace_s=5)
GRID = """\
base = "../tiny.toml"
notes = "does DWA beat uncertainty weighting?"
[sweep]
strategy = "grid"
repeats = 2
max_parallel = 3
[sweep.axes]
"loss.weighting" = ["uncertainty", "dwa"]
"""
KILLED = "e2e-p0-r1"


def wait_for(pred: Any, timeout: float = LIMIT_S, every: float = 0.1) -> Any:
    """runs_fixtures.wait_for with this file's limit and poll interval."""
    return shared_wait_for(pred, timeout, every)


@dataclass
class Out:
    returncode: int
    stdout: str
    stderr: str


def cli(ws: Workspace, *args: str) -> Out:
    """`amc-tui -w ROOT ARGS` in this process (each CLI process would import pandas and
    scipy again: seconds of CPU on a loaded machine)."""
    from amc_tui.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["-w", str(ws.root), *args])
    return Out(code, out.getvalue(), err.getvalue())


def cli_process(ws: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), str(REPO)])}
    return subprocess.run(
        [sys.executable, "-m", "amc_tui.cli", "-w", str(ws.root), *args], capture_output=True,
        text=True, stdin=subprocess.DEVNULL, timeout=120, env=env,
    )  # fmt: skip


def show(ws: Workspace, name: str) -> dict[str, Any]:
    out = cli(ws, "group", "show", name, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


class Watcher(threading.Thread):
    """Samples how many members of a group run at once."""

    def __init__(self, ws: Workspace, prefix: str) -> None:
        super().__init__(daemon=True)
        self.ws, self.prefix, self.most = ws, prefix, 0
        self.halt = threading.Event()

    def run(self) -> None:  # a member over the limit would run for seconds: 0.2 s sees it
        while not self.halt.wait(0.2):
            runs = list_runs(self.ws, with_last_epoch=False)
            n = sum(1 for r in runs if r.name.startswith(self.prefix) and r.state == "running")
            self.most = max(self.most, n)


def _kill_at_pause(ws: Workspace, name: str) -> None:
    """SIGKILL the member's trainer group where it waits, paused after its first step."""
    rd = RunDir(ws.runs / name)
    wait_paused(rd, 1, timeout=LIMIT_S)
    os.killpg(read_status(rd)["pgid"], signal.SIGKILL)


@pytest.fixture(scope="session")
def sweeps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("sweep-ws")
    for sub in ("configs/sweeps", "runs", "data"):
        (root / sub).mkdir(parents=True)
    synthesize(root / "data" / "tiny.h5", classes=["BPSK", "QPSK", "8PSK"], frames_per_cell=8,
               snr_min=0, snr_max=10, seed=0)  # fmt: skip
    (root / "configs" / "tiny.toml").write_text(BASE)
    (root / "configs" / "sweeps" / "grid.toml").write_text(GRID)
    ws = Workspace(root)
    saved = dict(os.environ)
    for key in ("AMC_TUI_NO_WORKER", "CUDA_VISIBLE_DEVICES"):
        os.environ.pop(key, None)
    # the real trainer; the killed member's first start waits after its first step (it would
    # end in a second: the kill must not race it), its resume trains on
    os.environ["AMC_TUI_TRAINER_MODULE"] = "pausing_trainer"
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO / "tests"), str(REPO)])
    os.environ["TEST_PAUSE_RUNS"] = f"{KILLED}:1"
    out: dict[str, Any] = {"ws": ws}
    try:
        watcher = Watcher(ws, "e2e-")
        watcher.start()
        out["dry"] = cli(ws, "sweep", "configs/sweeps/grid.toml", "--dry-run")
        out["grid"] = cli_process(ws, "sweep", "configs/sweeps/grid.toml", "--name", "e2e", "-d")
        assert out["grid"].returncode == 0, out["grid"].stderr
        _kill_at_pause(ws, KILLED)
        # the killed member: crashed, excluded and named while the others run; then resumed
        wait_for(lambda: f"💥 {KILLED} (crashed, excluded)" in ws.runlog.read_text(), every=0.2)
        out["crashed_show"] = show(ws, "e2e")
        out["crashed_text"] = cli(ws, "group", "show", "e2e").stdout
        out["grid_resume"] = cli(ws, "group", "resume", "e2e")
        wait_for(lambda: group_state(ws, "e2e") == "done", every=0.5)
        # a trainer's last act is its RUNLOG update: wait for every trainer to exit
        wait_for(lambda: not any(pid_alive(read_status(RunDir(d)).get("pid")) for d in run_dirs(ws)),
                 every=0.2)  # fmt: skip
        watcher.halt.set()
        watcher.join(5)
        out["most_running"] = watcher.most
        yield out
    finally:
        os.environ.clear()
        os.environ.update(saved)
        for info in list_runs(ws, with_last_epoch=False):
            if info.state == "running" and info.pgid:
                with contextlib.suppress(OSError):
                    os.killpg(info.pgid, signal.SIGKILL)


def test_dry_run_prints_the_points_and_creates_nothing(sweeps) -> None:
    dry = sweeps["dry"]
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert "2 points x 2 repeats = 4 runs" in lines[0]
    assert any(ln.split()[:3] == ["p1", "dwa", "0,"] for ln in lines), dry.stdout
    assert "nothing created" in lines[-1]


def _recompute(ws: Workspace, names: list[str], metric: str) -> tuple[int, float, float, float]:
    """n, mean, std and CI half-width from the members' epoch exports (best epoch: the one
    with the highest val.acc_combined, the earliest on a tie)."""
    split, _, key = metric.partition(".")
    values = []
    for name in names:
        exports = sorted((ws.runs / name / "export").glob("epoch_*/summary.json"))
        rows = [json.loads(p.read_text()) for p in exports]
        best = max(rows, key=lambda r: (r["val"]["acc_combined"], -r["epoch"]))
        values.append(best[split][key])
    x = np.array(values, dtype=float)
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.975, len(x) - 1)) * std / math.sqrt(len(x))
    return len(x), float(x.mean()), std, half


def test_grid_finishes_and_stats_match_an_independent_recomputation(sweeps) -> None:
    ws = sweeps["ws"]
    data = show(ws, "e2e")
    assert data["group"]["state"] == "done"
    assert [p["key"] for p in data["points"]] == ["p0", "p1"]
    assert sweeps["most_running"] <= 3  # max_parallel (4 runs)
    for p in data["points"]:
        names = [m["name"] for m in p["members"]]
        assert names == [f"e2e-{p['key']}-r0", f"e2e-{p['key']}-r1"]
        assert all(m["state"] == "completed" for m in p["members"]) and p["n"] == 2
        for metric in ("val.loss", "val.acc_combined", "val.acc_mod", "train.loss"):
            n, mean, std, half = _recompute(ws, names, metric)
            got = p["best"][metric]
            assert got["n"] == n == 2
            assert got["mean"] == pytest.approx(mean, abs=1e-9)
            assert got["std"] == pytest.approx(std, abs=1e-9)
            assert got["ci_lo"] == pytest.approx(mean - half, abs=1e-9)
            assert got["ci_hi"] == pytest.approx(mean + half, abs=1e-9)
        meta = json.loads((ws.runs / names[1] / "meta.json").read_text())
        assert meta["group"] == "e2e" and meta["repeat"] == 1
        assert meta["point"] == group_json(ws, "e2e")["points"][p["index"]]["values"]
    seeds = {m["seed"] for p in data["points"] for m in p["members"]}
    assert seeds == {0, 1}


def test_killed_member_is_crashed_excluded_named_then_resume_completes_it(sweeps) -> None:
    crashed = sweeps["crashed_show"]
    p0 = crashed["points"][0]
    assert p0["progress"]["failed"] == 1 and p0["n"] <= 1
    assert {"name": KILLED, "point": "p0", "reason": "crashed"} in crashed["excluded"]
    assert f"{KILLED} (p0): crashed" in sweeps["crashed_text"]
    assert sweeps["grid_resume"].returncode == 0 and KILLED in sweeps["grid_resume"].stdout
    info = read_run(sweeps["ws"].runs / KILLED)
    assert info.state == "completed"
    ends = [e["state"] for e in read_events(info.rundir.events) if e["kind"] == "end"]
    assert ends == ["crashed", "completed"]


def test_runlog_group_entry_has_the_table_effects_and_members(sweeps) -> None:
    ws = sweeps["ws"]
    gid = group_json(ws, "e2e")["id"]
    text = ws.runlog.read_text()
    a = text.index(f"<!-- amc-tui:group-begin {gid} -->")
    b = text.index(f"<!-- amc-tui:group-end {gid} -->")
    entry = text[a:b]
    assert "**Question**: does DWA beat uncertainty weighting" in entry
    assert "**Status**: **DONE** (4 done)" in entry
    assert "| p1 | loss.weighting=dwa | 2 |" in entry
    assert "- loss.weighting dwa vs uncertainty: " in entry and "n = 2 vs 2" in entry
    assert "(crashed, excluded)" not in entry  # refreshed when the resumed member ended
    member = text[text.index("## e2e-p1-r1") :]
    assert "**Group**: e2e, point loss.weighting=dwa, repeat 1" in member
    out = cli(ws, "runlog", "sync")  # every writer renders the same bytes
    assert out.returncode == 0 and ws.runlog.read_text() == text, out.stdout


def test_plot_writes_figures_of_a_group(sweeps, tmp_path: Path) -> None:
    from matplotlib.image import imread

    from amc_tui.sweeps.plot import DPI, SIZES

    out = cli(sweeps["ws"], "plot", "e2e", "--out", str(tmp_path), "--figures", "snr")
    assert out.returncode == 0, out.stderr
    (path,) = [Path(p) for p in out.stdout.split()]
    assert path == tmp_path / "acc_vs_snr.png" and sorted(tmp_path.iterdir()) == [path]
    img = imread(path)
    w, h = SIZES["snr"]
    assert img.shape[:2] == (round(h * DPI), round(w * DPI))
    assert float(np.std(img[..., :3])) > 0.01, f"{path.name} is blank"
