"""Explain: one run's attribution maps (`amc-tui explain`) drawn in the terminal.

Per (modulation, SNR band) cell and head: the mean input image beside the trained model's mean
|attribution| (`r`: the same with randomised weights, the sanity check's other half), in
half-block cells (`▀`, two pixels per cell), shrunk to fit. The sanity verdict of the head on
show sits above the maps, in bold red when the map does not depend on the weights. Below: the
cell's frames, the trained model's accuracy on them and where the attribution lies (centre,
unit ring, outer) against where the signal is.

It reads the export only (`run/saliency.py`), in thread workers; a run without one says how to
make it. Never torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.message import Message
from textual.widgets import Footer, Header, Static

from amc_tui import report
from amc_tui.run import saliency as sal
from amc_tui.tui import keys
from amc_tui.tui.models import halfblock
from amc_tui.tui.screens.base import AmcScreen

GAP = 2
RESERVED_ROWS = 7  # header, two info lines, panel titles, two caption lines, footer


@dataclass
class ExportsRead(Message):
    exports: list[sal.ExplainExport] = field(default_factory=list)
    error: str | None = None


@dataclass
class CellRead(Message):
    key: tuple[int, str, str]
    arrays: dict[str, np.ndarray] | None = None
    error: str | None = None


class ExplainScreen(AmcScreen):
    DEFAULT_CSS = """
    ExplainScreen #ex-info { height: 2; padding: 0 1; }
    ExplainScreen #ex-maps { height: 1fr; padding: 0 1; }
    ExplainScreen #ex-cap { height: 2; padding: 0 1; color: $text-muted; }
    """
    BINDINGS = keys.bindings("explain")

    def __init__(self, run_dir: Path) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.exports: list[sal.ExplainExport] = []
        self.index = 0  # which export (method, split)
        self.mod = 0
        self.band = 0
        self.head = 0
        self.random = False
        self.arrays: dict[str, np.ndarray] | None = None
        self.loaded_key: tuple[int, str, str] | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"{self.run_dir.name}: reading the explain export...", id="ex-info")
        yield Static("", id="ex-maps")
        yield Static("", id="ex-cap")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = f"{self.amc.sub_title} · explain {self.run_dir.name}"
        self._read()

    # ------------------------------------------------------------------ what is on show

    @property
    def export(self) -> sal.ExplainExport | None:
        return self.exports[self.index] if self.exports else None

    def mods(self) -> list[str]:
        e = self.export
        if e is None:
            return []
        have = {c["modulation"] for c in e.cells}
        return [m for m in e.summary.get("classes", []) if m in have]

    def bands(self) -> list[str]:
        e = self.export
        have = {c["band"] for c in e.cells} if e else set()
        return [b for b in sal.BAND_NAMES if b in have]

    def cell_key(self) -> tuple[int, str, str] | None:
        mods, bands = self.mods(), self.bands()
        if not mods or not bands:
            return None
        return self.index, mods[self.mod % len(mods)], bands[self.band % len(bands)]

    # ------------------------------------------------------------------ workers

    @work(thread=True, exclusive=True, group="ex-read", exit_on_error=False)
    def _read(self) -> None:
        try:
            self.post_message(ExportsRead(sal.list_exports(self.run_dir)))
        except Exception as e:  # noqa: BLE001 - shown, never raised
            self.post_message(ExportsRead(error=str(e)))

    @work(thread=True, exclusive=True, group="ex-cell", exit_on_error=False)
    def _read_cell(self, key: tuple[int, str, str], folder: Path) -> None:
        try:
            self.post_message(CellRead(key, sal.load_cell(folder, key[1], key[2])))
        except Exception as e:  # noqa: BLE001
            self.post_message(CellRead(key, error=str(e)))

    @on(ExportsRead)
    def _exports_read(self, msg: ExportsRead) -> None:
        if msg.error:
            self.amc.report_error(f"explain: {msg.error}")
        self.exports = msg.exports
        self.index = 0
        self._show()

    @on(CellRead)
    def _cell_read(self, msg: CellRead) -> None:
        if msg.error:
            self.amc.report_error(f"explain: {msg.error}")
        if msg.key == self.cell_key():
            self.arrays, self.loaded_key = msg.arrays, msg.key
            self._draw()

    # ------------------------------------------------------------------ drawing

    def _show(self) -> None:
        """Info line for the export; load the cell on show (drawn when it arrives)."""
        key = self.cell_key()
        if key is None:
            self._draw()
            return
        if key != self.loaded_key:
            e = self.export
            assert e is not None
            self._read_cell(key, e.folder)
        self._draw()

    def _draw(self) -> None:
        info = self.query_one("#ex-info", Static)
        maps = self.query_one("#ex-maps", Static)
        cap = self.query_one("#ex-cap", Static)
        e = self.export
        if e is None:
            name = self.run_dir.name
            info.update(Text(f"{name}: no explain export yet"))
            maps.update(
                Text(
                    f"Make one with:  amc-tui explain {name}\n\n"
                    "It computes attribution maps of both heads per modulation and SNR band "
                    "from the best checkpoint, with a sanity check (randomised weights)."
                )
            )
            cap.update("")
            return
        head = sal.HEADS[self.head % len(sal.HEADS)]
        passed, line = sal.verdict(e.rho(head), float(e.sanity.get("threshold", 0.5)))
        title = (
            f"{self.run_dir.name} · {e.summary.get('method_name', e.method)} · {e.split} · "
            f"{sal.HEAD_NAMES[head]} head · export {self.index + 1}/{len(self.exports)}"
        )
        verdict = Text(line, style="" if passed else "bold red")
        info.update(Text.assemble(title, "\n", verdict))
        key = self.cell_key()
        if key is None:
            maps.update("no cell with frames in this export")
            cap.update("")
            return
        _, mod, band = key
        z = self.arrays if self.loaded_key == key else None
        if z is None or not int(z["n"]):
            maps.update(f"{mod} @ {sal.band_text(band)}: " + ("loading..." if z is None else
                                                              "no frames"))  # fmt: skip
            cap.update("")
            return
        second = f"{head}_random" if self.random else head
        panels = [("image", z["image"][0], halfblock.GREY),
                  ("randomised weights" if self.random else "trained", z[second][0],
                   halfblock.INFERNO)]  # fmt: skip
        width = max(20, self.size.width - 2)
        rows = max(4, self.size.height - RESERVED_ROWS)
        maps.update(render_panels(panels, width, rows))
        cell = next((c for c in e.cells if c["modulation"] == mod and c["band"] == band), {})
        rings = (cell.get("rings") or {}).get(head)
        signal = (cell.get("rings") or {}).get("image")
        acc = (cell.get("accuracy") or {}).get(head)
        rho = (cell.get("similarity") or {}).get(head)
        cap.update(
            f"{mod} @ {sal.band_text(band)}: {int(z['n'])} frames, {sal.HEAD_NAMES[head]} acc "
            f"{report.pct(acc, 0)}, rho {report.num(rho, '.2f')}\n"
            f"centre/ring/outer: attribution {_rings(rings)} · signal {_rings(signal)}"
        )

    def on_resize(self) -> None:
        if self.export is not None:
            self._draw()

    # ------------------------------------------------------------------ keys

    def action_next_mod(self) -> None:
        self.mod += 1
        self._show()

    def action_prev_mod(self) -> None:
        self.mod -= 1
        self._show()

    def action_next_band(self) -> None:
        self.band += 1
        self._show()

    def action_next_head(self) -> None:
        self.head += 1
        self._draw()

    def action_toggle_random(self) -> None:
        self.random = not self.random
        self._draw()

    def action_next_export(self) -> None:
        if self.exports:
            self.index = (self.index + 1) % len(self.exports)
            self._show()

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()


def _rings(rings: dict[str, float] | None) -> str:
    """`30/52/17 %`: a ring share triple in RING_NAMES order."""
    if not rings:
        return "-"
    return "/".join(report.pct(rings.get(n), 0, unit="") for n in sal.RING_NAMES) + " %"


def render_panels(panels: list[tuple[str, Any, tuple]], width: int, rows: int) -> Text:
    """Panels (title, (H, W) image, colour stops) side by side in half-block cells, titles
    above, each shrunk to the same width to fit `width` columns and `rows` rows."""
    size = max(int(np.asarray(p[1]).shape[-1]) for p in panels)
    px = halfblock.layout(len(panels), size, width, rows, GAP)
    grids = [halfblock.cells(halfblock.shrink(np.asarray(img), px, rows), stops)
             for _, img, stops in panels]  # fmt: skip
    w = max(len(g[0]) for g in grids if g)
    out = Text()
    out.append((" " * GAP).join(t[:w].ljust(w) for t, _, _ in panels) + "\n")
    for r in range(max(len(g) for g in grids)):
        for i, g in enumerate(grids):
            if i:
                out.append(" " * GAP)
            row = g[r] if r < len(g) else []
            for top, bottom in row:
                out.append(halfblock.HALF_BLOCK, style=f"{top} on {bottom}")
            out.append(" " * (w - len(row)))
        out.append("\n")
    return out
