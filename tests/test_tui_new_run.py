"""New-run screen: the form validates as you type, saves without overwriting unasked, a failed
launch shows in place, and a launched run (a real subprocess: helper C's stand-in trainer with
the real file contract) keeps running when the app quits. Launch, live curves and stop with
the real trainer are in test_tui_trainer.py."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from runs_fixtures import fake_trainer_workspace, kill_running
from textual.widgets import Button, Input, Select, Static
from tui_fixtures import make_app, runs_loaded, screen_ready, wait_for

from amc_tui.config import load_config
from amc_tui.run.rundir import list_runs, read_run
from amc_tui.run.runlock import pid_alive
from amc_tui.tui.screens.dialogs import Confirm, Prompt
from amc_tui.tui.screens.live import LiveScreen
from amc_tui.tui.screens.new_run import NewRunScreen, input_id

pytestmark = pytest.mark.anyio


@pytest.fixture
def ws(tmp_path, monkeypatch):
    ws = fake_trainer_workspace(
        tmp_path / "ws", monkeypatch, epoch_s=0.4, epochs=40, stop_grace_s=5.0
    )
    yield ws
    kill_running(ws)  # no strays


async def open_form(pilot, config: str = "fake.toml", epochs: str = "40") -> NewRunScreen:
    """The New run form with `config` picked (its train.epochs shows `epochs` once loaded)."""
    screen = await _open_form(pilot)
    sel = screen.query_one("#nr-config", Select)
    await wait_for(pilot, lambda: config in screen.config_names)
    sel.value = config
    await wait_for(pilot, lambda: screen.form.texts["train.epochs"] == epochs)
    return screen


async def edit(pilot, screen: NewRunScreen, dotted: str, text: str, type_it: bool = True) -> Input:
    """Go to a field's tab and type `text` over it key by key (or paste it: type_it=False)."""
    screen.show_field(dotted)
    spec = screen.form.by_key[dotted]
    await wait_for(pilot, lambda: bool(screen.query(f"#{input_id(spec)}")))
    inp = screen.query_one(f"#{input_id(spec)}", Input)
    await wait_for(pilot, lambda: inp.has_focus)
    if type_it:
        inp.action_select_all()
        await pilot.press("backspace", *text)
    else:
        inp.value = text
        await wait_for(pilot, lambda: screen.form.texts[dotted] == text)
    return inp


async def test_form_validates_as_you_type_and_saves_without_overwriting(ws) -> None:
    app = make_app(ws)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_form(pilot)
        inp = await edit(pilot, screen, "train.lr", "-0.1")
        err = screen.query_one(f"#err-{inp.id}", Static)
        await wait_for(pilot, lambda: err.display)
        assert "[train] lr must be in (0, 10]" in str(err.render())
        assert inp.has_class("-invalid")
        assert screen.query_one("#nr-launch", Button).disabled
        assert "invalid" in str(screen.query_one("#nr-status", Static).render())
        await pilot.press("ctrl+l")  # refused in place: nothing created
        assert list_runs(ws) == []

        await edit(pilot, screen, "train.lr", "0.002", type_it=False)
        await wait_for(pilot, lambda: not err.display)
        assert not screen.query_one("#nr-launch", Button).disabled

        # save as a new file
        await pilot.press("ctrl+s")
        prompt = await screen_ready(pilot, Prompt)
        prompt.query_one(Input).value = "tuned"
        await pilot.press("enter")
        saved = ws.configs / "tuned.toml"
        await wait_for(pilot, saved.exists)
        assert load_config(saved).train.lr == pytest.approx(0.002)
        await screen_ready(pilot, NewRunScreen)

        # saving onto an existing file asks first; "n" keeps it byte for byte
        before = (ws.configs / "fake.toml").read_bytes()
        await save_over_existing(pilot, "fake.toml", answer="n")
        await screen_ready(pilot, NewRunScreen)
        assert (ws.configs / "fake.toml").read_bytes() == before
        # "y" overwrites
        await save_over_existing(pilot, "fake.toml", answer="y")
        await wait_for(pilot, lambda: load_config(ws.configs / "fake.toml").train.lr == 0.002)


async def save_over_existing(pilot, name: str, answer: str) -> None:
    """ctrl+s, type an existing file name, and answer the overwrite question."""
    await pilot.press("ctrl+s")
    prompt = await screen_ready(pilot, Prompt)
    prompt.query_one(Input).value = name
    await pilot.press("enter")
    await screen_ready(pilot, Confirm)
    await pilot.press(answer)


async def test_quitting_leaves_runs_running_and_reopening_finds_them(ws, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_HOLD_AFTER", "1")  # it runs until the SIGTERM at the end
    app = make_app(ws)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_form(pilot)
        await edit(pilot, screen, "name", "keeps-going-1", type_it=False)
        await pilot.press("ctrl+l")
        await screen_ready(pilot, LiveScreen)
        await _wait_state(pilot, ws.runs / "keeps-going-1", "running")
        # the pid is the trainer's own to write, in its first status write
        await wait_for(pilot, lambda: read_run(ws.runs / "keeps-going-1").pid, timeout=30)
        info = read_run(ws.runs / "keeps-going-1")
        await pilot.press("escape", "escape", "q")
    assert pid_alive(info.pid)
    assert read_run(info.dir).state == "running"
    app = make_app(ws)
    async with app.run_test(size=(80, 24)) as pilot:
        runs = await runs_loaded(pilot)
        key = str(info.dir)
        assert runs.infos[key].state == "running"
    os.killpg(info.pgid or info.pid, signal.SIGTERM)


async def test_after_a_launch_escape_goes_to_runs_and_no_key_lands_in_the_form(ws) -> None:
    """A launch replaces the form by the run's Live screen: escape from it lands on Runs with
    the new run highlighted, never back in the filled form with a field focused (a stray
    `g` went into the seed: "3g"). Keys typed then are Runs keys; `n` opens the form again
    on the launched config ("(last launched)"), its fields as launched."""
    from amc_tui.tui.screens.gpus import GpusScreen
    from amc_tui.tui.screens.runs import RunsScreen

    app = make_app(ws)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_form(pilot)
        await edit(pilot, screen, "name", "seeded-run-1", type_it=False)
        await edit(pilot, screen, "train.seed", "3")
        await pilot.press("ctrl+l")
        await screen_ready(pilot, LiveScreen)
        assert not any(isinstance(s, NewRunScreen) for s in app.screen_stack)
        await pilot.press("escape")
        runs = await screen_ready(pilot, RunsScreen)
        await wait_for(pilot, lambda: runs.current_key() == str(ws.runs / "seeded-run-1"))
        await pilot.press("g")  # the stray key: a Runs key now (GPUs), not text in a field
        await screen_ready(pilot, GpusScreen)
        await pilot.press("escape")
        await screen_ready(pilot, RunsScreen)
        await pilot.press("n")
        form = await screen_ready(pilot, NewRunScreen)
        await wait_for(
            pilot, lambda: form.query_one("#nr-config", Select).value == "(last launched)"
        )
        await wait_for(pilot, lambda: form.form.texts["train.seed"] == "3")
    assert load_config(ws.runs / "seeded-run-1" / "config.toml").train.seed == 3


async def test_failed_launch_is_shown_in_place(ws) -> None:
    app = make_app(ws)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_form(pilot)
        await edit(pilot, screen, "data.path", "data/missing.h5", type_it=False)
        await pilot.press("ctrl+l")
        status = screen.query_one("#nr-status", Static)
        await wait_for(pilot, lambda: "launch failed" in str(status.render()))
        assert "data file not found" in str(status.render())
        assert isinstance(app.screen, NewRunScreen)
        assert list_runs(ws) == []


async def _wait_state(pilot, run: Path, state: str, timeout: float = 30) -> object:
    await wait_for(pilot, lambda: read_run(run).state == state, timeout=timeout)
    return read_run(run)


async def _open_form(pilot) -> NewRunScreen:
    """The New run form, opened by its key from the loaded Runs screen."""
    await runs_loaded(pilot)
    await pilot.press("n")
    return await screen_ready(pilot, NewRunScreen)


async def _open_in_field(pilot) -> tuple[NewRunScreen, Input]:
    """The form, typing in its first field (name)."""
    screen = await _open_form(pilot)
    name = screen.query_one(f"#{input_id(screen.form.by_key['name'])}", Input)
    if not name.has_focus:
        screen.show_field("name")
    await wait_for(pilot, lambda: name.has_focus)
    return screen, name


async def test_form_opens_with_its_first_field_focused(ws) -> None:
    app = make_app(ws)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_form(pilot)
        name = screen.query_one(f"#{input_id(screen.form.by_key['name'])}", Input)
        await wait_for(pilot, lambda: app.focused is not None)
        await pilot.pause(0.2)
        assert name.has_focus  # no Tab needed to start typing
        await pilot.press(*"abc")
        assert screen.form.texts["name"] == "abc"


async def test_tab_into_a_field_keeps_its_text_and_puts_the_cursor_at_the_end(ws) -> None:
    """Moving into a field with Tab (or shift+Tab) selects nothing: the next key adds to the
    text instead of wiping it (the notes were lost that way)."""
    app = make_app(ws)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, name = await _open_in_field(pilot)
        notes = screen.query_one(f"#{input_id(screen.form.by_key['notes'])}", Input)
        await pilot.press("tab")
        await wait_for(pilot, lambda: notes.has_focus)
        await pilot.press(*"baseline, lr 3e-4")
        await pilot.press("shift+tab")
        await wait_for(pilot, lambda: name.has_focus)
        await pilot.press("tab")
        await wait_for(pilot, lambda: notes.has_focus)
        assert notes.selection.is_empty and notes.cursor_position == len(notes.value)
        await pilot.press(*" again")
        assert screen.form.texts["notes"] == "baseline, lr 3e-4 again"
        await pilot.press("shift+tab")
        await wait_for(pilot, lambda: name.has_focus)
        await pilot.press("x")
        assert screen.form.texts["name"] == name.value and name.value.endswith("x")


async def test_ctrl_t_moves_to_the_next_tab_from_inside_a_field(ws) -> None:
    from textual.widgets import TabbedContent

    app = make_app(ws)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, _name = await _open_in_field(pilot)
        tabs = screen.query_one(TabbedContent)
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: tabs.active == "nr-tab-data")
        path = screen.query_one(f"#{input_id(screen.form.by_key['data.path'])}", Input)
        await wait_for(pilot, lambda: path.has_focus)
        await pilot.pause(0.2)
        assert tabs.active == "nr-tab-data"  # focus did not pull it back
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: tabs.active == "nr-tab-image")


async def test_the_status_line_stays_in_view_while_tabbing_through_fields(ws) -> None:
    from textual.widgets import Tabs

    app = make_app(ws)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, _name = await _open_in_field(pilot)
        status = screen.query_one("#nr-status", Static)
        top = status.region.y
        for _ in range(3):  # back to the tab bar, then along it to the long train tab
            if not isinstance(app.focused, Tabs):
                await pilot.press("shift+tab")
        assert isinstance(app.focused, Tabs)
        await pilot.press("right", "right", "right", "right")
        await wait_for(pilot, lambda: bool(screen.query("#f-train-epochs")))
        for _ in range(14):  # down the fields: only they scroll
            await pilot.press("tab")
        await pilot.pause(0.2)
        assert app.focused is not None and app.focused.has_class("field-input")
        assert app.focused.id.startswith("f-train-")
        assert status.region.y == top and status.region.height >= 1
        assert screen.scroll_y == 0


async def test_empty_fields_are_visible_boxes(ws) -> None:
    app = make_app(ws)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_form(pilot)
        notes = screen.query_one(f"#{input_id(screen.form.by_key['notes'])}", Input)
        await wait_for(pilot, lambda: notes.is_mounted and notes.region.height == 1)
        await pilot.pause(0.2)
        assert notes.value == "" and not notes.has_focus
        _, behind = notes.parent.background_colors
        _, box = notes.background_colors
        assert abs(box.brightness - behind.brightness) >= 0.08  # a box, not blank space


async def test_defaults_name_the_missing_data_file_and_how_to_make_it(ws) -> None:
    app = make_app(ws)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_form(pilot)
        await wait_for(pilot, lambda: "fake.toml" in screen.config_names)
        screen.query_one("#nr-config", Select).value = "(defaults)"
        status = screen.query_one("#nr-status", Static)
        await wait_for(pilot, lambda: "missing data/synthetic.h5" in str(status.render()))
        assert "amc-tui data synth data/synthetic.h5" in str(status.render())
        # a config whose data exists reads valid
        screen.query_one("#nr-config", Select).value = "fake.toml"
        await wait_for(pilot, lambda: str(status.render()).startswith("valid"))


async def test_the_last_launched_config_is_offered_first(ws) -> None:
    app = make_app(ws)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_form(pilot)
        await edit(pilot, screen, "train.lr", "0.0042", type_it=False)
        await edit(pilot, screen, "name", "first-try-1", type_it=False)
        await pilot.press("ctrl+l")
        await screen_ready(pilot, LiveScreen)
        await pilot.press("escape")  # Live goes back to Runs: the form is gone
        await wait_for(pilot, lambda: not isinstance(app.screen, (LiveScreen, NewRunScreen)))
        await pilot.press("n")
        screen = await screen_ready(pilot, NewRunScreen)
        sel = screen.query_one("#nr-config", Select)
        await wait_for(pilot, lambda: sel.value == "(last launched)")
        await wait_for(pilot, lambda: screen.form.texts["train.lr"] == "0.0042")
        assert screen.form.texts["name"] == ""  # a run name is one run's own
        assert screen.form.texts["train.epochs"] == "40"
