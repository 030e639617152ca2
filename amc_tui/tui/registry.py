"""The screen registry: every screen the app opens, by name, as `"module:Class"`, and the run
actions (stop, resume) as `"module:function"`. The app's single lazy-load point.

A screen's module is imported with importlib the first time the screen is pushed, a run
action's the first time it runs (in its thread worker, never on the UI thread). The start
path (the app and the Runs screen) so stays free of what the other screens and the launcher
import: amc_tui.launch (numpy, h5py, psutil), sweeps and runlog, textual_plotext (the charts),
psutil (GPUs). Every other module of the app imports at module level; an import inside a
function is allowed only for a heavy third-party library, with its reason beside it
(tests/test_tui_imports.py checks both).

This module imports nothing of the app, so anything may import it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ScreenEntry:
    target: str  # "module:Class"
    title: str  # what people call the screen (command palette, keys panel)


SCREENS: dict[str, ScreenEntry] = {
    "runs": ScreenEntry("amc_tui.tui.screens.runs:RunsScreen", "Runs"),
    "new_run": ScreenEntry("amc_tui.tui.screens.new_run:NewRunScreen", "New run"),
    "live": ScreenEntry("amc_tui.tui.screens.live:LiveScreen", "Live"),
    "analysis": ScreenEntry("amc_tui.tui.screens.analysis:AnalysisScreen", "Analysis"),
    "compare": ScreenEntry("amc_tui.tui.screens.compare:CompareScreen", "Compare"),
    "runlog": ScreenEntry("amc_tui.tui.screens.runlog:RunlogScreen", "RUNLOG"),
    "gpus": ScreenEntry("amc_tui.tui.screens.gpus:GpusScreen", "GPUs"),
    "groups": ScreenEntry("amc_tui.tui.screens.groups:GroupsScreen", "Groups"),
    "explain": ScreenEntry("amc_tui.tui.screens.explain:ExplainScreen", "Explain"),
}

# What the app's run actions call (amc_tui.launch, which imports numpy, h5py and psutil).
RUN_ACTIONS: dict[str, str] = {
    "stop": "amc_tui.tui.run_actions:stop",
    "resume": "amc_tui.tui.run_actions:resume",
    "alerts": "amc_tui.tui.alerts:Alerts",  # the session's bell and toasts, and notifications
}


def _load(target: str) -> Any:
    """The object a `"module:attribute"` names (the module is imported once, then cached by
    Python's import system)."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def screen_class(name: str) -> type:
    """The class of screen `name`, imported on first use."""
    return _load(SCREENS[name].target)  # type: ignore[no-any-return]


def run_action(name: str) -> Any:
    """The function of run action `name`, imported on first use (call from a worker thread)."""
    return _load(RUN_ACTIONS[name])


def target_of(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def name_of(node: object) -> str | None:
    """The registry name of a screen (or of the registered screen its class derives from)."""
    by_target = {e.target: name for name, e in SCREENS.items()}
    for cls in type(node).__mro__:
        if (name := by_target.get(target_of(cls))) is not None:
            return name
    return None
