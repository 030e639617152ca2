"""Compare two runs: the config keys that differ, curves overlaid, the per-cell delta heatmap
(B - A on the newest export both have) and the metric table with deltas.

The metric table puts each run's best epoch (by its select metric) and its last epoch side by
side, the epochs named in the head; the cells say which split they come from (the final
export is the test split, each run at its best epoch).

The comparison itself is `amc_tui.run.analysis.compare_runs`; this screen lays it out. Shares
read as percent and their deltas as points; a cell or metric one run has no data for is "no
data", never 0 %.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Container, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, Static, TabbedContent, TabPane

from amc_tui import contract, report
from amc_tui.run.analysis import cell_deltas, compare_runs, export_epoch, read_per_cell
from amc_tui.run.rundir import RunDir, epoch_events, first_event, read_run
from amc_tui.run.tables import chance_of
from amc_tui.tui import keys
from amc_tui.tui.models.heat import delta_scale
from amc_tui.tui.screens.base import TabbedScreen
from amc_tui.tui.widgets.curves import Curves
from amc_tui.tui.widgets.heatmap import HeatBox, Heatmap

if TYPE_CHECKING:
    from amc_tui.run.analysis import CellDeltas

NO_DATA = "no data"
TOP_LINES = 7  # the changed-most list under a tall delta grid
DELTA_METRIC = "acc_combined"


@dataclass
class Compared(Message):
    names: tuple[str, str] = ("A", "B")
    result: dict[str, Any] = field(default_factory=dict)
    curves: tuple[list, list] = ([], [])  # epoch events of A and B
    export: str | None = None
    cells: CellDeltas | None = None  # DELTA_METRIC per cell of `export`, B - A
    chance: float | None = None  # combined accuracy's chance when both runs share a grid
    error: str | None = None


class CompareScreen(TabbedScreen):
    # the tabs fill the screen, so a tall delta grid scrolls inside its tab
    DEFAULT_CSS = """
    CompareScreen #cmp-tabs, CompareScreen #cmp-tabs > ContentSwitcher,
    CompareScreen #cmp-tabs TabPane { height: 1fr; }
    CompareScreen #cmp-top-box { height: 1fr; }
    """
    BINDINGS = keys.bindings("compare")
    TABS_ID = "cmp-tabs"
    TABS = ("cmp-config", "cmp-metrics", "cmp-curves", "cmp-cells")
    TAB_FOCUS = {"cmp-config": "#cmp-config-table", "cmp-metrics": "#cmp-metrics-table",
                 "cmp-cells": "#cmp-heat"}  # fmt: skip

    def __init__(self, a_dir: Path, b_dir: Path) -> None:
        super().__init__(classes="compare")
        self.a_dir, self.b_dir = Path(a_dir), Path(b_dir)
        self.data: Compared | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"A = {self.a_dir.name} · B = {self.b_dir.name} · comparing...", id="cmp-head")
        with TabbedContent(id="cmp-tabs"):
            with TabPane("Config", id="cmp-config"):
                yield DataTable(id="cmp-config-table", cursor_type="row", zebra_stripes=True)
            with TabPane("Metrics", id="cmp-metrics"):
                yield DataTable(id="cmp-metrics-table", cursor_type="row", zebra_stripes=True)
            with TabPane("Curves", id="cmp-curves"), Container(id="cmp-plots"):
                yield Curves("val combined accuracy", percent=True, id="cmp-plot-acc")
                yield Curves("val loss", id="cmp-plot-loss")
            with TabPane("Cells", id="cmp-cells"):
                yield Static("", id="cmp-cell-info")
                with HeatBox(reserve=TOP_LINES):
                    yield Heatmap(id="cmp-heat")
                    with VerticalScroll(id="cmp-top-box"):
                        yield Static("", id="cmp-top")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._compare(self.a_dir, self.b_dir)

    @work(thread=True, exclusive=True, group="compare", exit_on_error=False)
    def _compare(self, a_dir: Path, b_dir: Path) -> None:
        try:
            a, b = read_run(a_dir), read_run(b_dir)
            result = compare_runs(a, b)
            curves = (epoch_events(a_dir), epoch_events(b_dir))
            msg = Compared((a.name, b.name), result, curves, chance=_shared_chance(a_dir, b_dir))
            export = result.get("export")
            if export:
                msg.export = export
                msg.cells = cell_deltas(
                    read_per_cell(RunDir(a_dir).export / export),
                    read_per_cell(RunDir(b_dir).export / export),
                    metric=DELTA_METRIC,
                    grid=True,
                )
            self.post_message(msg)
        except Exception as e:  # noqa: BLE001
            self.post_message(Compared(error=str(e)))

    @on(Compared)
    def _show(self, msg: Compared) -> None:
        if msg.error:
            self.amc.report_error(f"compare: {msg.error}")
            self.query_one("#cmp-head", Static).update("comparison failed (see notification)")
            return
        self.data = msg
        a, b = msg.names
        diff = msg.result.get("config_diff", [])
        ra, rb = msg.result.get("a") or {}, msg.result.get("b") or {}

        def ep(v: Any) -> str:
            return str(v) if v is not None else report.MISSING

        keys = "1 config key differs" if len(diff) == 1 else f"{len(diff)} config keys differ"
        cells = f"cells: {export_text(msg.export)}" if msg.export else "no export in common"
        self.query_one("#cmp-head", Static).update(
            f"A = [b]{a}[/b] · B = [b]{b}[/b] · {keys}\n"
            f"best epoch A {ep(ra.get('best_epoch'))}, B {ep(rb.get('best_epoch'))} · "
            f"last epoch A {ep(ra.get('epoch'))}, B {ep(rb.get('epoch'))} · {cells}"
        )
        table = self.query_one("#cmp-config-table", DataTable)
        table.clear(columns=True)
        table.add_columns("key", f"A {a}", f"B {b}")
        for key, va, vb in diff:
            table.add_row(key, report.config_value(va), report.config_value(vb), key=key)
        self._fill_metrics(msg.result.get("metrics", []), a, b)
        self._fill_curves(msg)
        self._fill_cells(msg)

    def _fill_metrics(self, rows: list[Any], a: str, b: str) -> None:
        table = self.query_one("#cmp-metrics-table", DataTable)
        table.clear(columns=True)
        if not rows:
            table.add_column("no metrics in common yet")
            return
        table.add_columns("metric", "best A", "best B", "Δ best", "last A", "last B", "Δ last")
        for row in rows:
            m = str(row.get("metric", "?"))
            table.add_row(
                m,
                _metric_cell(row.get("best_a"), m),
                _metric_cell(row.get("best_b"), m),
                _delta_cell(row.get("best_delta"), m),
                _metric_cell(row.get("final_a"), m),
                _metric_cell(row.get("final_b"), m),
                _delta_cell(row.get("final_delta"), m),
            )

    def _fill_curves(self, msg: Compared) -> None:
        ea, eb = msg.curves
        a, b = msg.names
        acc = self.query_one("#cmp-plot-acc", Curves)
        loss = self.query_one("#cmp-plot-loss", Curves)
        # overlay on the union of epochs: a run without that epoch contributes no point
        epochs = sorted({e["epoch"] for e in ea + eb if isinstance(e.get("epoch"), int)})

        def series(evs: list, split: str, metric: str) -> list[float | None]:
            by = {e.get("epoch"): e for e in evs}
            out = []
            for ep in epochs:
                v = (by.get(ep) or {}).get(split, {}) or {}
                out.append(v.get(metric) if isinstance(v, dict) else None)
            return out

        chance = (
            () if msg.chance is None else ((f"chance {report.pct(msg.chance, 1)}", msg.chance),)
        )
        acc.set_series(epochs, {f"A {a}": series(ea, "val", "acc_combined"),
                                f"B {b}": series(eb, "val", "acc_combined")},
                       chances=chance)  # fmt: skip
        loss.set_series(epochs, {f"A {a}": series(ea, "val", "loss"),
                                 f"B {b}": series(eb, "val", "loss")})  # fmt: skip

    def _fill_cells(self, msg: Compared) -> None:
        heat = self.query_one("#cmp-heat", Heatmap)
        cells, m = msg.cells, DELTA_METRIC
        if cells is None:
            heat.set_data([], [], [], delta_scale([], m))
            self.query_one("#cmp-top", Static).update("")
            return
        flat = [v for row in cells.delta for v in row]
        heat.set_data(cells.mods, cells.snrs, cells.delta, delta_scale(flat, m))
        lines = ["[b]cells that changed most[/b] (B - A):"] if cells.top else []
        for cell in cells.top:
            d = cell["delta"]
            lines.append(
                f"  {cell['modulation']} @ {cell['snr_db']} dB: "
                f"{report.metric(m, cell['a'], '.3f', digits=1)} -> "
                f"{report.metric(m, cell['b'], '.3f', digits=1)} ({report.delta(m, d, '+.2f', digits=1)})"
            )
        self.query_one("#cmp-top", Static).update("\n".join(lines))

    @on(Heatmap.Highlighted, "#cmp-heat")
    def _cell(self, event: Heatmap.Highlighted) -> None:
        cells = self.data.cells if self.data is not None else None
        if cells is None or not cells.mods:
            self.query_one("#cmp-cell-info", Static).update("no export in common")
            return
        r, c, m = event.row, event.col, DELTA_METRIC
        if r >= len(cells.mods) or c >= len(cells.snrs):
            return

        def shown(v: float | None) -> str:
            return report.metric(m, v, ".3f") if contract.is_number(v) else NO_DATA

        d = cells.delta[r][c]
        self.query_one("#cmp-cell-info", Static).update(
            f"{export_text(self.data.export)} · combined accuracy · "
            f"{cells.mods[r]} @ {cells.snrs[c]} dB: "
            f"A {shown(cells.a[r][c])} · B {shown(cells.b[r][c])} · "
            f"delta {report.delta(m, d, '+.3f') if contract.is_number(d) else NO_DATA}"
        )

    def action_swap(self) -> None:
        self.a_dir, self.b_dir = self.b_dir, self.a_dir
        self.query_one("#cmp-head", Static).update("swapping...")
        self._compare(self.a_dir, self.b_dir)


def export_text(name: str | None) -> str:
    """Which split an export holds: the final export is the test split, each run evaluated
    at its own best epoch ("test (best epochs)"); `epoch_NNN` the validation split after
    epoch N."""
    if name == contract.FINAL_EXPORT:
        return "test (best epochs)"
    n = export_epoch(name or "")
    return f"val (epoch {n})" if n is not None else str(name)


def _metric_cell(v: Any, metric: str) -> str:
    """A metric as people read it: a share in percent, a loss or MAE as a number."""
    if not contract.is_number(v):
        return NO_DATA
    return report.metric(metric, v, ".4f")


def _delta_cell(v: Any, metric: str) -> Text | str:
    """B - A (points for a share), green when B is better (a drop is better for loss and
    MAE)."""
    if not contract.is_number(v):
        return report.MISSING
    better = v < 0 if contract.lower_is_better(metric) else v > 0
    style = "" if v == 0 else ("green" if better else "red")
    return Text(report.delta(metric, v), style=style)  # points, or a loss's 4 decimals


def _shared_chance(a_dir: Path, b_dir: Path) -> float | None:
    """Combined accuracy's chance (1 / classes x SNRs of the start event) when both runs have
    the same grid; None when either start event is missing or they differ."""
    grids = set()
    for d in (a_dir, b_dir):
        start = first_event(RunDir(d).events, "start") or {}
        classes, snrs = start.get("classes"), start.get("snrs")
        if not isinstance(classes, list) or not isinstance(snrs, list):
            return None
        grids.add((len(classes), len(snrs)))
    return chance_of(*grids.pop(), "acc_combined") if len(grids) == 1 else None
