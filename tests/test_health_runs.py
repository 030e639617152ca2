"""Run health with real trainers: a run that cannot learn (train.lr = 1e-9) is named within
health.min_epochs epochs, and stops there when run.stop_on says so; healthy runs of the demo
config are not marked; a sweep point whose runs learned nothing is marked in `ls`, `show`,
the sweep's follow lines, `group show`, RUNLOG and the app, and never ranked best.
(A NaN run's `diverged`: tests/test_train_run.py.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from train_fixtures import REPO, events, log_text, make_data, make_run, run_trainer

from amc_tui.data.synth import synthesize
from amc_tui.run.rundir import RunDir, read_status

AMC = [sys.executable, "-m", "amc_tui.cli"]
DEAD_LR = 1e-9


def amc(ws: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    # the real trainer, whatever another module's fixture left in the environment
    for key in ("CUDA_VISIBLE_DEVICES", "AMC_TUI_TRAINER_MODULE", "TEST_PAUSE_RUNS"):
        env.pop(key, None)
    return subprocess.run([*AMC, *args], cwd=ws, env=env, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


# --------------------------------------------------------------------------- one dead run


@pytest.fixture(scope="module")
def dead_stopped(tmp_path_factory) -> RunDir:
    """lr = 1e-9, judged from epoch 2, stop_on learned-nothing, 6 epochs planned."""
    ws = tmp_path_factory.mktemp("health_stop")
    for sub in ("configs", "runs"):
        (ws / sub).mkdir()
    data = make_data(ws / "data" / "tiny.h5")
    run = make_run(ws, "dead-1", data, epochs=6,
                   extra='stop_on = ["learned-nothing"]\n[health]\nmin_epochs = 2\n')  # fmt: skip
    run.config.write_text(run.config.read_text().replace("lr = 0.002", f"lr = {DEAD_LR}"))
    assert run_trainer(run) == 0, log_text(run)[-3000:]
    return run


def test_a_run_that_cannot_learn_is_stopped_at_min_epochs_with_the_rule(dead_stopped) -> None:
    run = dead_stopped
    st = read_status(run)
    assert st["state"] == "stopped" and st["epoch"] == 2  # of 6 planned
    assert st["stop_reason"] == "health: learned-nothing"
    assert [h["rule"] for h in st["health"]] == ["learned-nothing"]
    (h,) = events(run, "health")
    assert h["rule"] == "learned-nothing" and h["active"] and h["epoch"] == 2
    assert h["action"] == "stop"
    mod = h["values"]["mod"]
    assert mod["chance"] == pytest.approx(0.25) and mod["p"] > 0.01  # 4 balanced classes
    assert f"val modulation {100 * mod['acc']:.1f} % vs chance 25.0 %" in h["message"]
    assert len(events(run, "epoch")) == 2
    # the state it stopped in is saved: last.pt of epoch 2, then the end with the reason
    saved = [e for e in events(run, "checkpoint") if not e["best"]]
    assert saved[-1]["epoch"] == 2 and run.last_ckpt.is_file()
    end = events(run)[-1]
    assert end["kind"] == "end" and end["state"] == "stopped"
    assert end["reason"] == "health: learned-nothing"
    assert "-> stopping (run.stop_on)" in log_text(run)


def test_show_and_tail_name_the_rule_and_its_numbers(dead_stopped) -> None:
    ws = dead_stopped.path.parents[1]
    out = amc(ws, "show", "dead-1")
    assert out.returncode == 0, out.stderr
    assert "stopped by health: learned-nothing (run.stop_on)" in out.stdout
    msg = events(dead_stopped, "health")[0]["message"]
    assert f"  health: {msg} (epoch 2)" in out.stdout
    data = json.loads(amc(ws, "show", "dead-1", "--json").stdout)
    assert data["run"]["health"][0]["rule"] == "learned-nothing"
    assert data["run"]["stop_reason"] == "health: learned-nothing"
    tail = amc(ws, "tail", "dead-1").stdout
    assert "stopped the run (run.stop_on)" in tail and "end: stopped by health" in tail


# --------------------------------------------------------------------------- a sweep

SWEEP = """\
base = "../demo.toml"
notes = "Does a dead learning rate show?"

[data]
path = "data/demo16.h5"
frames_per_cell = 16

[train]
epochs = 2
threads = 1

[run]
share_device = true

[health]
min_epochs = 2

[sweep]
strategy = "grid"
repeats = 2
metric = "val.acc_combined"
max_parallel = 2

[sweep.axes]
"train.lr" = [3e-3, 1e-9]
"""


@pytest.fixture(scope="module")
def swept(tmp_path_factory) -> tuple[Path, str]:
    """The demo config (17 classes x 26 SNRs, 16 frames per cell) at a working and a dead
    learning rate, two seeds each, followed to its end by `amc-tui sweep`."""
    ws = tmp_path_factory.mktemp("health_sweep")
    for sub in ("configs/sweeps", "runs", "data"):
        (ws / sub).mkdir(parents=True)
    shutil.copy(REPO / "configs" / "demo.toml", ws / "configs" / "demo.toml")
    (ws / "configs" / "sweeps" / "lr.toml").write_text(SWEEP)
    synthesize(ws / "data" / "demo16.h5", classes="digital", frames_per_cell=16, seed=0)
    out = amc(ws, "sweep", "configs/sweeps/lr.toml", timeout=900)
    logs = "".join(f"\n{p}:\n{p.read_text()[-1500:]}" for p in ws.glob("runs/*/train.log"))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:] + logs
    return ws, out.stdout


def _members(ws: Path) -> dict[str, dict]:
    rows = json.loads(amc(ws, "ls", "--json").stdout)
    return {r["name"]: r for r in rows}


def test_healthy_demo_runs_are_not_marked_and_dead_ones_are(swept) -> None:
    ws, _ = swept
    rows = _members(ws)
    assert len(rows) == 4
    for name, row in rows.items():
        run = RunDir(Path(row["dir"]))
        rules = [e["rule"] for e in events(run, "health")]
        if "-p0-" in name:  # lr 3e-3: both heads above chance after 2 epochs
            assert row["state"] == "completed" and row["health"] == [] and rules == [], name
        else:
            assert row["state"] == "completed" and rules == ["learned-nothing"], name
            assert [h["rule"] for h in row["health"]] == ["learned-nothing"]
            # chance by hand: the most frequent class's share of the validation split
            conf = pd.read_csv(run.epoch_export(2) / "confusion_mod.csv", index_col=0)
            per_class = conf.sum(axis=1)
            chance = per_class.max() / per_class.sum()
            assert 1 / 17 <= chance < 0.1
            (h,) = events(run, "health")
            assert h["values"]["mod"]["chance"] == pytest.approx(chance)
            assert f"vs chance {100 * chance:.1f} %" in row["health"][0]["message"]
    table = amc(ws, "ls").stdout.splitlines()
    assert "HEALTH" in table[0]
    for line in table[1:]:
        assert ("no-learn" in line) == ("-p1-" in line.split()[0]), line


def test_the_sweep_follow_lines_say_what_each_rule_measured(swept) -> None:
    _, out = swept
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if "-p1-" in line and " completed" in line:
            assert lines[i + 1].startswith("    learned nothing: val "), lines[i : i + 2]
            break
    else:
        raise AssertionError(out)


def test_a_point_that_learned_nothing_is_marked_and_never_ranked(swept) -> None:
    ws, _ = swept
    out = amc(ws, "group", "show", "lr").stdout
    rows = {ln.split()[1]: ln.split() for ln in out.splitlines() if ln[:1] in "1-" and " p" in ln}
    assert rows["p0"][0] == "1" and rows["p1!"][0] == "-", out  # unranked, marked
    assert "p1 (train.lr=1e-09): 2/2 runs learned nothing" in out
    assert "best point: p0 " in out
    runlog = (ws / "RUNLOG.md").read_text()
    group = runlog[runlog.index("## Group lr") :]
    assert "**Health**: ⚠ p1 (train.lr=1e-09): 2/2 runs learned nothing" in group
    # each dead member's own entry: the verdict with its p-value, and no praise
    dead = [n for n in _members(ws) if "-p1-" in n]
    for name in dead:
        entry = runlog[runlog.index(f"# {name}") :]
        findings = entry[entry.index("### Findings") :].split("\n\n")[0]
        assert "❌ learned nothing: val modulation" in findings and "(p = " in findings
        assert "no overfitting sign" not in findings and "new best" not in findings


@pytest.mark.anyio
async def test_the_app_marks_the_runs_and_live_says_why(swept) -> None:
    from textual.widgets import DataTable, Static
    from tui_fixtures import make_app, runs_loaded, wait_for

    from amc_tui.tui.screens.live import LiveScreen
    from amc_tui.workspace import Workspace

    ws, _ = swept
    rows = _members(ws)
    dead = next(r for n, r in rows.items() if "-p1-" in n)
    alive = next(r for n, r in rows.items() if "-p0-" in n)
    app = make_app(Workspace(ws))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await runs_loaded(pilot)
        table = screen.query_one(DataTable)

        def state(row: dict) -> str:
            return table.get_cell(row["dir"], "state").plain.strip()

        assert state(dead) == "completed!" and state(alive) == "completed"
        app.push_screen(LiveScreen(Path(dead["dir"])))
        head = lambda: str(app.screen.query_one("#live-head", Static).render())  # noqa: E731
        await wait_for(pilot, lambda: "learned nothing: val" in head())
        assert dead["health"][0]["message"] in head().replace("\n", "")
