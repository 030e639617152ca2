"""Analysis of one run's exports: per-(modulation, SNR) heatmap with a selectable metric and
the exact value and n under the cursor, the hardest cells, normalised confusion matrices,
per-class F1 and the per-epoch trajectory.

Exports load in a thread worker (pandas via amc_tui.analysis, imported lazily so the app
starts fast); the UI only draws what the worker posts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import (
    DataTable,
    Footer,
    Header,
    Select,
    Static,
    TabbedContent,
    TabPane,
)

from amc_tui import contract
from amc_tui.tui import fmt
from amc_tui.tui.heat import Scale, metric_scale
from amc_tui.tui.screens.base import AmcScreen
from amc_tui.tui.widgets.heatmap import Heatmap

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

METRICS: tuple[tuple[str, str], ...] = (
    ("acc_combined", "combined accuracy"),
    ("acc_mod", "modulation accuracy"),
    ("acc_snr", "SNR accuracy"),
    ("snr_mae_db", "SNR MAE (dB)"),
)
TABS = ("tab-heat", "tab-confusion", "tab-f1", "tab-traj")


@dataclass
class ExportsListed(Message):
    names: list[str]
    trajectory: list[dict[str, Any]]
    error: str | None = None


@dataclass
class ExportLoaded(Message):
    name: str
    metric: str
    mods: list[str] = field(default_factory=list)
    snrs: list[int] = field(default_factory=list)
    values: np.ndarray | None = None
    n: np.ndarray | None = None
    hardest: list[dict[str, Any]] = field(default_factory=list)
    conf_mod: pd.DataFrame | None = None
    conf_snr: pd.DataFrame | None = None
    f1_mod: pd.DataFrame | None = None
    f1_snr: pd.DataFrame | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def _normalise_rows(
    df: pd.DataFrame,
) -> tuple[list[str], list[str], list[list[float | None]], np.ndarray]:
    """Row-normalised shares of a confusion DataFrame (a row with no samples stays blank)."""
    counts = df.to_numpy(dtype=float)
    sums = counts.sum(axis=1, keepdims=True)
    shares = [
        [(c / s[0]) if s[0] > 0 else None for c in row]
        for row, s in zip(counts.tolist(), sums.tolist(), strict=True)
    ]
    return [str(i) for i in df.index], [str(c) for c in df.columns], shares, counts


class AnalysisScreen(AmcScreen):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("m", "next_metric", "Metric"),
        Binding("e", "next_export", "Export"),
        Binding("E", "prev_export", "Prev export", show=False),
        Binding("t", "next_tab", "Tab"),
        Binding("h", "focus_heatmap", "Heatmap", show=False),
    ]

    def __init__(self, run_dir: Path) -> None:
        super().__init__(classes="analysis")
        self.run_dir = Path(run_dir)
        self.exports: list[str] = []
        self.export = ""
        self.metric = METRICS[0][0]
        self.data: ExportLoaded | None = None
        self.conf: dict[str, tuple] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="an-bar"):
            yield Select([], prompt="export", allow_blank=True, id="an-export")
            yield Select(
                [(label, key) for key, label in METRICS],
                value=self.metric,
                allow_blank=False,
                id="an-metric",
            )
        yield Static(f"{self.run_dir.name}: loading exports...", id="an-info")
        with TabbedContent(id="an-tabs"):
            with TabPane("Heatmap", id="tab-heat"), VerticalScroll():
                yield Heatmap(id="an-heat")
                yield Static("", id="an-hard")
            with TabPane("Confusion", id="tab-confusion"), VerticalScroll():
                yield Static("modulation (row-normalised: true -> predicted)", classes="caption")
                yield Heatmap(id="an-cm-mod")
                yield Static("SNR (row-normalised: true -> predicted)", classes="caption")
                yield Heatmap(id="an-cm-snr")
            with TabPane("F1", id="tab-f1"):
                yield DataTable(id="an-f1", cursor_type="row", zebra_stripes=True)
            with TabPane("Trajectory", id="tab-traj"):
                yield DataTable(id="an-traj", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._list()
        self.query_one("#an-heat", Heatmap).focus()

    # ------------------------------------------------------------------ workers

    @work(thread=True, exclusive=True, group="an-list", exit_on_error=False)
    def _list(self) -> None:
        try:
            from amc_tui.analysis import list_exports, trajectory
            from amc_tui.runs import epoch_events

            names = list_exports(self.run_dir)
            traj = trajectory(epoch_events(self.run_dir))
            self.post_message(ExportsListed(list(names), list(traj)))
        except Exception as e:  # noqa: BLE001
            self.post_message(ExportsListed([], [], error=str(e)))

    @work(thread=True, exclusive=True, group="an-load", exit_on_error=False)
    def _load(self, name: str, metric: str) -> None:
        try:
            from amc_tui.analysis import cell_matrix, hardest_cells, load_export
            from amc_tui.runs import RunDir

            exp = load_export(RunDir(self.run_dir).export / name)
            mods, snrs, values, n = cell_matrix(exp.per_cell, metric)
            hard = hardest_cells(exp.per_cell, n=8, metric=metric)
            self.post_message(
                ExportLoaded(
                    name, metric, list(mods), list(snrs), values, n, list(hard),
                    exp.confusion_mod, exp.confusion_snr, exp.f1_mod, exp.f1_snr,
                    dict(exp.summary or {}),
                )
            )  # fmt: skip
        except Exception as e:  # noqa: BLE001
            self.post_message(ExportLoaded(name, metric, error=str(e)))

    # ------------------------------------------------------------------ results

    @on(ExportsListed)
    def _listed(self, msg: ExportsListed) -> None:
        if msg.error:
            self.amc.report_error(f"analysis: {msg.error}")
        self.exports = msg.names
        self._fill_trajectory(msg.trajectory)
        sel = self.query_one("#an-export", Select)
        sel.set_options([(n, n) for n in msg.names])
        if not msg.names:
            self.query_one("#an-info", Static).update(
                f"{self.run_dir.name}: no exports yet (the trainer writes one per epoch)"
            )
            return
        final = contract.FINAL_EXPORT
        default = final if final in msg.names else msg.names[-1]
        sel.value = default  # triggers Select.Changed -> load

    @on(Select.Changed, "#an-export")
    def _export_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, str) and event.value:
            self.export = event.value
            self._load(self.export, self.metric)

    @on(Select.Changed, "#an-metric")
    def _metric_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, str) and event.value != self.metric:
            self.metric = event.value
            if self.export:
                self._load(self.export, self.metric)

    @on(ExportLoaded)
    def _loaded(self, msg: ExportLoaded) -> None:
        if msg.error:
            self.amc.report_error(f"export {msg.name}: {msg.error}")
            self.query_one("#an-info", Static).update(f"export {msg.name}: cannot load")
            return
        if msg.name != self.export or msg.metric != self.metric:
            return  # a stale result
        self.data = msg
        values = msg.values.tolist() if hasattr(msg.values, "tolist") else msg.values
        flat = [v for row in values for v in row]
        heat = self.query_one("#an-heat", Heatmap)
        heat.set_data(msg.mods, msg.snrs, values, metric_scale(msg.metric, flat))
        self._fill_hardest(msg)
        self._fill_confusion(msg)
        self._fill_f1(msg)

    # ------------------------------------------------------------------ drawing

    def _fill_hardest(self, msg: ExportLoaded) -> None:
        label = dict(METRICS)[msg.metric]
        lines = [f"[b]hardest cells[/b] by {label}:"]
        for cell in msg.hardest:
            value = cell.get(msg.metric, cell.get("value"))
            shown = fmt.metric(value, msg.metric, digits=1, num_digits=2)
            lines.append(
                f"  {cell.get('modulation', '?')} @ {cell.get('snr_db', '?')} dB: {shown}"
                f" (n={cell.get('n', '?')})"
            )
        self.query_one("#an-hard", Static).update("\n".join(lines))

    def _fill_confusion(self, msg: ExportLoaded) -> None:
        for key, df in (("mod", msg.conf_mod), ("snr", msg.conf_snr)):
            heat = self.query_one(f"#an-cm-{key}", Heatmap)
            if df is None or not len(df):
                heat.set_data([], [], [], Scale("share"))
                continue
            rows, cols, shares, counts = _normalise_rows(df)
            self.conf[key] = (rows, cols, shares, counts)
            heat.set_data(rows, cols, shares, Scale("share"))

    def _fill_f1(self, msg: ExportLoaded) -> None:
        table = self.query_one("#an-f1", DataTable)
        table.clear(columns=True)
        mod = _f1_pairs(msg.f1_mod)
        snr = _f1_pairs(msg.f1_snr)
        table.add_columns("modulation", "F1 mod", "SNR dB", "F1 SNR")
        for i in range(max(len(mod), len(snr))):
            a = mod[i] if i < len(mod) else ("", None)
            b = snr[i] if i < len(snr) else ("", None)
            table.add_row(a[0], fmt.num(a[1]) if a[0] else "", b[0], fmt.num(b[1]) if b[0] else "")

    def _fill_trajectory(self, rows: list[dict[str, Any]]) -> None:
        table = self.query_one("#an-traj", DataTable)
        table.clear(columns=True)
        if not rows:
            table.add_column("no epochs yet")
            return
        keys = list(rows[0].keys())
        table.add_columns(*keys)
        for row in rows:
            table.add_row(*[_cell(row.get(k)) for k in keys])

    def _info(self) -> None:
        info = self.query_one("#an-info", Static)
        focused = self.focused
        if isinstance(focused, Heatmap) and focused.id in ("an-cm-mod", "an-cm-snr"):
            key = "mod" if focused.id == "an-cm-mod" else "snr"
            if key in self.conf:
                rows, cols, shares, counts = self.conf[key]
                r, c = focused.cursor
                if r < len(rows) and c < len(cols):
                    info.update(
                        f"{self.export} · {key} confusion · true {rows[r]} -> predicted {cols[c]}:"
                        f" {fmt.pct(shares[r][c])} ({int(counts[r][c])} of {int(counts[r].sum())})"
                    )
                    return
        data = self.data
        if data is None or not data.mods:
            return
        r, c = self.query_one("#an-heat", Heatmap).cursor
        if r >= len(data.mods) or c >= len(data.snrs):
            return
        value = data.values[r][c]
        n = data.n[r][c] if data.n is not None else None
        label = dict(METRICS)[data.metric]
        shown = fmt.metric(value, data.metric, digits=2, num_digits=3)
        n_txt = str(int(n)) if fmt.is_num(n) else fmt.DASH
        info.update(
            f"{self.export} · {data.mods[r]} @ {data.snrs[c]} dB · {label} = {shown} · n = {n_txt}"
        )

    @on(Heatmap.Highlighted)
    def _highlighted(self, event: Heatmap.Highlighted) -> None:
        self._info()

    def on_descendant_focus(self) -> None:
        self._info()

    # ------------------------------------------------------------------ actions

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_next_metric(self) -> None:
        keys = [k for k, _ in METRICS]
        self.query_one("#an-metric", Select).value = keys[(keys.index(self.metric) + 1) % len(keys)]

    def _step_export(self, step: int) -> None:
        if not self.exports:
            return
        i = self.exports.index(self.export) if self.export in self.exports else 0
        self.query_one("#an-export", Select).value = self.exports[(i + step) % len(self.exports)]

    def action_next_export(self) -> None:
        self._step_export(1)

    def action_prev_export(self) -> None:
        self._step_export(-1)

    def action_next_tab(self) -> None:
        tabs = self.query_one(TabbedContent)
        i = TABS.index(tabs.active) if tabs.active in TABS else 0
        tabs.active = TABS[(i + 1) % len(TABS)]
        target = {"tab-heat": "#an-heat", "tab-confusion": "#an-cm-mod",
                  "tab-f1": "#an-f1", "tab-traj": "#an-traj"}[tabs.active]  # fmt: skip
        self.query_one(target).focus()

    def action_focus_heatmap(self) -> None:
        self.query_one(TabbedContent).active = "tab-heat"
        self.query_one("#an-heat").focus()


def _f1_pairs(df: pd.DataFrame | None) -> list[tuple[str, float | None]]:
    """(label, f1) rows from an f1 DataFrame whatever its exact column names."""
    if df is None or not len(df):
        return []
    cols = list(df.columns)
    f1_col = next((c for c in cols if str(c).lower() in ("f1", "f1_score", "score")), cols[-1])
    label_col = next((c for c in cols if c != f1_col), None)
    out = []
    for idx, row in df.iterrows():
        label = row[label_col] if label_col is not None else idx
        v = row[f1_col]
        out.append((str(label), float(v) if fmt.is_num(v) else None))
    return out


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return " ".join(f"{k}={_cell(x)}" for k, x in v.items())
    return fmt.DASH if v is None else str(v)
