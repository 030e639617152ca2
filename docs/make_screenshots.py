"""Regenerate the TUI screenshots in docs/ with Textual's own `App.save_screenshot`, driven by
Pilot on the deterministic demo workspace of the tests (fixed ids, timestamps and clock, a fake
NVML with two GPUs): `python docs/make_screenshots.py`."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent / "tests"))

from tui_fixtures import FakeNVML, demo_workspace, make_app, sampler, wait_for  # noqa: E402

from amc_tui.tui.screens.runs import RunsScreen  # noqa: E402


async def shoot(ws, name: str, size: tuple[int, int], open_screen, ready) -> None:
    app = make_app(ws, gpu_sampler=sampler(FakeNVML(count=2, pids={1: [os.getpid()]})))
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded)
        if open_screen is not None:
            open_screen(app)
            await wait_for(pilot, lambda: app.screen.is_mounted and ready(app.screen))
        await pilot.pause(0.5)
        app.save_screenshot(str(DOCS / f"tui-{name}.svg"))
        print(f"docs/tui-{name}.svg")


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ws = demo_workspace(Path(tmp) / "ws")
        runs = ws.runs
        shots = [
            ("runs", (120, 40), None, None),
            ("runs-80x24", (80, 24), None, None),
            ("live", (120, 40), lambda a: a.open_live(runs / "fresh-dew-6"),
             lambda s: getattr(s, "view", None) is not None and s.view.epochs == [1, 2, 3]),
            ("analysis", (120, 40), lambda a: a.open_analysis(runs / "amber-wave-1"),
             lambda s: getattr(s, "data", None) is not None),
            ("new-run", (80, 24), lambda a: a.open_new_run(),
             lambda s: getattr(s, "source", "") == "demo.toml"),
            ("compare", (120, 40),
             lambda a: a.open_compare(runs / "amber-wave-1", runs / "bold-river-2"),
             lambda s: getattr(s, "data", None) is not None),
            ("runlog", (100, 30), lambda a: a.open_runlog("a1a1a1a1"),
             lambda s: getattr(s, "current", None) == "a1a1a1a1"),
            ("gpus", (80, 24), lambda a: a.open_gpus(), lambda s: len(s.query("GpuCard")) == 2),
        ]  # fmt: skip
        for name, size, open_screen, ready in shots:
            await shoot(ws, name, size, open_screen, ready)


if __name__ == "__main__":
    asyncio.run(main())
