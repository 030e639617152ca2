"""The key registry (amc_tui/tui/keys.py) is the one place keys are bound: every screen,
dialog, widget and the app build their BINDINGS from its rows, nothing binds a key outside it,
and the `?` panel, opened with the real key on each screen, lists every row of that screen,
of the app and of the focused registered widget."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import pkgutil
import re
from pathlib import Path

import pytest
from rich.console import Console
from textual.dom import DOMNode
from textual.widgets import Input
from textual.widgets._key_panel import BindingsTable
from tui_fixtures import demo_workspace, make_app, runs_loaded, screen_ready, wait_for

import amc_tui.tui
from amc_tui.tui import keys, registry
from amc_tui.tui.screens.dialogs import Confirm, PickColumns, Prompt

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[1]


def _load(target: str) -> type:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _tui_modules() -> list[object]:
    return [
        importlib.import_module(m.name)
        for m in pkgutil.walk_packages(amc_tui.tui.__path__, "amc_tui.tui.")
        if m.name != "amc_tui.tui.bench"
    ] + [importlib.import_module("amc_tui.tui.bench")]


def test_each_holder_binds_exactly_its_rows() -> None:
    holders = keys.holders()
    assert {k.where for k in keys.KEYS} == set(holders)  # no row without a holder, and back
    for where, target in holders.items():
        cls = _load(target)
        assert cls.__dict__.get("BINDINGS") == keys.bindings(where), where
        assert keys.where_of(cls) == where


def test_nothing_binds_a_key_outside_the_registry() -> None:
    """Every class of the app with its own BINDINGS is a registered holder, and no module but
    keys.py builds a Binding."""
    holders = set(keys.holders().values())
    own = [
        registry.target_of(obj)
        for mod in _tui_modules()
        for obj in vars(mod).values()
        if isinstance(obj, type)
        and issubclass(obj, DOMNode)
        and obj.__module__ == mod.__name__  # type: ignore[attr-defined]
        and "BINDINGS" in obj.__dict__
    ]
    assert own and set(own) <= holders, set(own) - holders
    tui = Path(amc_tui.tui.__file__).parent
    builders = sorted(
        {
            str(p.relative_to(tui))
            for p in tui.rglob("*.py")
            for node in ast.walk(ast.parse(p.read_text()))
            if isinstance(node, ast.Call)
            and getattr(node.func, "id", "") in ("Binding", "BindingType")
        }
    )
    assert builders == ["keys.py"]


def test_a_row_binds_what_it_says() -> None:
    rows = {(k.where, k.key): k for k in keys.KEYS}
    assert rows[("runs", "m,space")].action == "mark"
    b = [b for b in keys.bindings("new_run") if b.action == "launch"][0]
    assert (b.key, b.description, b.show, b.priority) == ("ctrl+l", "Launch", True, True)
    assert all(not b.show for b in keys.bindings("heatmap"))
    with pytest.raises(KeyError):
        keys.bindings("nowhere")


def test_docs_key_table_is_made_from_the_registry() -> None:
    """docs/TUI.md's key table is what docs/make_keys_reference.py makes from keys.py now
    (`make docs`), so no key is missing from it (it lacked G and C)."""
    spec = importlib.util.spec_from_file_location(
        "make_keys_reference", REPO / "docs" / "make_keys_reference.py"
    )
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    text = (REPO / "docs" / "TUI.md").read_text(encoding="utf-8")
    assert text == generator.render(text), "docs/TUI.md's key table is stale: run `make docs`"
    table = generator.table()
    for row in keys.KEYS:
        if row.where == "app" or not row.action.startswith("app."):
            assert f"| {generator.key_text(row.key)} | " in table, row
    assert "| `G` | Groups" in table and "| `C` | pick the columns" in table


def _panel_text(app) -> str:
    console = Console(width=100, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(app.screen.query_one(BindingsTable).render())
    return console.export_text()


def _listed(text: str, keys_shown: str, what: str) -> bool:
    return re.search(rf"^\s*{re.escape(keys_shown)} {re.escape(what)}\s*$", text, re.M) is not None


async def _check_panel(pilot, where: str) -> None:
    """Open the panel with `?` (a dialog takes no app key: the palette's Keys command), then
    every row of the screen, of the app (not over a dialog) and of the focused registered
    widget is a line of it."""
    app = pilot.app
    modal = app.screen.is_modal
    if isinstance(app.focused, Input):  # `?` typed in a text box is text
        app.screen.set_focus(None)
        await pilot.pause()
    if modal:
        app.action_show_help_panel()
    else:
        await pilot.press("question_mark")
    await wait_for(pilot, lambda: bool(app.screen.query(BindingsTable)))
    await pilot.pause(0.1)
    text = _panel_text(app)
    focused = [keys.where_of(w) for w in (app.focused.ancestors_with_self if app.focused else [])]
    widgets = [w for w in focused if w in keys.HOLDERS and w != "app"]
    holders = (where, *widgets) if modal else (where, "app", *widgets)
    for holder in holders:
        for row in keys.rows(holder):
            shown = row.key_display(app)
            assert _listed(text, shown, row.text), f"{where}: {shown} {row.text}\n{text}"
    app.action_hide_help_panel()
    await wait_for(pilot, lambda: not app.screen.query(BindingsTable))


async def test_keys_panel_lists_every_key_of_every_screen(tmp_path) -> None:
    ws = demo_workspace(tmp_path / "ws")
    args = {
        "live": (ws.runs / "fresh-dew-6",),
        "analysis": (ws.runs / "amber-wave-1",),
        "explain": (ws.runs / "amber-wave-1",),
        "compare": (ws.runs / "amber-wave-1", ws.runs / "bold-river-2"),
        "runlog": (None,),
    }
    app = make_app(ws)
    async with app.run_test(size=(120, 50)) as pilot:
        await runs_loaded(pilot)
        await _check_panel(pilot, "runs")
        for name in registry.SCREENS:
            if name == "runs":
                continue
            app.open(name, *args.get(name, ()))
            await screen_ready(pilot, registry.screen_class(name))
            await pilot.pause(0.3)
            await _check_panel(pilot, name)
            app.action_home()
            await pilot.pause()
        for where, dialog in (
            ("confirm", Confirm("Stop it?")),
            ("prompt", Prompt("Name?")),
            ("pick_columns", PickColumns([("name", "name"), ("state", "state")], ["name"])),
        ):
            app.push_screen(dialog)
            await screen_ready(pilot, type(dialog))
            await _check_panel(pilot, where)
            app.pop_screen()
            await pilot.pause()


async def test_analysis_and_compare_share_one_tab_switcher(tmp_path) -> None:
    """`t` cycles every tab in order on both screens, and a shown tab's content has focus;
    the switching is TabbedScreen's alone (neither screen has a copy)."""
    from textual.widgets import TabbedContent

    from amc_tui.tui.screens.base import TabbedScreen

    ws = demo_workspace(tmp_path / "ws")
    app = make_app(ws)
    async with app.run_test(size=(120, 40)) as pilot:
        await runs_loaded(pilot)
        for name, args in (
            ("analysis", (ws.runs / "amber-wave-1",)),
            ("compare", (ws.runs / "amber-wave-1", ws.runs / "bold-river-2")),
        ):
            cls = registry.screen_class(name)
            assert issubclass(cls, TabbedScreen)
            assert not {"action_next_tab", "action_back"} & set(vars(cls))
            app.open(name, *args)
            screen = await screen_ready(pilot, cls)
            tabs = screen.query_one(f"#{cls.TABS_ID}", TabbedContent)
            order = [*cls.TABS[cls.TABS.index(tabs.active) + 1 :], *cls.TABS]
            for pane in order[: len(cls.TABS)]:
                await pilot.press("t")
                await wait_for(pilot, lambda p=pane, tc=tabs: tc.active == p)
                if pane in cls.TAB_FOCUS:
                    target = screen.query_one(cls.TAB_FOCUS[pane])
                    await wait_for(pilot, lambda t=target: t.has_focus)
            await pilot.press("escape")
            await wait_for(pilot, lambda s=screen: app.screen is not s)
