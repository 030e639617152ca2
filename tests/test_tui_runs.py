"""Runs (home) screen and navigation, on real run directories."""

from __future__ import annotations

import shutil

import pytest
from runs_fixtures import make_fake_run
from textual.widgets import DataTable, Input
from tui_fixtures import (
    T0,
    add_epoch,
    demo_workspace,
    make_app,
    runs_loaded,
    scale_workspace,
    screen_ready,
    wait_for,
)

from amc_tui.tui.screens.analysis import AnalysisScreen
from amc_tui.tui.screens.compare import CompareScreen
from amc_tui.tui.screens.gpus import GpusScreen
from amc_tui.tui.screens.live import LiveScreen
from amc_tui.tui.screens.new_run import NewRunScreen
from amc_tui.tui.screens.runlog import RunlogScreen
from amc_tui.tui.screens.runs import RunsBatch, RunsScreen

pytestmark = pytest.mark.anyio


@pytest.fixture
def demo(tmp_path):
    return demo_workspace(tmp_path / "ws")


def _cell(table: DataTable, ws, name: str, col: str) -> str:
    value = table.get_cell(str(ws.runs / name), col)
    return getattr(value, "plain", str(value)).strip()


def _names(table: DataTable) -> list[str]:
    return [str(table.get_row_at(i)[0]).lstrip("* ").strip() for i in range(table.row_count)]


async def test_table_lists_runs_and_updates_cells_in_place(demo) -> None:
    app = make_app(demo, runs_poll_s=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await runs_loaded(pilot)
        table = screen.query_one(DataTable)
        assert table.row_count == 6
        assert _names(table)[0] == "fresh-dew-6"  # newest first
        assert _cell(table, demo, "fresh-dew-6", "state") == "running"
        assert _cell(table, demo, "calm-sky-3", "state") == "failed"
        assert _cell(table, demo, "fresh-dew-6", "epoch") == "3/10"

        rebuilt = {"clear": 0, "add_row": 0}
        orig_clear, orig_add = table.clear, table.add_row

        def clear(*a, **k):
            rebuilt["clear"] += 1
            return orig_clear(*a, **k)

        def add_row(*a, **k):
            rebuilt["add_row"] += 1
            return orig_add(*a, **k)

        table.clear, table.add_row = clear, add_row  # type: ignore[method-assign]
        add_epoch(demo, "fresh-dew-6", 4, 0.55)
        await wait_for(pilot, lambda: _cell(table, demo, "fresh-dew-6", "epoch") == "4/10")
        assert _cell(table, demo, "fresh-dew-6", "best") == "55.0"
        assert rebuilt == {"clear": 0, "add_row": 0}  # cells changed in place

        make_fake_run(demo, "giddy-pond-7", run_id="g7g7g7g7", seed=7, created_at=T0 + 70)
        await wait_for(pilot, lambda: table.row_count == 7)
        assert rebuilt["clear"] == 0
        shutil.rmtree(demo.runs / "amber-wave-1")
        await wait_for(pilot, lambda: table.row_count == 6)
        assert "amber-wave-1" not in _names(table)


async def test_polls_post_only_changed_and_active_runs(demo) -> None:
    """After the first scan a poll posts the active runs (their state can change with no
    file change) and runs whose files changed, each of those once."""
    app = make_app(demo, runs_poll_s=0.05)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await runs_loaded(pilot)
        posted: list[list[str]] = []
        post = screen.post_message

        def record(msg):
            if isinstance(msg, RunsBatch) and msg.final:
                posted.append(sorted(i.name for i in msg.infos))
            return post(msg)

        screen.post_message = record  # type: ignore[method-assign]
        await wait_for(pilot, lambda: len(posted) >= 3)
        assert all(names == ["eager-fog-5", "fresh-dew-6"] for names in posted)
        add_epoch(demo, "amber-wave-1", 5, 0.61)
        await wait_for(pilot, lambda: any("amber-wave-1" in names for names in posted))
        seen = next(i for i, names in enumerate(posted) if "amber-wave-1" in names)
        await wait_for(pilot, lambda: len(posted) >= seen + 3)
        assert not any("amber-wave-1" in names for names in posted[seen + 1 :])
        table = screen.query_one(DataTable)
        assert _cell(table, demo, "amber-wave-1", "best") == "61.0"


async def test_filter_sort_and_state_cycle(demo) -> None:
    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await runs_loaded(pilot)
        table = screen.query_one(DataTable)
        await pilot.press("slash")
        assert screen.query_one("#runs-filter", Input).has_focus
        await pilot.press(*"state:failed", "enter")
        assert _names(table) == ["calm-sky-3"]
        await pilot.press("escape")
        assert table.row_count == 6
        await pilot.press("slash", *"tag:baseline", "enter")
        assert sorted(_names(table)) == ["amber-wave-1", "bold-river-2"]
        await pilot.press("escape", "f")
        assert _names(table) == ["fresh-dew-6"]  # state:running
        await pilot.press("f")
        assert _names(table) == ["eager-fog-5"]  # state:queued
        screen.set_filter("")
        screen.sort_column, screen.sort_reverse = "name", False
        screen._sort()
        assert _names(table) == sorted(_names(table))
        await pilot.press("O")
        assert _names(table) == sorted(_names(table), reverse=True)
        await pilot.press("o")  # next column: state
        assert screen.sort_column == "state"


async def test_navigation_to_every_screen_and_back(demo) -> None:
    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await runs_loaded(pilot)
        for keys, screen_type in (
            (("enter",), LiveScreen),
            (("a",), AnalysisScreen),
            (("l",), RunlogScreen),
            (("g",), GpusScreen),
            (("n",), NewRunScreen),
        ):
            await pilot.press(*keys)
            await screen_ready(pilot, screen_type)
            await pilot.pause(0.2)
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        # compare: mark two runs
        await pilot.press("down", "down", "down", "down", "m", "down", "m", "c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        names = {app.screen.a_dir.name, app.screen.b_dir.name}
        assert names == {"bold-river-2", "amber-wave-1"}
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        # quitting leaves the (fake) running run alone
        await pilot.press("q")
    assert (demo.runs / "fresh-dew-6" / "status.json").read_text().count('"running"') == 1


async def test_every_action_is_in_the_command_palette(demo) -> None:
    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await runs_loaded(pilot)
        for screen in (
            app.screen,
            LiveScreen(demo.runs / "fresh-dew-6"),
            AnalysisScreen(demo.runs / "amber-wave-1"),
            CompareScreen(demo.runs / "amber-wave-1", demo.runs / "bold-river-2"),
            RunlogScreen(),
            GpusScreen(),
            NewRunScreen(),
        ):
            titles = {c.title for c in app.get_system_commands(screen)}
            for b in type(screen).BINDINGS:
                if b.description:
                    assert b.description in titles, (type(screen).__name__, b.description)
            assert {"Go to Runs", "Go to GPUs", "Go to RUNLOG", "Go to New run"} <= titles
        # and a palette command runs its action on the screen
        cmd = next(c for c in app.get_system_commands(app.screen) if c.title == "GPUs")
        await cmd.callback()
        await screen_ready(pilot, GpusScreen)


async def test_thousand_runs_fill_progressively(tmp_path) -> None:
    ws = scale_workspace(tmp_path / "big", 1000)
    app = make_app(ws)
    async with app.run_test(size=(200, 50)) as pilot:
        screen = await runs_loaded(pilot)
        table = screen.query_one(DataTable)
        assert table.row_count == 1000
        assert len(screen.batches) >= 2 and not screen.batches[0][1]  # rows before the end
        assert sum(n for n, _ in screen.batches) == 1000
        screen.set_filter("fake-run-99")
        await wait_for(pilot, lambda: table.row_count == 11)
        assert sorted(_names(table)) == ["fake-run-99", *[f"fake-run-99{i}" for i in range(10)]]
