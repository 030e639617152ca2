"""Analysis of one run's exports: per-(modulation, SNR) heatmap with a selectable metric and
the exact value and n under the cursor, the hardest cells (Wilson bound, minimum n, the noise
floor named), the metric against SNR (overall or one modulation, overlaid with the runs marked
on the Runs screen, chance dashed), normalised confusion matrices, the confused pairs per SNR
band and the reliable-from (knee) table, per-class F1 and the per-epoch trajectory.

The header names the run. Exports are labelled by what they hold: `epoch_NNN` is the
validation split after epoch N ("val (epoch N)"), `final` the test split of the best epoch's
weights ("test (best epoch N)"). The trajectory puts the validation columns first under short
headers, so they fit 80 columns; the rest scroll (left / right) beside a fixed epoch column.

Exports load in a thread worker (pandas, through amc_tui.run.analysis); the UI only draws
what the worker posts, and this module (its charts need textual_plotext) loads through the
screen registry on first use. A cell without frames is no data, shown as a dot, never as 0 %.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
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

from amc_tui import contract, report
from amc_tui.run import tables
from amc_tui.run.analysis import (
    cell_matrix,
    export_epoch,
    list_exports,
    load_export,
    read_per_cell,
    read_summary,
    run_trajectory,
    snr_curve,
)
from amc_tui.run.rundir import RunDir, read_run
from amc_tui.tui import keys
from amc_tui.tui.models.axes import PALETTE, line
from amc_tui.tui.models.heat import Scale, metric_scale
from amc_tui.tui.models.overlay import marked_runs, overlay
from amc_tui.tui.screens.base import TabbedScreen
from amc_tui.tui.widgets.curves import Curves
from amc_tui.tui.widgets.heatmap import HeatBox, Heatmap

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

METRICS: tuple[tuple[str, str], ...] = (
    ("acc_combined", "combined accuracy"),
    ("acc_mod", "modulation accuracy"),
    ("acc_snr", "SNR accuracy"),
    ("snr_mae_db", "SNR MAE (dB)"),
)


# the trajectory's columns in order (row key, header): validation first, the best epoch
# starred in the epoch column; a key not named here follows under its own name
_SPLIT_COLUMNS = (("acc_combined", "comb"), ("acc_mod", "mod"), ("acc_snr", "SNR"),
                  ("loss", "loss"), ("snr_mae_db", "MAE dB"), ("snr_within_1", "±1 dB"))  # fmt: skip
TRAJ_COLUMNS: tuple[tuple[str, str], ...] = (
    ("epoch", "ep"),
    *((f"val_{k}", f"val {h}") for k, h in _SPLIT_COLUMNS),
    *((f"train_{k}", f"tr {h}") for k, h in _SPLIT_COLUMNS),
    ("w_mod", "w mod"), ("w_snr", "w SNR"), ("u_mod", "σ² mod"), ("u_snr", "σ² SNR"),
    ("lr", "lr"), ("epoch_time_s", "s/epoch"), ("samples_per_s", "frames/s"),
)  # fmt: skip
TRAJ_HIDDEN = frozenset({"is_best"})  # the best epoch is starred instead


def export_label(name: str, summary: dict[str, Any] | None = None) -> str:
    """What an export holds: `final` is the test split evaluated with the best epoch's
    weights ("test (best epoch 3)"), `epoch_NNN` the validation split after epoch N."""
    if name == contract.FINAL_EXPORT:
        s = summary or {}
        best = s.get("best") if isinstance(s.get("best"), dict) else {}
        epoch = s.get("epoch", best.get("epoch"))
        return f"test (best epoch {epoch})" if isinstance(epoch, int) else "test (best epoch)"
    n = export_epoch(name)
    return f"val (epoch {n})" if n is not None else name


@dataclass
class ExportsListed(Message):
    names: list[str]
    trajectory: list[dict[str, Any]]
    error: str | None = None
    why_none: str = ""  # why there is no export yet
    labels: dict[str, str] = field(default_factory=dict)  # export name -> export_label


@dataclass
class ExportLoaded(Message):
    name: str
    metric: str
    mods: list[str] = field(default_factory=list)
    snrs: list[int] = field(default_factory=list)
    values: np.ndarray | None = None
    n: np.ndarray | None = None
    cell_tables: tables.Tables | None = None
    conf_mod: pd.DataFrame | None = None
    conf_snr: pd.DataFrame | None = None
    f1_mod: pd.DataFrame | None = None
    f1_snr: pd.DataFrame | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    per_cell: pd.DataFrame | None = None
    others: dict[Path, tuple[str, pd.DataFrame]] = field(default_factory=dict)  # overlaid runs


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


class AnalysisScreen(TabbedScreen):
    # the tabs fill the screen under the readout, so a tall heatmap scrolls inside its tab
    DEFAULT_CSS = """
    AnalysisScreen #an-tabs, AnalysisScreen #an-tabs > ContentSwitcher,
    AnalysisScreen #an-tabs TabPane { height: 1fr; }
    AnalysisScreen #an-hard-box { height: 1fr; }
    AnalysisScreen .cap { color: $text-muted; padding: 0 1; }
    """
    BINDINGS = keys.bindings("analysis")
    TABS_ID = "an-tabs"
    TABS = ("tab-heat", "tab-snr", "tab-confusion", "tab-confusion-snr", "tab-tables", "tab-f1",
            "tab-traj")  # fmt: skip
    TAB_FOCUS = {"tab-heat": "#an-heat", "tab-snr": "#an-snr", "tab-confusion": "#an-cm-mod",
                 "tab-confusion-snr": "#an-cm-snr", "tab-tables": "#an-tables-box",
                 "tab-f1": "#an-f1", "tab-traj": "#an-traj"}  # fmt: skip

    def __init__(self, run_dir: Path) -> None:
        super().__init__(classes="analysis")
        self.run_dir = Path(run_dir)
        self.exports: list[str] = []
        self.export = ""
        self.metric = METRICS[0][0]
        self.data: ExportLoaded | None = None
        self.conf: dict[str, tuple] = {}
        self.curve_of: str | None = None  # the SNR curve's modulation; None = all of them
        self.overlay = overlay(self.run_dir, [])
        self.labels: dict[str, str] = {}  # export name -> what it holds (export_label)

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
            with TabPane("Heatmap", id="tab-heat"), HeatBox():
                yield Heatmap(id="an-heat")
                with VerticalScroll(id="an-hard-box"):
                    yield Static("", id="an-hard")
            with TabPane("SNR curve", id="tab-snr"):
                yield Curves(
                    "accuracy vs SNR",
                    xlabel="SNR (dB)",
                    percent=True,
                    focusable=True,
                    id="an-snr",
                )
            with TabPane("Confusion mod", id="tab-confusion"):
                yield Static("modulation, row-normalised: true (rows) -> predicted", classes="cap")
                yield HeatBox(Heatmap(id="an-cm-mod"))
            with TabPane("Confusion SNR", id="tab-confusion-snr"):
                yield Static("SNR, row-normalised: true (rows) -> predicted", classes="cap")
                yield HeatBox(Heatmap(id="an-cm-snr"))
            with TabPane("Tables", id="tab-tables"), VerticalScroll(id="an-tables-box"):
                yield Static("", id="an-tables")
            with TabPane("F1", id="tab-f1"):
                yield DataTable(id="an-f1", cursor_type="row", zebra_stripes=True)
            with TabPane("Trajectory", id="tab-traj"):
                yield DataTable(id="an-traj", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = f"{self.amc.sub_title} · analysis of {self.run_dir.name}"
        self._list()
        self.query_one("#an-heat", Heatmap).focus()

    def label(self, name: str) -> str:
        return self.labels.get(name) or export_label(name)

    # ------------------------------------------------------------------ workers

    @work(thread=True, exclusive=True, group="an-list", exit_on_error=False)
    def _list(self) -> None:
        try:
            names = list_exports(self.run_dir)
            traj = run_trajectory(self.run_dir)
            why = "" if names else _why_no_export(self.run_dir)
            final = contract.FINAL_EXPORT
            labels = {n: export_label(n) for n in names}
            if final in labels:  # the best epoch it was evaluated with
                labels[final] = export_label(
                    final, read_summary(RunDir(self.run_dir).export / final)
                )
            self.post_message(ExportsListed(list(names), list(traj), why_none=why, labels=labels))
        except Exception as e:  # noqa: BLE001
            self.post_message(ExportsListed([], [], error=str(e)))

    @work(thread=True, exclusive=True, group="an-load", exit_on_error=False)
    def _load(self, name: str, metric: str, others: tuple[Path, ...] = ()) -> None:
        try:
            exp = load_export(RunDir(self.run_dir).export / name)
            mods, snrs, values, n = cell_matrix(exp.per_cell, metric)
            tabs = tables.export_tables(exp.dir, metric=hardest_metric(metric))
            loaded = {}
            for d in others:  # the same export when the run has it, else its newest
                names = list_exports(d)
                pick = name if name in names else (names[-1] if names else None)
                if pick is not None:
                    loaded[d] = (pick, read_per_cell(RunDir(d).export / pick))
            self.post_message(
                ExportLoaded(
                    name, metric, list(mods), list(snrs), values, n, tabs,
                    exp.confusion_mod, exp.confusion_snr, exp.f1_mod, exp.f1_snr,
                    dict(exp.summary or {}), per_cell=exp.per_cell, others=loaded,
                )
            )  # fmt: skip
        except Exception as e:  # noqa: BLE001
            self.post_message(ExportLoaded(name, metric, error=str(e)))

    def _start_load(self) -> None:
        self.overlay = overlay(self.run_dir, marked_runs(self.app))
        self._load(self.export, self.metric, self.overlay.dirs[1:])

    # ------------------------------------------------------------------ results

    @on(ExportsListed)
    def _listed(self, msg: ExportsListed) -> None:
        if msg.error:
            self.amc.report_error(f"analysis: {msg.error}")
        self.exports = msg.names
        self.labels = dict(msg.labels)
        self._fill_trajectory(msg.trajectory)
        sel = self.query_one("#an-export", Select)
        sel.set_options([(self.label(n), n) for n in msg.names])
        if not msg.names:
            self.query_one("#an-info", Static).update(
                f"{self.run_dir.name}: {msg.why_none or 'no exports yet'}"
            )
            return
        final = contract.FINAL_EXPORT
        default = final if final in msg.names else msg.names[-1]
        sel.value = default  # triggers Select.Changed -> load

    @on(Select.Changed, "#an-export")
    def _export_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, str) and event.value:
            self.export = event.value
            self._start_load()

    @on(Select.Changed, "#an-metric")
    def _metric_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, str) and event.value != self.metric:
            self.metric = event.value
            if self.export:
                self._start_load()

    @on(ExportLoaded)
    def _loaded(self, msg: ExportLoaded) -> None:
        if msg.error:
            self.amc.report_error(f"export {msg.name}: {msg.error}")
            self.query_one("#an-info", Static).update(f"export {self.label(msg.name)}: cannot load")
            return
        if msg.name != self.export or msg.metric != self.metric:
            return  # a stale result
        self.data = msg
        values = msg.values.tolist() if hasattr(msg.values, "tolist") else msg.values
        flat = [v for row in values for v in row]
        heat = self.query_one("#an-heat", Heatmap)
        heat.set_data(msg.mods, msg.snrs, values, metric_scale(msg.metric, flat))
        if self.curve_of not in msg.mods:
            self.curve_of = None
        self._fill_snr_curve()
        self._fill_hardest(msg)
        self._fill_tables(msg)
        self._fill_confusion(msg)
        self._fill_f1(msg)

    # ------------------------------------------------------------------ drawing

    def _fill_hardest(self, msg: ExportLoaded) -> None:
        """The hardest cells above the noise floor, never one under its minimum n."""
        t = msg.cell_tables
        if t is None:
            return
        h = t.hardest
        label = tables.LABELS[h.metric]
        lines = [f"[b]hardest cells[/b] by {label}:"]
        for c in h.cells:
            lines.append(
                f"  {c.modulation} @ {c.snr} dB: {report.pct(c.acc, 1)}"
                f" ({report.pct(c.lo, 1)}..{report.pct(c.hi, 1)}, n={c.n})"
            )
        if not h.cells:
            lines.append(f"  none above the noise floor with n >= {h.min_n}")
        lines.append(escape(h.text()))
        self.query_one("#an-hard", Static).update("\n".join(lines))

    def _fill_tables(self, msg: ExportLoaded) -> None:
        """The confused pairs per SNR band and the reliable-from table, as `show` prints them."""
        t = msg.cell_tables
        if t is None:
            return
        text = "\n".join(tables.text_lines(t, self.label(msg.name)))
        self.query_one("#an-tables", Static).update(escape(text))

    def _fill_snr_curve(self) -> None:
        """The metric against SNR: all modulations (and the chosen one) for this run, or the
        chosen curve of every overlaid run in its run colour."""

        msg = self.data
        chart = self.query_one("#an-snr", Curves)
        if msg is None or msg.per_cell is None:
            return
        chart.percent = contract.is_percent(msg.metric)
        label = dict(METRICS)[msg.metric]
        of = self.curve_of or "all modulations"
        ov = self.overlay
        if ov.multi:
            frames = {self.run_dir: (msg.name, msg.per_cell), **msg.others}
            lines = [
                line(d.name, *snr_curve(frames[d][1], msg.metric, self.curve_of), ov.colors[d])
                for d in ov.dirs
                if d in frames
            ]
        else:
            lines = [line("all", *snr_curve(msg.per_cell, msg.metric), PALETTE[0])]
            if self.curve_of:
                lines.append(
                    line(self.curve_of, *snr_curve(msg.per_cell, msg.metric, self.curve_of),
                         PALETTE[1])
                )  # fmt: skip
        level = (
            tables.chance(msg.per_cell, msg.metric) if msg.metric in tables.ACC_METRICS else None
        )
        chance = () if level is None else ((f"chance {report.pct(level, 1)}", level),)
        chart.set_lines(lines, title=f"{label} vs SNR · {of} · {self.label(msg.name)}",
                        empty="no data", chances=chance)  # fmt: skip

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
        seen = {"mod": _frames_seen(msg.conf_mod), "snr": _frames_seen(msg.conf_snr)}

        def f1(pair: tuple[str, float | None], key: str) -> str:
            """A class no frame was or was predicted as has no F1 (the file says 0)."""
            if not pair[0]:
                return ""
            return "no data" if seen[key].get(pair[0]) == 0 else report.num(pair[1])

        table.add_columns("modulation", "F1 mod", "SNR dB", "F1 SNR")
        for i in range(max(len(mod), len(snr))):
            a = mod[i] if i < len(mod) else ("", None)
            b = snr[i] if i < len(snr) else ("", None)
            table.add_row(a[0], f1(a, "mod"), b[0], f1(b, "snr"))

    def _fill_trajectory(self, rows: list[dict[str, Any]]) -> None:
        table = self.query_one("#an-traj", DataTable)
        table.clear(columns=True)
        table.fixed_columns = 0
        if not rows:
            table.add_column("no epochs yet")
            return
        named = dict(TRAJ_COLUMNS)
        cols = [(k, h) for k, h in TRAJ_COLUMNS if k in rows[0]]
        cols += [(k, k) for k in rows[0] if k not in named and k not in TRAJ_HIDDEN]
        for key, header in cols:
            table.add_column(header, key=key)
        table.fixed_columns = 1  # the epoch stays while the other columns scroll
        # the best epoch: the last one that was best when it ended (is_best marks each new best)
        best = next((r.get("epoch") for r in reversed(rows) if r.get("is_best")), None)
        for row in rows:
            cells = [_cell(row.get(k), k) for k, _ in cols]
            if best is not None and row.get("epoch") == best:
                cells[0] += " ★"
            table.add_row(*cells, key=str(row.get("epoch")))

    def _info(self) -> None:
        info = self.query_one("#an-info", Static)
        focused = self.focused
        if isinstance(focused, Heatmap) and focused.id in ("an-cm-mod", "an-cm-snr"):
            key = "mod" if focused.id == "an-cm-mod" else "snr"
            if key in self.conf:
                rows, cols, shares, counts = self.conf[key]
                r, c = focused.cursor
                if r < len(rows) and c < len(cols):
                    total = int(counts[r].sum())
                    share = report.pct(shares[r][c], 1) if total else "no data"
                    info.update(
                        f"{self.label(self.export)} · {key} confusion · true {rows[r]} -> "
                        f"predicted {cols[c]}:"
                        f" {share} ({int(counts[r][c])} of {total})"
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
        shown = report.metric(data.metric, value, ".3f")
        if not contract.is_number(value) or not n:
            shown = "no data"
        n_txt = str(int(n)) if contract.is_number(n) else report.MISSING
        info.update(
            f"{self.label(self.export)} · {data.mods[r]} @ {data.snrs[c]} dB · {label} = {shown}"
            f" · n = {n_txt}"
        )

    @on(Heatmap.Highlighted)
    def _highlighted(self, event: Heatmap.Highlighted) -> None:
        self._info()

    def on_descendant_focus(self) -> None:
        self._info()

    # ------------------------------------------------------------------ actions

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

    def action_next_curve(self) -> None:
        """The SNR curve of all modulations, then of each in turn."""
        if self.data is None:
            return
        subjects: list[str | None] = [None, *self.data.mods]
        i = subjects.index(self.curve_of) if self.curve_of in subjects else 0
        self.curve_of = subjects[(i + 1) % len(subjects)]
        self.query_one(TabbedContent).active = "tab-snr"
        self._fill_snr_curve()

    def action_explain(self) -> None:
        self.amc.open_explain(self.run_dir)

    def action_focus_heatmap(self) -> None:
        self.query_one(TabbedContent).active = "tab-heat"
        self.query_one("#an-heat").focus()


def hardest_metric(metric: str) -> str:
    """The accuracy the hardest cells rank by: the chosen one, or SNR accuracy for the SNR MAE
    (a Wilson bound needs a share)."""
    return metric if metric in tables.ACC_METRICS else "acc_snr"


def _why_no_export(run_dir: Path) -> str:
    """Why a run has no export: still in its first epoch, or it ended before one (its error)."""

    info = read_run(run_dir)
    if info.active:
        return "no exports yet (the trainer writes one per epoch)"
    what = {"failed": "failed", "crashed": "crashed", "stopped": "was stopped"}.get(
        info.state, f"ended ({info.state})"
    )
    text = f"the run {what} before its first epoch ended, so it has no exports"
    if info.error:
        text += f": {info.error.strip().splitlines()[-1][:400]}"
    return text


def _frames_seen(conf: pd.DataFrame | None) -> dict[str, int]:
    """label -> frames that were, or were predicted as, that class (row plus column sum)."""
    if conf is None or not len(conf):
        return {}
    counts = conf.to_numpy(dtype=float)
    return {
        str(label): int(counts[i].sum() + (counts[:, i].sum() if i < counts.shape[1] else 0))
        for i, label in enumerate(conf.index)
    }


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
        if isinstance(label, float) and label.is_integer():
            label = int(label)  # an SNR in dB read as a float column: 2, not 2.0
        v = row[f1_col]
        out.append((str(label), float(v) if contract.is_number(v) else None))
    return out


# fixed decimals per trajectory column, so a column's values line up (others: .4g)
_SPECS = {"loss": ".3f", "snr_mae_db": ".2f", "u_mod": ".3f", "u_snr": ".3f", "lr": ".3g",
          "epoch_time_s": ".2f", "samples_per_s": ".0f"}  # fmt: skip


def _cell(v: Any, key: str = "") -> str:
    """A trajectory value: accuracies and weight shares in percent, others as numbers."""
    name = key.partition("_")[2]
    if isinstance(v, float) and (contract.is_percent(name) or key in ("w_mod", "w_snr")):
        return report.pct(v, 2)
    if isinstance(v, float):
        return f"{v:{_SPECS.get(key, _SPECS.get(name, '.4g'))}}"
    if isinstance(v, dict):
        return " ".join(f"{k}={_cell(x)}" for k, x in v.items())
    return report.MISSING if v is None else str(v)
