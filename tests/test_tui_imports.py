"""The app never imports torch, timm or torchvision (DESIGN section 1), not even when every
screen module is loaded, and keeps pandas off its startup path (first paint)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "timm", "torchvision")
MODULES = (
    "amc_tui.tui.app",
    "amc_tui.tui.bench",
    "amc_tui.tui.screens.runs",
    "amc_tui.tui.screens.new_run",
    "amc_tui.tui.screens.live",
    "amc_tui.tui.screens.analysis",
    "amc_tui.tui.screens.compare",
    "amc_tui.tui.screens.runlog",
    "amc_tui.tui.screens.gpus",
    "amc_tui.tui.screens.dialogs",
)


def _loaded_after(code: str) -> set[str]:
    probe = code + "\nimport sys; print(','.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(out.stdout.strip().split(","))


def test_app_and_every_screen_leave_torch_out() -> None:
    mods = _loaded_after(
        "import importlib\n"
        + "".join(f"importlib.import_module({m!r})\n" for m in MODULES)
        + "from amc_tui.tui.app import AmcApp\nfrom amc_tui.workspace import Workspace\n"
        + "AmcApp(Workspace.find('.'))"
    )
    assert not [m for m in HEAVY if m in mods]
    assert "amc_tui.tui.screens.live" in mods  # the probe did load them


def test_startup_path_is_light() -> None:
    mods = _loaded_after("import amc_tui.tui.app, amc_tui.tui.screens.runs")
    assert not {"pandas", "numpy", "torch", "textual_plotext"} & mods
