"""Analysis, Compare, RUNLOG and GPUs screens on real run directories."""

from __future__ import annotations

import csv
import os

import pytest
from textual.widgets import DataTable, OptionList, Select, Static, TabbedContent
from tui_fixtures import (
    FakeNVML,
    demo_workspace,
    make_app,
    runs_loaded,
    sampler,
    screen_ready,
    wait_for,
)

from amc_tui.config import diff_configs
from amc_tui.tui.screens.analysis import AnalysisScreen
from amc_tui.tui.screens.compare import CompareScreen
from amc_tui.tui.screens.gpus import GpusScreen
from amc_tui.tui.screens.runlog import RunlogScreen
from amc_tui.tui.widgets.gpu_panel import GpuCard
from amc_tui.tui.widgets.heatmap import Heatmap

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return demo_workspace(tmp_path_factory.mktemp("an") / "ws")


def per_cell(path) -> dict[tuple[str, int], dict[str, str]]:
    with open(path, newline="") as f:
        return {(r["modulation"], int(r["snr_db"])): r for r in csv.DictReader(f)}


def check_heatmap_equals_csv(heat: Heatmap, csv_path, metric: str) -> int:
    cells = per_cell(csv_path)
    checked = 0
    for i, mod in enumerate(heat.row_labels):
        for j, snr in enumerate(heat.col_labels):
            row = cells.get((mod, int(snr)))
            if row is None:
                assert heat.values[i][j] is None
                continue
            assert heat.values[i][j] == pytest.approx(float(row[metric])), (mod, snr)
            checked += 1
    assert checked == len(cells)
    return checked


async def test_heatmap_equals_per_cell_csv_then_confusion_f1_trajectory(demo) -> None:
    run = demo.runs / "amber-wave-1"
    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await runs_loaded(pilot)
        app.open_analysis(run)
        screen = await screen_ready(pilot, AnalysisScreen)
        heat = screen.query_one("#an-heat", Heatmap)
        await wait_for(pilot, lambda: screen.data is not None and screen.export == "final")
        check_heatmap_equals_csv(heat, run / "export/final/per_cell.csv", "acc_combined")
        for metric in ("acc_mod", "acc_snr", "snr_mae_db"):
            await pilot.press("m")
            await wait_for(pilot, lambda m=metric: screen.data.metric == m)
            check_heatmap_equals_csv(heat, run / "export/final/per_cell.csv", metric)
        # the exact value and n under the cursor
        await pilot.press("m")  # back to acc_combined
        await wait_for(pilot, lambda: screen.data.metric == "acc_combined")
        heat.focus()
        await pilot.press("down", "right", "right")
        await pilot.pause()
        mod, snr = heat.row_labels[1], int(heat.col_labels[2])
        row = per_cell(run / "export/final/per_cell.csv")[(mod, snr)]
        info = str(screen.query_one("#an-info", Static).render())
        assert f"{mod} @ {snr} dB" in info
        assert f"{100 * float(row['acc_combined']):.2f}%" in info and f"n = {row['n']}" in info
        # another export
        screen.query_one("#an-export", Select).value = "epoch_002"
        await wait_for(pilot, lambda: screen.data.name == "epoch_002")
        check_heatmap_equals_csv(heat, run / "export/epoch_002/per_cell.csv", "acc_combined")
        hard = str(screen.query_one("#an-hard", Static).render())
        assert "hardest cells" in hard and "dB" in hard

        # confusion matrices, F1, trajectory
        cm = screen.query_one("#an-cm-mod", Heatmap)
        assert cm.row_labels == ["4ASK", "8ASK", "BPSK", "QPSK"]
        for row in cm.values:  # normalised per true class
            assert sum(v for v in row if v is not None) == pytest.approx(1.0)
        snr = screen.query_one("#an-cm-snr", Heatmap)
        assert len(snr.row_labels) == 11
        await pilot.press("t")
        assert screen.query_one(TabbedContent).active == "tab-confusion"
        f1 = screen.query_one("#an-f1", DataTable)
        assert f1.row_count == 11  # max(4 modulations, 11 SNRs)
        traj = screen.query_one("#an-traj", DataTable)
        assert traj.row_count == 4  # one row per epoch event


async def test_run_without_exports_says_so(demo) -> None:
    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await runs_loaded(pilot)
        app.open_analysis(demo.runs / "eager-fog-5")
        screen = await screen_ready(pilot, AnalysisScreen)
        info = screen.query_one("#an-info", Static)
        await wait_for(pilot, lambda: "no exports yet" in str(info.render()))


async def test_compare_lists_exactly_the_keys_that_differ(demo) -> None:
    a, b = demo.runs / "amber-wave-1", demo.runs / "bold-river-2"
    import tomllib

    expected = {
        k
        for k, _, _ in diff_configs(
            tomllib.loads((a / "config.toml").read_text()),
            tomllib.loads((b / "config.toml").read_text()),
        )
        if k != "name"
    }
    assert expected == {"train.lr", "model.dropout"}
    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await runs_loaded(pilot)
        app.open_compare(a, b)
        screen = await screen_ready(pilot, CompareScreen)
        await wait_for(pilot, lambda: screen.data is not None)
        table = screen.query_one("#cmp-config-table", DataTable)
        keys = {str(table.get_row_at(i)[0]) for i in range(table.row_count)}
        assert keys == expected
        lr = table.get_row("train.lr")
        assert lr[1:] == ["0.0001", "0.0003"]
        metrics = screen.query_one("#cmp-metrics-table", DataTable)
        assert metrics.row_count == 12  # 6 metrics x (val, train)
        heat = screen.query_one("#cmp-heat", Heatmap)
        assert heat.row_labels == ["4ASK", "8ASK", "BPSK", "QPSK"]
        assert all(v is not None for row in heat.values for v in row)
        await pilot.press("x")  # swap: A and B trade places, the diff keeps its keys
        await wait_for(
            pilot, lambda: table.row_count == 2 and table.get_row("train.lr")[1] == "0.0003"
        )


async def test_runlog_jumps_to_an_entry(demo) -> None:
    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await runs_loaded(pilot)
        app.open_runlog()
        screen = await screen_ready(pilot, RunlogScreen)
        index = screen.query_one("#rl-index", OptionList)
        await wait_for(pilot, lambda: index.option_count == 5)
        scroll = screen.query_one("#rl-scroll")
        assert scroll.scroll_y == 0
        index.focus()
        await pilot.press("end", "enter")  # the last entry
        await wait_for(pilot, lambda: screen.current == "f6f6f6f6")
        target = screen.query_one("#rl-f6f6f6f6")
        await wait_for(pilot, lambda: scroll.scroll_y > 0)
        assert abs(scroll.scroll_y - target.virtual_region.y) <= 1
        await pilot.press("escape")
        # opened from a run: lands on its entry
        app.open_runlog("c3c3c3c3")
        screen = await screen_ready(pilot, RunlogScreen)
        await wait_for(pilot, lambda: screen.current == "c3c3c3c3")


async def test_runlog_missing_file(tmp_path) -> None:
    ws = demo_workspace(tmp_path / "ws")
    ws.runlog.unlink()
    app = make_app(ws)
    async with app.run_test(size=(80, 24)) as pilot:
        await runs_loaded(pilot)
        app.open_runlog()
        screen = await screen_ready(pilot, RunlogScreen)
        head = screen.query_one("#rl-head", Static)
        await wait_for(pilot, lambda: "no RUNLOG.md yet" in str(head.render()))


async def test_gpus_screen_without_and_with_gpus(demo) -> None:
    app = make_app(demo)  # fake NVML whose init fails: no driver
    async with app.run_test(size=(80, 24)) as pilot:
        await runs_loaded(pilot)
        app.open_gpus()
        screen = await screen_ready(pilot, GpusScreen)
        await wait_for(pilot, lambda: bool(screen.query("#gpu-none")))
        assert "no NVIDIA GPU" in str(screen.query_one("#gpu-none", Static).render())
        assert not screen.query(GpuCard)

    app = make_app(demo, gpu_sampler=sampler(FakeNVML(count=2, pids={1: [os.getpid()]})))
    async with app.run_test(size=(120, 40)) as pilot:
        await runs_loaded(pilot)
        app.open_gpus()
        screen = await screen_ready(pilot, GpusScreen)
        await wait_for(pilot, lambda: len(screen.query(GpuCard)) == 2)
        await wait_for(pilot, lambda: "fresh-dew-6" in str(
            screen.query_one("#gpu-card-1 .gpu-holder", Static).render()))  # fmt: skip
        assert "free" in str(screen.query_one("#gpu-card-0 .gpu-holder", Static).render())
        assert "47%" in str(screen.query_one("#gpu-card-1 #lbl-util").render())
