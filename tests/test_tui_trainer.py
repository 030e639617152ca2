"""End to end with the real trainer (`python -m amc_tui.train`): launch a tiny run from the
New-run form, watch its epochs arrive in the Live screen, check the Analysis heatmap against
the run's own per_cell.csv, and stop it from the UI (it waits for that, paused in epoch 2:
tests/pausing_trainer.py)."""

from __future__ import annotations

import pytest
from runs_fixtures import kill_running
from test_tui_analysis import check_heatmap_equals_csv
from test_tui_new_run import open_form
from textual.widgets import Static
from train_fixtures import launch_paused_trainers, write_tiny_workspace
from tui_fixtures import make_app, screen_ready, wait_for

from amc_tui.run.rundir import read_run
from amc_tui.run.runlock import pid_alive
from amc_tui.tui.screens.analysis import AnalysisScreen
from amc_tui.tui.screens.dialogs import Confirm
from amc_tui.tui.screens.live import LiveScreen
from amc_tui.tui.widgets.curves import Curves
from amc_tui.tui.widgets.heatmap import Heatmap

pytestmark = pytest.mark.anyio
EPOCHS = 4
PAUSE = 3  # 2 steps an epoch: epoch 2's first step, after epoch 1's export


@pytest.fixture
def ws(tmp_path, monkeypatch):
    monkeypatch.setenv("AMC_TUI_NO_WORKER", "1")
    # the real trainer, paused in epoch 2 until `s` stops it: however fast it trains, it still
    # runs when `s` is pressed
    launch_paused_trainers(monkeypatch, f"*:{PAUSE}")
    # fake.toml: the name open_form picks
    ws = write_tiny_workspace(tmp_path / "ws", "fake.toml", epochs=EPOCHS, stop_grace_s=20.0)
    yield ws
    kill_running(ws)


async def test_real_trainer_launch_live_analysis_stop(ws) -> None:
    app = make_app(ws, live_poll_s=0.25)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_form(pilot, epochs=str(EPOCHS))  # picks configs/fake.toml (the tiny config)
        await pilot.press("ctrl+l")
        live = await screen_ready(pilot, LiveScreen)
        run = live.run_dir
        await wait_for(pilot, lambda: read_run(run).state == "running", timeout=60)
        # the trainer writes its own pid first thing, once torch is imported
        await wait_for(pilot, lambda: read_run(run).pid, timeout=60)
        pid = read_run(run).pid
        assert pid_alive(pid)
        # epochs arrive from the real trainer and the curves follow
        acc = live.query_one("#plot-acc", Curves)
        await wait_for(pilot, lambda: len(acc.series.get("combined", ([], []))[0]) >= 1,
                       timeout=150)  # fmt: skip
        await wait_for(pilot, lambda: (run / "export/epoch_001/per_cell.csv").exists(), timeout=60)
        await pilot.press("a")
        analysis = await screen_ready(pilot, AnalysisScreen)
        await wait_for(pilot, lambda: analysis.data is not None, timeout=30)
        export = analysis.export
        check_heatmap_equals_csv(
            analysis.query_one("#an-heat", Heatmap), run / "export" / export / "per_cell.csv",
            "acc_combined",
        )  # fmt: skip
        await pilot.press("escape")
        await screen_ready(pilot, LiveScreen)
        await pilot.press("s")
        await screen_ready(pilot, Confirm)
        await pilot.press("y")
        await wait_for(pilot, lambda: read_run(run).state == "stopped", timeout=90)
        assert read_run(run).epoch == PAUSE // 2  # where it waited for the stop
        await wait_for(pilot, lambda: not pid_alive(pid), timeout=30)
        head = live.query_one("#live-head", Static)
        await wait_for(pilot, lambda: "stopped" in str(head.render()))
