"""Everything fits 80x24: on every screen the footer line, as drawn, is the screen's bound
keys and nothing else (no word cut at the edge, none under the palette key, none under the
keys panel); `?` and F1 open the keys panel beside the footer, never over it; every dialog
and picker shows whole with its buttons on screen."""

from __future__ import annotations

import re

import pytest
from textual.widgets import Button, Footer, Input
from textual.widgets._key_panel import BindingsTable
from tui_fixtures import (
    demo_workspace,
    make_app,
    runs_loaded,
    screen_lines,
    screen_ready,
    wait_for,
)

from amc_tui.tui import registry
from amc_tui.tui.screens.dialogs import Confirm, PickColumns, Prompt
from amc_tui.tui.widgets.keys_panel import KeysPanel

pytestmark = pytest.mark.anyio

SIZE = (80, 24)


@pytest.fixture
def demo(tmp_path):
    return demo_workspace(tmp_path / "ws")


def footer_items(app) -> list[str]:
    """What the footer should show: `key text` of each shown binding of the screen (one per
    action, as Textual's Footer draws them), then the palette key where the footer has it."""
    footer = app.screen.query_one(Footer)
    by_action: dict[str, str] = {}
    for _node, binding, _enabled, _tip in app.screen.active_bindings.values():
        if binding.show:
            by_action.setdefault(
                binding.action, f"{app.get_key_display(binding)} {binding.description}"
            )
    items = list(by_action.values())
    if footer.show_command_palette:
        palette = app.screen.active_bindings[app.COMMAND_PALETTE_BINDING][1]
        items.append(f"{app.get_key_display(palette)} {palette.description}")
    return items


def cut_words(line: str, items: list[str]) -> tuple[list[str], str]:
    """The items missing from the drawn footer line (cut or hidden), and what is left of the
    line once every whole item is taken out (only spaces and the palette's bar when clean)."""
    missing = []
    rest = line
    for item in sorted(items, key=len, reverse=True):
        pattern = rf"(?:(?<=^)|(?<=[\s▏])){re.escape(item)}(?=[\s▏]|$)"
        if re.search(pattern, rest) is None:
            missing.append(item)
        rest = re.sub(pattern, " " * len(item), rest, count=1)
    return missing, rest.replace("▏", " ").strip()


def footer_drawn(app) -> bool:
    """The footer line shows each of the screen's keys (whole or not: that is the test's)."""
    line = screen_lines(app)[-1]
    return all(item.split(" ", 1)[1][:3] in line for item in footer_items(app))


def assert_footer_whole(app, where: str) -> str:
    line = screen_lines(app)[-1]
    items = footer_items(app)
    missing, rest = cut_words(line, items)
    assert not missing and not rest, f"{where}: {line!r} misses {missing}, left {rest!r}"
    return line


SCREEN_ARGS = {
    "live": lambda ws: (ws.runs / "fresh-dew-6",),
    "analysis": lambda ws: (ws.runs / "amber-wave-1",),
    "explain": lambda ws: (ws.runs / "amber-wave-1",),
    "compare": lambda ws: (ws.runs / "amber-wave-1", ws.runs / "bold-river-2"),
    "runlog": lambda ws: (None,),
}


async def test_every_footer_is_whole_at_80x24_with_and_without_the_keys_panel(demo) -> None:
    """For every screen of the registry: the drawn footer line holds each shown key whole and
    nothing else; with the keys panel open (F1 on one screen, `?` on the next) the footer
    line is the same and the panel ends above it."""
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        await runs_loaded(pilot)
        for i, name in enumerate(registry.SCREENS):
            if name != "runs":
                app.open(name, *SCREEN_ARGS.get(name, lambda ws: ())(demo))
                await screen_ready(pilot, registry.screen_class(name))
            await wait_for(pilot, lambda: footer_drawn(app))  # a busy machine draws late
            line = assert_footer_whole(app, name)
            # `?` typed in a text box is text; F1 is not
            key = "f1" if i % 2 or isinstance(app.focused, Input) else "question_mark"
            await pilot.press(key)
            await wait_for(pilot, lambda: bool(app.screen.query(BindingsTable)))
            await wait_for(pilot, lambda: footer_drawn(app))
            assert_footer_whole(app, f"{name} with the keys panel")
            assert screen_lines(app)[-1] == line, name
            panel = app.screen.query_one(KeysPanel)
            assert panel.region.bottom <= SIZE[1] - 1, (name, panel.region)
            await pilot.press(key)
            await wait_for(pilot, lambda: not app.screen.query(KeysPanel))
            if name != "runs":
                app.action_home()
                await pilot.pause(0.1)


async def test_f1_opens_and_closes_the_keys_like_question_mark(demo) -> None:
    """F1 toggles the panel on a screen, and inside a text field (where `?` is text)."""
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        await runs_loaded(pilot)
        await pilot.press("f1")
        await wait_for(pilot, lambda: bool(app.screen.query(KeysPanel)))
        await pilot.press("f1")
        await wait_for(pilot, lambda: not app.screen.query(KeysPanel))
        app.open("new_run")
        screen = await screen_ready(pilot, registry.screen_class("new_run"))
        await wait_for(pilot, lambda: isinstance(app.focused, Input))
        field = app.focused
        before = field.value
        await pilot.press("f1")
        await wait_for(pilot, lambda: bool(screen.query(KeysPanel)))
        assert field.value == before
        await pilot.press("f1")
        await wait_for(pilot, lambda: not screen.query(KeysPanel))


def _inside(region, size=SIZE) -> bool:
    return region.x >= 0 and region.y >= 0 and region.right <= size[0] and region.bottom <= size[1]


async def test_every_dialog_fits_80x24_with_its_buttons_on_screen(demo) -> None:
    """The column picker with every column, a confirm with a long question and the save
    prompt: each dialog box lies inside 80x24 and each of its buttons can be seen (and so
    clicked); the picker's list scrolls instead of pushing Done off the screen."""
    from amc_tui.tui.models import runs_view as rv

    choices = [(c.key, f"{c.label:<10} {rv.COLUMN_HELP[c.key]}") for c in rv.COLUMNS]
    long_question = (
        "amber-wave-1 is completed. Resume it as a new run, trained on from its checkpoint "
        "(this run stays as it is)?"
    )
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        await runs_loaded(pilot)
        for dialog in (
            PickColumns(choices, [c for c, _ in choices]),
            Confirm(long_question, yes="Resume as new run", danger=False),
            Prompt("Save config as (in configs/):", "demo-edit.toml"),
        ):
            app.push_screen(dialog)
            await screen_ready(pilot, type(dialog))
            await pilot.pause(0.2)
            box = dialog.query_one(".dialog-box")
            assert _inside(box.region), (type(dialog).__name__, box.region)
            buttons = list(dialog.query(Button))
            for button in buttons:
                assert _inside(button.region) and button.region.height >= 1, (
                    type(dialog).__name__,
                    button.label,
                    button.region,
                )
                assert button.region in box.region or box.region.contains_region(button.region)
            app.pop_screen()
            await pilot.pause()


async def test_the_column_picker_is_done_by_mouse_at_80x24(demo) -> None:
    """The picker's Done button can be clicked at 80x24 (it was below the 24th row)."""
    from amc_tui.tui.screens.runs import RunsScreen

    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        await runs_loaded(pilot)
        await pilot.press("C")
        picker = await screen_ready(pilot, PickColumns)
        await pilot.pause(0.2)
        assert await pilot.click("#done", offset=(2, 1))  # on its label, not its top edge
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        assert picker is not app.screen
