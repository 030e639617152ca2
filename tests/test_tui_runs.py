"""Runs (home) screen and navigation, on real run directories."""

from __future__ import annotations

import os
import shutil

import pytest
from runs_fixtures import make_fake_run
from textual.widgets import DataTable, Input
from tui_fixtures import (
    T0,
    add_epoch,
    add_plain_epoch,
    demo_workspace,
    fresh_table_lines,
    long_run,
    make_app,
    new_workspace,
    resumed_run,
    runs_loaded,
    scale_workspace,
    screen_lines,
    screen_ready,
    table_lines,
    unknown_run,
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


async def test_a_filter_that_matches_nothing_says_so(demo) -> None:
    """An empty result is a line under the headers naming the filter and how to clear it
    (it was an empty table); the line goes with the filter. An empty workspace says how to
    start a run."""
    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await runs_loaded(pilot)
        table = screen.query_one(DataTable)
        await pilot.press("slash", *"zzz", "enter")
        await wait_for(pilot, lambda: table.row_count == 0)
        await pilot.pause(0.1)
        text = "\n".join(screen_lines(app))
        assert 'No run matches "zzz"' in text and "escape clears the filter" in text, text
        await pilot.press("escape")
        await wait_for(pilot, lambda: table.row_count == 6)
        await pilot.pause(0.1)
        assert "No run matches" not in "\n".join(screen_lines(app))
    app = make_app(new_workspace(demo.root.parent / "empty"))
    async with app.run_test(size=(80, 24)) as pilot:
        await runs_loaded(pilot)
        await pilot.pause(0.1)
        assert "No runs yet: n opens the New run form" in "\n".join(screen_lines(app))


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


async def test_rows_with_equal_sort_keys_keep_their_order_across_refreshes(demo) -> None:
    """Sorted by state, the completed runs tie. A running run that completes joins them; the
    table's order of the ties is then the same after a refill (a filter set and cleared) as
    before it, and in a new session: ties go newest first, then by name (they followed
    whichever order the rows arrived in)."""
    from amc_tui.run.rundir import RunDir, write_status

    app = make_app(demo, runs_poll_s=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await runs_loaded(pilot)
        table = screen.query_one(DataTable)
        await pilot.press("o", "o")  # created -> name -> state
        assert screen.sort_column == "state" and not screen.sort_reverse
        write_status(RunDir(demo.runs / "fresh-dew-6"), state="completed", pid=None,
                     ended_at=T0 + 500)  # fmt: skip
        await wait_for(pilot, lambda: _cell(table, demo, "fresh-dew-6", "state") == "completed")
        await pilot.pause(0.3)
        before = _names(table)
        done = [n for n in before if n in ("fresh-dew-6", "bold-river-2", "amber-wave-1")]
        assert done == ["fresh-dew-6", "bold-river-2", "amber-wave-1"], before  # newest first
        await pilot.press("slash", *"e", "enter")  # a refill of the table ...
        await pilot.press("escape")  # ... and another
        await wait_for(pilot, lambda: table.row_count == 6)
        await pilot.pause(0.3)
        assert _names(table) == before
    os.utime(demo.runs / "amber-wave-1")  # the first scan reads the newest folders first
    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await runs_loaded(pilot)
        await wait_for(pilot, lambda: screen.sort_column == "state")
        await pilot.pause(0.3)
        assert _names(screen.query_one(DataTable)) == before


def _row_line(table: DataTable, name: str) -> str:
    return next((line for line in table_lines(table) if f" {name} " in line), "")  # not drawn yet


async def test_epoch_column_grows_and_the_id_is_whole_at_80_columns(demo) -> None:
    long_run(demo, epoch=9)
    app = make_app(demo, runs_poll_s=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await runs_loaded(pilot)
        table = screen.query_one(DataTable)
        await wait_for(pilot, lambda: " 9/20 " in _row_line(table, "long-haul-7"))
        add_epoch(demo, "long-haul-7", 10, 0.5)
        add_epoch(demo, "long-haul-7", 11, 0.52)
        await wait_for(pilot, lambda: _cell(table, demo, "long-haul-7", "epoch") == "11/20")
        await pilot.pause(0.2)
        line = _row_line(table, "long-haul-7")
        assert " 11/20 " in line, line  # drawn whole, not `11/2`
        for name, run_id in (("long-haul-7", "l7l7l7l7"), ("calm-sky-3", "c3c3c3c3")):
            assert _row_line(table, name).rstrip().endswith(f" {run_id}"), _row_line(table, name)


async def test_places_follow_the_sort_as_values_change(demo) -> None:
    """Sorted by best, a run that improves moves up; the cursor stays on its run and rows
    are not rebuilt."""
    app = make_app(demo, runs_poll_s=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await runs_loaded(pilot)
        table = screen.query_one(DataTable)
        summary = screen.query_one("#runs-summary")
        while "sort: best" not in str(summary.render()):
            await pilot.press("o")
        assert _names(table)[-1] == "eager-fog-5"  # queued: no best, last
        assert _names(table)[0] != "fresh-dew-6"
        while _names(table)[table.cursor_row] != "bold-river-2":
            await pilot.press("up")
        add_epoch(demo, "fresh-dew-6", 4, 0.99)
        await wait_for(pilot, lambda: _names(table)[0] == "fresh-dew-6")
        assert _names(table)[table.cursor_row] == "bold-river-2"  # the cursor kept its run
        assert table.columns["best"].label.plain.endswith("↓")  # the direction in the header


async def test_mod_and_snr_are_the_best_epochs(demo) -> None:
    """best%, mod% and snr% all come from the best epoch, not the last one."""
    long_run(demo, epoch=3, epochs=20)
    best = {"metric": "val.acc_combined", "value": 0.61, "epoch": 4}
    add_plain_epoch(demo, "long-haul-7", 4, {"acc_combined": 0.61, "acc_mod": 0.81,
                                             "acc_snr": 0.71, "loss": 1.0}, best)  # fmt: skip
    add_plain_epoch(demo, "long-haul-7", 5, {"acc_combined": 0.40, "acc_mod": 0.50,
                                             "acc_snr": 0.45, "loss": 1.5}, None)  # fmt: skip
    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await runs_loaded(pilot)
        table = screen.query_one(DataTable)
        assert _cell(table, demo, "long-haul-7", "best") == "61.0"
        assert _cell(table, demo, "long-haul-7", "mod") == "81.0"
        assert _cell(table, demo, "long-haul-7", "snr") == "71.0"


async def test_missing_values_are_dashes_and_new_states_stand_out(demo) -> None:
    from amc_tui.run import runlock

    unknown_run(demo)
    stalled = make_fake_run(demo, "slow-beat-10", run_id="s10s10s1", seed=10, state="running",
                            epochs=6, epoch=2, created_at=T0 + 100, pid=os.getpid(),
                            heartbeat_at=T0)  # fmt: skip
    lock = runlock.acquire(stalled.path)  # the trainer lives; its heartbeat is old
    try:
        app = make_app(demo)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await runs_loaded(pilot)
            table = screen.query_one(DataTable)
            assert _cell(table, demo, "torn-status-9", "state") == "unknown"
            assert _cell(table, demo, "slow-beat-10", "state") == "stalled"
            assert _cell(table, demo, "torn-status-9", "epoch") == "-/6"  # not 0/6
            assert _cell(table, demo, "eager-fog-5", "epoch") == "-/6"  # queued: not started
            styles = {
                str(table.get_cell(str(demo.runs / n), "state").spans[0].style)
                for n in ("torn-status-9", "slow-beat-10", "fresh-dew-6", "dark-moon-4")
            }
            assert len(styles) == 4
            # neither is offered a resume: nothing changes on disk
            for name in ("torn-status-9", "slow-beat-10"):
                before = (demo.runs / name / "status.json").read_bytes()
                table.move_cursor(row=table.get_row_index(str(demo.runs / name)))
                await pilot.press("r")
                await pilot.pause(0.3)
                assert (demo.runs / name / "status.json").read_bytes() == before
                assert isinstance(app.screen, RunsScreen)
            texts = [str(n.message) for n in app._notifications]
            assert any("repair torn-status-9" in t for t in texts), texts
            assert any("slow-beat-10 is stalled" in t for t in texts), texts
    finally:
        lock.release()


async def test_time_adds_the_earlier_attempts_of_a_resumed_run(demo) -> None:
    resumed_run(demo)
    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await runs_loaded(pilot)
        table = screen.query_one(DataTable)
        assert _cell(table, demo, "second-go-8", "elapsed") == "3m42s"  # 209 s + 13 s


async def test_rows_are_never_drawn_at_stale_column_widths(demo) -> None:
    """A frame drawn between a poll adding a row and the table measuring it (a burst of keys
    keeps the table busy) must not come back once the cursor returns to where it was."""
    app = make_app(demo, runs_poll_s=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await runs_loaded(pilot)
        table = screen.query_one(DataTable)
        await pilot.pause(0.2)
        summary = screen._summary  # the last thing the poll handler does

        def summary_then_draw(*a, **k):
            summary(*a, **k)
            if table.row_count == 7:
                table_lines(table)  # the compositor's frame, before the table idles

        screen._summary = summary_then_draw  # type: ignore[method-assign]
        make_fake_run(demo, "a-much-longer-run-name-11", run_id="m11m11m1", seed=11,
                      created_at=T0 + 110)  # fmt: skip
        await wait_for(pilot, lambda: table.row_count == 7)
        await pilot.pause(0.2)
        await pilot.press("down", "up")
        drawn = table_lines(table)
        assert drawn == fresh_table_lines(table)
        assert any("a-much-longer-run-name-11" in line for line in drawn)


async def test_filter_box_goes_after_escape(demo) -> None:
    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await runs_loaded(pilot)
        inp = screen.query_one("#runs-filter", Input)
        await pilot.press("slash")
        assert inp.display and inp.has_focus
        await pilot.press("escape")
        await pilot.pause()
        assert not inp.display
        assert screen.query_one(DataTable).has_focus


async def test_keys_typed_fast_after_slash_go_to_the_filter(demo) -> None:
    from textual import events

    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await runs_loaded(pilot)
        keys = [("slash", "/")] + [(c, c) for c in "calm"]
        for key, char in keys:  # one burst, as a terminal delivers a fast typist's keys
            event = events.Key(key, char)
            event.set_sender(app)
            app._driver.send_message(event)
        inp = screen.query_one("#runs-filter", Input)
        await wait_for(pilot, lambda: inp.value == "calm")
        await pilot.press("enter")
        await wait_for(pilot, lambda: _names(screen.query_one(DataTable)) == ["calm-sky-3"])
        assert app.screen is screen and not screen.marked  # no a, l, m or c ran


async def test_footer_fits_80_columns_and_keys_panel_puts_ours_first(demo) -> None:
    from rich.console import Console
    from textual.widgets import Footer
    from textual.widgets._key_panel import BindingsTable

    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await runs_loaded(pilot)
        footer = app.screen.query_one(Footer)
        shown_keys = lambda: [k for k in footer.query("FooterKey") if k.display]  # noqa: E731
        await wait_for(pilot, lambda: len(shown_keys()) >= 6)  # a busy machine composes late
        keys = shown_keys()
        shown = {k.description for k in keys}
        assert {"New", "Stop", "Resume", "Compare", "Quit", "Keys"} <= shown
        assert all(k.region.right <= 80 for k in keys), [(k.description, k.region) for k in keys]
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: bool(app.screen.query(BindingsTable)))
        await pilot.pause(0.2)
        console = Console(width=60, record=True)
        console.print(app.screen.query_one(BindingsTable).render())
        text = console.export_text()
        for desc in ("RUNLOG", "GPUs", "Open", "Pick columns", "Quit"):
            assert desc in text
        assert text.index("New") < text.index("palette") < text.index("Cursor up")


async def test_palette_names_screens_for_people(demo) -> None:
    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await runs_loaded(pilot)
        for screen in (app.screen, NewRunScreen()):
            commands = list(app.get_system_commands(screen))
            titles = [c.title for c in commands]
            assert titles.count("Keys") == 1
            helps = " ".join(c.help for c in commands)
            for internal in ("NewRun", "AmcApp", "Screen"):
                assert internal not in helps, helps
        helps = {c.title: c.help for c in app.get_system_commands(NewRunScreen())}
        assert helps["Launch"].startswith("New run · key ^l")


async def test_picked_columns_and_sort_are_remembered(demo) -> None:
    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await runs_loaded(pilot)
        await pilot.press("C")
        from amc_tui.tui.screens.dialogs import PickColumns

        picker = await screen_ready(pilot, PickColumns)
        options = picker.query_one("#pick-list")

        def at() -> str:
            return options.get_option_at_index(options.highlighted).value

        for wanted in ("lr", "gpu"):  # down the list, space on each
            while at() != wanted:
                await pilot.press("down")
            await pilot.press("space")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        table = screen.query_one(DataTable)
        await wait_for(pilot, lambda: "lr" in table.columns and "gpu" not in table.columns)
        await wait_for(pilot, lambda: _cell(table, demo, "bold-river-2", "lr") == "0.0003")
        assert _cell(table, demo, "amber-wave-1", "lr") == "0.0001"  # the default, unwritten
        await pilot.press("o")  # sorted by name: the first column after created
        await wait_for(pilot, lambda: (demo.runs / ".amc-tui" / "tui.json").exists())
        await wait_for(pilot, lambda: '"name"' in (demo.runs / ".amc-tui" / "tui.json").read_text())
    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await runs_loaded(pilot)
        table = screen.query_one(DataTable)
        await wait_for(pilot, lambda: "lr" in table.columns)
        assert "gpu" not in table.columns
        assert screen.sort_column == "name" and not screen.sort_reverse
        assert table.columns["name"].label.plain.endswith("↑")
        assert _names(table) == sorted(_names(table))


@pytest.fixture
def trainer_ws(tmp_path, monkeypatch):
    """Runs start the stand-in trainer (real processes, the real file contract)."""
    from runs_fixtures import fake_trainer_workspace, kill_running

    # 1 s per step: a stop is still under way when the app reports it
    ws = fake_trainer_workspace(tmp_path / "ws", monkeypatch, epoch_s=5.0, epochs=40,
                                stop_grace_s=10.0)  # fmt: skip
    yield ws
    kill_running(ws)


def _notes(app) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def _cursor_to(pilot, table: DataTable, name: str) -> None:
    while _names(table)[table.cursor_row] != name:
        await pilot.press("down")


async def test_stop_says_it_waits_for_the_checkpoint(trainer_ws, monkeypatch) -> None:
    from amc_tui.launch.queue import launch
    from amc_tui.run.rundir import read_run
    from amc_tui.tui.screens.dialogs import Confirm

    monkeypatch.setenv("FAKE_HOLD_AFTER", "1")  # never done before the stop, however late

    info = launch(trainer_ws, trainer_ws.configs / "fake.toml", name="to-stop-1")
    app = make_app(trainer_ws, clock=__import__("time").time, runs_poll_s=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await runs_loaded(pilot)
        table = screen.query_one(DataTable)
        await wait_for(pilot, lambda: read_run(info.dir).pid, timeout=30)
        await wait_for(pilot, lambda: _cell(table, trainer_ws, "to-stop-1", "state") == "running")
        await _cursor_to(pilot, table, "to-stop-1")
        await pilot.press("s")
        await screen_ready(pilot, Confirm)
        await pilot.press("y")
        said = ("stopping to-stop-1: waiting for its checkpoint", "stopped to-stop-1")
        await wait_for(pilot, lambda: any("to-stop-1" in t for t in _notes(app)), timeout=30)
        text = next(t for t in _notes(app) if "to-stop-1" in t)
        assert text in said  # never "stopping to-stop-1: running"
        await wait_for(pilot, lambda: read_run(info.dir).state == "stopped", timeout=30)


async def test_a_completed_run_resumes_as_a_new_run_after_asking(trainer_ws) -> None:
    from amc_tui.run.rundir import list_runs, read_meta
    from amc_tui.tui.screens.dialogs import Confirm

    done = make_fake_run(trainer_ws, "all-done-1", run_id="d1d1d1d1", seed=1, epochs=4,
                         created_at=T0 + 10)  # fmt: skip
    app = make_app(trainer_ws)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await runs_loaded(pilot)
        table = screen.query_one(DataTable)
        await _cursor_to(pilot, table, "all-done-1")
        await pilot.press("r")
        dialog = await screen_ready(pilot, Confirm)
        assert "as a new run" in dialog.question
        await pilot.pause(0.2)
        assert dialog.query_one(".dialog-question").region.height >= 2  # wrapped, not cut
        await pilot.press("n")  # asked, declined: nothing happens
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        assert [r.name for r in list_runs(trainer_ws)] == ["all-done-1"]
        await pilot.press("r")
        await screen_ready(pilot, Confirm)
        await pilot.press("y")
        await wait_for(pilot, lambda: len(list_runs(trainer_ws)) == 2, timeout=30)
        new = next(r for r in list_runs(trainer_ws) if r.name != "all-done-1")
        assert read_meta(new.rundir)["resumed_from"]["id"] == "d1d1d1d1"
        await wait_for(pilot, lambda: any("as new run" in t for t in _notes(app)))
        assert read_meta(done)["name"] == "all-done-1"  # the completed run stays as it was
        await wait_for(pilot, lambda: table.row_count == 2)


async def test_many_rows_at_once_size_columns_by_their_widest_cell() -> None:
    """`add_many` widens columns from the cells' text as it adds them (no second measuring
    pass): by terminal cells, so wide characters count twice, and a later narrower batch
    never shrinks a column."""
    from rich.text import Text
    from textual.app import App, ComposeResult

    from amc_tui.tui.widgets.runs_table import RunsTable

    class Bare(App):
        def compose(self) -> ComposeResult:
            yield RunsTable(cell_padding=0)

    async with Bare().run_test(size=(80, 12)) as pilot:
        table = pilot.app.query_one(RunsTable)
        table.add_column("name", key="name")
        table.add_column("tag", key="tag")
        table.add_many(
            [("a", [Text("short"), Text("x")]), ("b", [Text("a-longer-name"), Text("宽宽宽")])]
        )
        await pilot.pause()
        widths = {str(k.value): c.content_width for k, c in table.columns.items()}
        assert widths == {"name": len("a-longer-name"), "tag": 6}
        table.add_many([("c", [Text("n"), Text("t")])])
        await pilot.pause()
        assert {str(k.value): c.content_width for k, c in table.columns.items()} == widths
        assert table.row_keys() == ["a", "b", "c"]
        assert any("宽宽宽" in line for line in table_lines(table))


def test_paused_gc_defers_collection_and_keep_freezes() -> None:
    import gc

    from amc_tui.run.gcpause import paused_gc, release

    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    with paused_gc():
        assert not gc.isenabled()
        with paused_gc():  # nested: the outer block turns it back on
            pass
        assert not gc.isenabled()
    assert gc.isenabled() and gc.get_freeze_count() == frozen
    kept = [[i] for i in range(1000)]  # made before: tracked, collectable
    try:
        with paused_gc(keep=True):
            pass
        assert gc.isenabled() and gc.get_freeze_count() >= frozen + len(kept)
    finally:
        release()
    assert gc.get_freeze_count() == 0


async def test_the_rows_frozen_by_the_first_scan_are_released_when_the_app_closes(demo) -> None:
    import gc

    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await runs_loaded(pilot)
        assert gc.get_freeze_count() > 0  # the first scan's rows, out of the collector's way
    assert gc.get_freeze_count() == 0  # a process that goes on can collect them


async def test_a_run_the_app_acted_on_is_read_at_once_whatever_its_turn(demo, monkeypatch) -> None:
    """Ended runs are checked in turn (run/poll.py); with no turns at all, a run changed
    behind the app's back still shows as it now is once the app acts on it (`_recheck`, as
    after its own stop or resume)."""
    from amc_tui.fsutil import atomic_write_json
    from amc_tui.run import poll
    from amc_tui.run.rundir import RunDir, read_status

    monkeypatch.setattr(poll, "SETTLED_CHECKS", 0)
    app = make_app(demo, runs_poll_s=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await runs_loaded(pilot)
        table = screen.query_one(DataTable)
        assert _cell(table, demo, "dark-moon-4", "state") == "stopped"
        run = demo.runs / "dark-moon-4"
        status = read_status(RunDir(run))
        atomic_write_json(run / "status.json", {**status, "state": "failed"})
        app._recheck(run)
        await wait_for(pilot, lambda: _cell(table, demo, "dark-moon-4", "state") == "failed")


async def test_a_remembered_sort_shows_its_arrow_and_the_view_starts_at_the_top(demo) -> None:
    """The first rows arrive newest folder first and are then put in the remembered order:
    the header carries the sort's arrow and the cursor is on the first row of that order,
    not on whichever run was newest."""
    from amc_tui.tui.models.prefs import RunsPrefs, write_runs_prefs

    write_runs_prefs(demo, RunsPrefs(None, "state", False))
    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await runs_loaded(pilot)
        table = screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.columns["state"].label.plain.endswith("↑"))
        states = [_cell(table, demo, n, "state").rstrip("!") for n in _names(table)]
        assert states == sorted(states) and states[0] != states[-1]
        assert table.cursor_row == 0


async def test_an_empty_workspace_freezes_nothing_and_scans_first_once(tmp_path) -> None:
    """With no run, every poll used to count as the first scan and froze the whole heap
    (every reference cycle made since the last collection kept for the session)."""
    import gc

    ws = new_workspace(tmp_path / "empty")
    app = make_app(ws, runs_poll_s=0.05)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await runs_loaded(pilot)
        polls = []
        real = screen.poll_done
        screen.poll_done = lambda: (polls.append(1), real())[1]  # type: ignore[method-assign]
        await wait_for(pilot, lambda: len(polls) >= 5)
        assert gc.get_freeze_count() == 0
        assert screen.batches == [(0, True)]  # one first scan, however many polls
