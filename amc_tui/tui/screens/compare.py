"""Compare two runs: the config keys that differ, curves overlaid, the per-cell delta heatmap
(B - A on the newest export both have) and the metric table with deltas.

The comparison itself is `amc_tui.analysis.compare_runs`; this screen lays it out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static, TabbedContent, TabPane

from amc_tui.tui import fmt
from amc_tui.tui.heat import delta_scale
from amc_tui.tui.widgets.curves import Curves
from amc_tui.tui.widgets.heatmap import Heatmap

TABS = ("cmp-config", "cmp-metrics", "cmp-curves", "cmp-cells")
DELTA_METRIC = "acc_combined"


@dataclass
class Compared(Message):
    names: tuple[str, str] = ("A", "B")
    result: dict[str, Any] = field(default_factory=dict)
    curves: tuple[list, list] = ([], [])  # epoch events of A and B
    export: str | None = None
    mods: list[str] = field(default_factory=list)
    snrs: list[int] = field(default_factory=list)
    delta: list[list[float | None]] = field(default_factory=list)
    a_vals: list[list[float | None]] = field(default_factory=list)
    b_vals: list[list[float | None]] = field(default_factory=list)
    error: str | None = None


def delta_matrix(a_dir: Path, b_dir: Path, export: str, metric: str) -> tuple:
    """(mods, snrs, delta B-A, A, B) aligned by label; a cell only one run has is blank."""
    from amc_tui.analysis import cell_matrix, load_export

    ma, sa, va, _ = cell_matrix(load_export(a_dir / "export" / export).per_cell, metric)
    mb, sb, vb, _ = cell_matrix(load_export(b_dir / "export" / export).per_cell, metric)
    mods = [m for m in ma if m in set(mb)] + [m for m in mb if m not in set(ma)]
    snrs = sorted(set(sa) | set(sb))

    def grid(ms: list, ss: list, vals: Any) -> list[list[float | None]]:
        ri, ci = {m: i for i, m in enumerate(ms)}, {s: j for j, s in enumerate(ss)}
        out = []
        for m in mods:
            row = []
            for s in snrs:
                v = vals[ri[m]][ci[s]] if m in ri and s in ci else None
                row.append(float(v) if fmt.is_num(v) else None)
            out.append(row)
        return out

    ga, gb = grid(list(ma), list(sa), va.tolist()), grid(list(mb), list(sb), vb.tolist())
    delta = [
        [(b - a) if a is not None and b is not None else None for a, b in zip(ra, rb, strict=True)]
        for ra, rb in zip(ga, gb, strict=True)
    ]
    return mods, snrs, delta, ga, gb


class CompareScreen(Screen):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("t", "next_tab", "Tab"),
        Binding("x", "swap", "Swap A/B"),
    ]

    def __init__(self, a_dir: Path, b_dir: Path) -> None:
        super().__init__(classes="compare")
        self.a_dir, self.b_dir = Path(a_dir), Path(b_dir)
        self.data: Compared | None = None

    @property
    def amc(self) -> Any:
        return self.app

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"A = {self.a_dir.name} · B = {self.b_dir.name} · comparing...", id="cmp-head")
        with TabbedContent(id="cmp-tabs"):
            with TabPane("Config", id="cmp-config"):
                yield DataTable(id="cmp-config-table", cursor_type="row", zebra_stripes=True)
            with TabPane("Metrics", id="cmp-metrics"):
                yield DataTable(id="cmp-metrics-table", cursor_type="row", zebra_stripes=True)
            with TabPane("Curves", id="cmp-curves"), Container(id="cmp-plots"):
                yield Curves("val combined accuracy", id="cmp-plot-acc")
                yield Curves("val loss", id="cmp-plot-loss")
            with TabPane("Cells", id="cmp-cells"), VerticalScroll():
                yield Static("", id="cmp-cell-info")
                yield Heatmap(id="cmp-heat")
                yield Static("", id="cmp-top")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._compare(self.a_dir, self.b_dir)

    @work(thread=True, exclusive=True, group="compare", exit_on_error=False)
    def _compare(self, a_dir: Path, b_dir: Path) -> None:
        from amc_tui.analysis import compare_runs
        from amc_tui.runs import RunDir, read_run
        from amc_tui.tui.screens.analysis import epoch_events

        try:
            a, b = read_run(a_dir), read_run(b_dir)
            result = compare_runs(a, b)
            curves = (epoch_events(RunDir(a_dir).events), epoch_events(RunDir(b_dir).events))
            msg = Compared((a.name, b.name), result, curves)
            export = result.get("export")
            if export:
                msg.export = export
                msg.mods, msg.snrs, msg.delta, msg.a_vals, msg.b_vals = delta_matrix(
                    a_dir, b_dir, export, DELTA_METRIC
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
        self.query_one("#cmp-head", Static).update(
            f"A = [b]{a}[/b] · B = [b]{b}[/b] · {len(diff)} config keys differ"
            + (f" · cells from export {msg.export}" if msg.export else " · no common export")
        )
        table = self.query_one("#cmp-config-table", DataTable)
        table.clear(columns=True)
        table.add_columns("key", f"A {a}", f"B {b}")
        for key, va, vb in diff:
            table.add_row(key, fmt.fmt_value(va), fmt.fmt_value(vb), key=key)
        self._fill_metrics(msg.result.get("metrics", []), a, b)
        self._fill_curves(msg)
        self._fill_cells(msg)

    def _fill_metrics(self, rows: list[Any], a: str, b: str) -> None:
        table = self.query_one("#cmp-metrics-table", DataTable)
        table.clear(columns=True)
        if not rows:
            table.add_column("no metrics in common yet")
            return
        table.add_columns("metric", "best A", "best B", "Δ best", "final A", "final B", "Δ final")
        for row in rows:
            lower = bool(row.get("lower_is_better"))
            table.add_row(
                str(row.get("metric", "?")),
                _metric_cell(row.get("best_a")),
                _metric_cell(row.get("best_b")),
                _delta_cell(row.get("best_delta"), lower),
                _metric_cell(row.get("final_a")),
                _metric_cell(row.get("final_b")),
                _delta_cell(row.get("final_delta"), lower),
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

        acc.set_series(epochs, {f"A {a}": series(ea, "val", "acc_combined"),
                                f"B {b}": series(eb, "val", "acc_combined")})  # fmt: skip
        loss.set_series(epochs, {f"A {a}": series(ea, "val", "loss"),
                                 f"B {b}": series(eb, "val", "loss")})  # fmt: skip

    def _fill_cells(self, msg: Compared) -> None:
        heat = self.query_one("#cmp-heat", Heatmap)
        flat = [v for row in msg.delta for v in row]
        heat.set_data(msg.mods, msg.snrs, msg.delta, delta_scale(flat))
        top = msg.result.get("top_cells", [])
        lines = ["[b]cells that changed most[/b] (B - A):"] if top else []
        for cell in top:
            d = cell.get("delta")
            lines.append(
                f"  {cell.get('modulation', '?')} @ {cell.get('snr_db', '?')} dB: "
                f"{fmt.pct(cell.get('a'))} -> {fmt.pct(cell.get('b'))}"
                + (f" ({100 * d:+.1f} pts)" if fmt.is_num(d) else "")
            )
        self.query_one("#cmp-top", Static).update("\n".join(lines))

    @on(Heatmap.Highlighted, "#cmp-heat")
    def _cell(self, event: Heatmap.Highlighted) -> None:
        msg = self.data
        if msg is None or not msg.mods:
            self.query_one("#cmp-cell-info", Static).update("no export in common")
            return
        r, c = event.row, event.col
        if r >= len(msg.mods) or c >= len(msg.snrs):
            return
        d = msg.delta[r][c]
        self.query_one("#cmp-cell-info", Static).update(
            f"{msg.export} · combined accuracy · {msg.mods[r]} @ {msg.snrs[c]} dB: "
            f"A {fmt.pct(msg.a_vals[r][c])} · B {fmt.pct(msg.b_vals[r][c])} · "
            f"delta {(f'{100 * d:+.1f} pts') if d is not None else fmt.DASH}"
        )

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_swap(self) -> None:
        self.a_dir, self.b_dir = self.b_dir, self.a_dir
        self.query_one("#cmp-head", Static).update("swapping...")
        self._compare(self.a_dir, self.b_dir)

    def action_next_tab(self) -> None:
        tabs = self.query_one(TabbedContent)
        i = TABS.index(tabs.active) if tabs.active in TABS else 0
        tabs.active = TABS[(i + 1) % len(TABS)]


def _metric_cell(v: Any) -> str:
    return f"{v:.4f}" if fmt.is_num(v) else fmt.DASH


def _delta_cell(v: Any, lower_is_better: bool) -> Text | str:
    """B - A, green when B is better (a drop is better for loss and MAE)."""
    if not fmt.is_num(v):
        return fmt.DASH
    better = v < 0 if lower_is_better else v > 0
    style = "" if v == 0 else ("green" if better else "red")
    return Text(f"{v:+.4f}", style=style)
