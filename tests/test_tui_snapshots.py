"""Snapshot tests (pytest-textual-snapshot) of the main screens at 80x24 and 120x40.

Deterministic by construction: fixed run ids and timestamps in the fixtures, an injected
clock, a fake NVML. Update after a deliberate UI change with
`pytest tests/test_tui_snapshots.py --snapshot-update` and review the SVGs.
"""

from __future__ import annotations

import os

import pytest
from textual.widgets import DataTable, Input, TabbedContent
from tui_fixtures import (
    FakeNVML,
    demo_workspace,
    long_run,
    make_app,
    sampler,
    screen_ready,
    wait_for,
)

from amc_tui.tui.screens.analysis import AnalysisScreen
from amc_tui.tui.screens.compare import CompareScreen
from amc_tui.tui.screens.gpus import GpusScreen
from amc_tui.tui.screens.live import LiveScreen
from amc_tui.tui.screens.new_run import NewRunScreen
from amc_tui.tui.widgets.gpu_panel import GpuCard

SIZES = [(80, 24), (120, 40)]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return demo_workspace(tmp_path_factory.mktemp("snap") / "ws")


@pytest.fixture(scope="module")
def runs_demo(tmp_path_factory):
    """The demo workspace plus a 20-epoch run past epoch 10 (the ep column at its widest)."""
    ws = demo_workspace(tmp_path_factory.mktemp("snap-runs") / "ws")
    long_run(ws, epoch=11)
    return ws


async def _loaded(pilot) -> None:
    """The Runs screen has its rows and the table has measured them (column widths)."""
    await wait_for(pilot, lambda: getattr(pilot.app.screen, "loaded", False))
    table = pilot.app.screen.query_one(DataTable)
    await wait_for(pilot, lambda: table.columns["name"].content_width >= len(" fresh-dew-6"))


def _open(open_screen, screen_type, ready):
    async def run_before(pilot) -> None:
        await _loaded(pilot)
        if open_screen is not None:
            open_screen(pilot.app)
            screen = await screen_ready(pilot, screen_type)
            await wait_for(pilot, lambda: ready(screen))
        for inp in pilot.app.screen.query(Input):
            inp.cursor_blink = False
        await pilot.pause(0.3)

    return run_before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_runs_screen(snap_compare, runs_demo, size) -> None:
    assert snap_compare(make_app(runs_demo), terminal_size=size, run_before=_open(None, None, None))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_live_screen(snap_compare, demo, size) -> None:
    def ready(s):
        return s.view is not None and s.view.epochs == [1, 2, 3] and s.info is not None

    run_before = _open(lambda app: app.open_live(demo.runs / "fresh-dew-6"), LiveScreen, ready)
    assert snap_compare(make_app(demo), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_analysis_screen(snap_compare, demo, size) -> None:
    run_before = _open(
        lambda app: app.open_analysis(demo.runs / "amber-wave-1"),
        AnalysisScreen,
        lambda s: s.data is not None and s.export == "final",
    )
    assert snap_compare(make_app(demo), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_new_run_screen(snap_compare, demo, size) -> None:
    run_before = _open(
        lambda app: app.open_new_run(),
        NewRunScreen,
        lambda s: (
            s.source == "demo.toml"
            and s.form.texts["image.size"] == "32"
            and s.data_missing == "data/demo.h5"
        ),  # its data file does not exist: the status says so
    )
    assert snap_compare(make_app(demo), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("tab", ["cmp-metrics", "cmp-cells"])
def test_compare_screen(snap_compare, demo, size, tab) -> None:
    def ready(s) -> bool:
        if s.data is None:
            return False
        s.query_one(TabbedContent).active = tab
        return True

    run_before = _open(
        lambda app: app.open_compare(demo.runs / "amber-wave-1", demo.runs / "bold-river-2"),
        CompareScreen,
        ready,
    )
    assert snap_compare(make_app(demo), terminal_size=size, run_before=run_before)


class FixedProcs:
    """psutil's numbers vary from run to run: fixed ones for the picture."""

    def host(self):
        from amc_tui.tui.models.procstat import HostStat

        return HostStat(cpus=16, cpu_pct=23.0, mem_used_mb=5324.8, mem_total_mb=32054.0)

    def sample(self, pids):
        from amc_tui.tui.models.procstat import ProcStat

        return {p: ProcStat(4242, True, 97.0, 1234.0, 12) for p in pids}  # a fixed pid shown


def test_gpus_screen(snap_compare, demo, monkeypatch) -> None:
    from amc_tui.tui.screens import gpus

    monkeypatch.setattr(gpus, "ProcSampler", FixedProcs)
    app = make_app(demo, gpu_sampler=sampler(FakeNVML(count=2, pids={1: [os.getpid()]})))
    run_before = _open(
        lambda app: app.open_gpus(), GpusScreen, lambda s: len(s.query(GpuCard)) == 2
    )
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
