"""Paper-ready figures of runs and sweep points, written as PNG (300 dpi), SVG or PDF.

A target is one run or a point's group of runs (drawn as the mean with a ±1 std band).
Figures: accuracy vs SNR (targets overlaid), accuracy vs SNR per modulation, the per
(modulation, SNR) heatmap, the row-normalised modulation confusion matrix, training curves, and
the knee figure (modulation accuracy vs SNR per modulation against the 50 % / 90 % levels), and
accuracy per SNR band (targets side by side, a point's bar its runs' mean with the 95 % CI).
Every accuracy axis has a dashed chance line (1 / classes of its head), and every figure's text
is fitted to its canvas (`fit`: titles wrapped, legend columns chosen to fit) before saving.
They read the analysis export (test split from export/final when every run has one, else the
validation export of the best epoch; the title says which) and the epoch events. Everything is
read and checked before the first file is written, and each file is replaced atomically.
matplotlib is heavy: only the commands that draw import this module, never the app's start-up.
"""

from __future__ import annotations

import math
import os
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before anything imports pyplot: no display, no GUI event loop

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.font_manager import FontProperties  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from amc_tui import contract, report  # noqa: E402
from amc_tui.errors import UserError  # noqa: E402
from amc_tui.fsutil import atomic_write_with  # noqa: E402
from amc_tui.run import analysis, tables  # noqa: E402
from amc_tui.run.rundir import (  # noqa: E402
    RunDir,
    dig,
    epoch_events,
    read_config_dict,
    read_meta,
    read_run,
)
from amc_tui.sweeps.point_tables import BAND_NAMES, band_accuracy  # noqa: E402
from amc_tui.sweeps.stats import cell_stats, describe  # noqa: E402

FORMATS = ("png", "svg", "pdf")
KINDS = ("snr", "snr_mod", "heatmap", "confusion", "curves", "knee", "bands")
OVERLAID = ("snr", "bands")  # one figure for every target; the others: one per target
SPLITS = ("auto", "test", "val")
DPI = 300
SIZES = {  # inches: 7 in is a two-column figure width
    "snr": (7.0, 2.8),
    "snr_mod": (7.0, 4.2),
    "heatmap": (7.0, 4.2),
    "confusion": (6.0, 5.4),
    "curves": (7.0, 5.0),
    "knee": (7.0, 4.2),
    "bands": (7.0, 3.2),
}
FILE_STEMS = {"snr": "acc_vs_snr", "snr_mod": "acc_vs_snr_per_mod", "heatmap": "heatmap",
              "confusion": "confusion_mod", "curves": "curves", "knee": "knee",
              "bands": "acc_by_snr_band"}  # fmt: skip
ACC_PANELS = (("acc_combined", "Combined"), ("acc_mod", "Modulation"), ("acc_snr", "SNR"))
STYLE = {"font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8, "legend.fontsize": 7,
         "xtick.labelsize": 7, "ytick.labelsize": 7, "figure.titlesize": 10,
         "axes.grid": True, "grid.alpha": 0.3, "lines.linewidth": 1.3, "lines.markersize": 3,
         "svg.hashsalt": "amc-tui", "svg.fonttype": "none", "pdf.fonttype": 42}  # fmt: skip
METADATA = {"png": {"Software": None}, "svg": {"Date": None}, "pdf": {"CreationDate": None}}


@dataclass(frozen=True)
class Target:
    """What one line (or one figure) stands for: a run, or a sweep point's runs."""

    label: str
    runs: tuple[Path, ...]

    @classmethod
    def of_run(cls, path: str | os.PathLike[str], label: str | None = None) -> Target:
        p = Path(path)
        return cls(label or read_run(p, with_last_epoch=False).name, (p,))

    @property
    def group(self) -> bool:
        return len(self.runs) > 1


@dataclass
class _Run:
    name: str
    path: Path
    export: analysis.Export | None = None
    epoch: int | None = None  # the export's epoch (None for the test split)
    traj: list[dict[str, Any]] = field(default_factory=list)


# --------------------------------------------------------------------------- reading


def _best_epoch(path: Path, traj: list[dict[str, Any]]) -> int | None:
    select = dig(read_config_dict(RunDir(path)), "train.select_metric") or contract.DEFAULT_SELECT
    row = analysis.best_row(traj, str(select))
    return int(row["epoch"]) if row else None


def _val_export(run: _Run) -> tuple[Path, int | None]:
    names = [n for n in analysis.list_exports(run.path) if n != analysis.FINAL]
    if not names:
        raise UserError(f"run {run.name}: no analysis export under {run.path / 'export'}")
    best = _best_epoch(run.path, run.traj or analysis.export_trajectory(run.path))
    name = contract.epoch_export_name(best) if best is not None else names[-1]
    name = name if name in names else names[-1]
    return run.path / "export" / name, analysis.export_epoch(name)


def _load(targets: Sequence[Target], kinds: Sequence[str], split: str) -> tuple[str, list]:
    """Read every run a figure needs; a UserError names the first run that lacks something."""
    loaded = []
    for t in targets:
        if not t.runs:
            raise UserError(f"{t.label}: no runs to plot")
        runs = []
        for p in t.runs:
            if not p.is_dir():
                raise UserError(f"{t.label}: run folder not found: {p}")
            run = _Run(read_run(p, with_last_epoch=False).name, p)
            run.traj = analysis.trajectory(epoch_events(p)) or analysis.export_trajectory(p)
            if "curves" in kinds and not run.traj:
                raise UserError(f"run {run.name}: no epoch events to draw training curves")
            runs.append(run)
        loaded.append((t, runs))
    cell_kinds = [k for k in kinds if k != "curves"]
    if not cell_kinds:
        return "", loaded
    finals = {r.name: RunDir(r.path).final_export / contract.PER_CELL_FILE
              for _, runs in loaded for r in runs}  # fmt: skip
    if split == "auto":
        split = "test" if all(f.is_file() for f in finals.values()) else "val"
    for _, runs in loaded:
        for r in runs:
            if split == "test":
                if not finals[r.name].is_file():
                    raise UserError(
                        f"run {r.name}: no test-split export ({finals[r.name]} is missing: the "
                        "run did not complete); plot the validation split instead"
                    )
                r.export = analysis.load_export(finals[r.name].parent)
            else:
                export_dir, r.epoch = _val_export(r)
                r.export = analysis.load_export(export_dir)
            if r.export.per_cell.empty:
                raise UserError(f"run {r.name}: {r.export.dir / contract.PER_CELL_FILE} is "
                                "missing or unreadable")  # fmt: skip
            if "confusion" in kinds and r.export.confusion_mod.empty:
                raise UserError(f"run {r.name}: {r.export.dir / contract.CONFUSION_FILES['mod']} "
                                "is missing or unreadable")  # fmt: skip
    return split, loaded


def _split_text(split: str, runs: Sequence[_Run]) -> str:
    if split == "test":
        return "test split"
    epochs = sorted({r.epoch for r in runs if r.epoch is not None})
    if len(runs) == 1 and epochs:
        return f"validation split, epoch {epochs[0]}"
    return "validation split, best epochs"


def _names(labels: Sequence[str]) -> str:
    if len(labels) <= 3:
        return ", ".join(labels)
    return f"{labels[0]}, {labels[1]} and {len(labels) - 2} more"


def slug(label: str) -> str:
    """A file-name-safe form of a run or point label."""
    s = re.sub(r"[^A-Za-z0-9._=+-]+", "_", label).strip("._")
    return s[:80] or "target"


# --------------------------------------------------------------------------- aggregation


def _snr_curve(per_cell: pd.DataFrame, metric: str) -> pd.Series:
    """Accuracy per SNR over all modulations, weighted by frames (cells without frames skip)."""
    df = per_cell[per_cell["n"] > 0]
    w = df["n"].astype(float)
    num = (df[metric].astype(float) * w).groupby(df["snr_db"].astype(int)).sum()
    return num / w.groupby(df["snr_db"].astype(int)).sum()


def _mean_std(series: Sequence[pd.Series]) -> tuple[pd.Series, pd.Series]:
    df = pd.concat(list(series), axis=1)
    return df.mean(axis=1), df.std(axis=1, ddof=1)


def _cells(runs: Sequence[_Run]) -> pd.DataFrame:
    """A per_cell-shaped frame of the members' mean per cell (n = members with frames)."""
    long = cell_stats([r.export.per_cell for r in runs if r.export is not None])
    wide = long.pivot(index=["modulation", "snr_db"], columns="metric", values="mean")
    n = long[long["metric"] == "acc_combined"].set_index(["modulation", "snr_db"])["n"]
    wide["n"] = n
    return wide.reset_index()


def _cell_std(runs: Sequence[_Run], metric: str) -> pd.DataFrame:
    long = cell_stats([r.export.per_cell for r in runs if r.export is not None])
    return long[long["metric"] == metric]


def _confusion(runs: Sequence[_Run]) -> pd.DataFrame:
    """Summed counts of the members, each row divided by its total (a row without frames
    stays NaN)."""
    total: pd.DataFrame | None = None
    for r in runs:
        cm = r.export.confusion_mod.astype(float)  # type: ignore[union-attr]
        cm.index, cm.columns = cm.index.astype(str), cm.columns.astype(str)
        total = cm if total is None else total.add(cm, fill_value=0.0)
    assert total is not None
    rows = total.sum(axis=1)
    return total.div(rows.where(rows > 0), axis=0)


def _traj_stats(runs: Sequence[_Run], key: str) -> tuple[pd.Series, pd.Series]:
    series = [pd.Series({row["epoch"]: row.get(key) for row in r.traj}, dtype=float) for r in runs]
    return _mean_std(series)


# --------------------------------------------------------------------------- drawing


def _line(ax: Any, mean: pd.Series, std: pd.Series | None, label: str, **kw: Any) -> None:
    mean = mean.dropna()
    if mean.empty:
        return
    (line,) = ax.plot(mean.index, mean.values, label=label, **kw)
    if std is not None:
        s = std.reindex(mean.index)
        ok = s.notna()
        if ok.any():
            ax.fill_between(mean.index[ok], (mean - s)[ok], (mean + s)[ok], alpha=0.2,
                            color=line.get_color(), linewidth=0)  # fmt: skip


def _percent_axis(ax: Any, label: str = "Accuracy (%)") -> None:
    ax.set_ylim(0, 100)
    ax.set_ylabel(label)


CHANCE_STYLE = {"color": "grey", "linestyle": "--", "linewidth": 0.9}


def _chance_line(ax: Any, chance: float | None, name: str | None = None) -> None:
    """A dashed line at the head's chance level (in percent), named in the legend."""
    if chance is None:
        return
    name = name or f"chance ({report.pct(chance, 1)})"
    ax.axhline(100 * chance, label=name, zorder=1, **CHANCE_STYLE)


def _run_chance(runs: Sequence[_Run], metric: str) -> float | None:
    """The chance level of `metric` for these runs: from their export's cells, else from
    meta.json's cell counts (None when the runs disagree or neither is known)."""
    levels = set()
    for r in runs:
        if r.export is not None and not r.export.per_cell.empty:
            levels.add(tables.chance(r.export.per_cell, metric))
            continue
        cells = read_meta(RunDir(r.path)).get("cells") or {}
        n_mod, n_snr = cells.get("classes"), cells.get("snrs")
        ok = isinstance(n_mod, int) and isinstance(n_snr, int)
        levels.add(tables.chance_of(n_mod, n_snr, metric) if ok else None)
    return levels.pop() if len(levels) == 1 else None


def _text_width(fig: Figure, text: str, size: float) -> float:
    """Pixels `text` takes at font `size` on this figure's canvas."""
    t = Text(0, 0, text, fontsize=size, figure=fig)
    return float(t.get_window_extent(_renderer(fig)).width)


def _renderer(fig: Figure) -> Any:
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    return fig.canvas.get_renderer()


def _legend_below(fig: Figure, handles: list, labels: list[str]) -> None:
    """A figure legend under the axes with as many columns (up to 4) as fit the width; labels
    wrapped when even one column is too wide."""
    if not labels:
        return
    size = FontProperties(size=matplotlib.rcParams["legend.fontsize"]).get_size_in_points()
    room = 0.95 * fig.bbox.width
    widest = max(_text_width(fig, lb, size) for lb in labels) + 4 * size * fig.dpi / 72
    ncols = max(1, min(4, len(labels), int(room // widest)))
    if ncols == 1 and widest > room:
        chars = max(12, int(max(map(len, labels)) * room / widest))
        labels = ["\n".join(textwrap.wrap(lb, chars)) for lb in labels]
    fig.legend(handles, labels, loc="outside lower center", ncols=ncols)


def _tick_labels(fig: Figure) -> set[int]:
    """The ids of every tick label: an axis keeps Tick objects it does not draw (outside the
    view), so tick labels are checked through the figure's tight bbox instead (`overflows`)."""
    ids = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for tick in [*axis.majorTicks, *axis.minorTicks]:
                ids.update((id(tick.label1), id(tick.label2)))
    return ids


def _texts(fig: Figure) -> list[Text]:
    """Every text the figure draws but its tick labels: titles, axis labels, legends, notes."""
    ticks = _tick_labels(fig)
    return [
        t
        for t in fig.findobj(Text)
        if t.get_visible() and t.get_text().strip() and id(t) not in ticks
    ]


def overflows(fig: Figure) -> bool:
    """Whether anything drawn (tick labels included) leaves the figure: its tight bbox."""
    fig.draw_without_rendering()
    tight = fig.get_tightbbox(_renderer(fig))
    w, h = fig.get_size_inches()
    eps = 0.5 / fig.dpi
    return tight.x0 < -eps or tight.y0 < -eps or tight.x1 > w + eps or tight.y1 > h + eps


def outside(fig: Figure) -> list[Text]:
    """The texts (tick labels aside) whose drawn extent leaves the figure, after layout."""
    fig.draw_without_rendering()
    r, box = _renderer(fig), fig.bbox
    bad = []
    for t in _texts(fig):
        e = t.get_window_extent(r)
        if e.width == 0 and e.height == 0:
            continue
        if e.x0 < box.x0 - 0.5 or e.x1 > box.x1 + 0.5 or e.y0 < box.y0 - 0.5 or e.y1 > box.y1 + 0.5:
            bad.append(t)
    return bad


def fit(fig: Figure, rounds: int = 4) -> Figure:
    """Wrap every title or label that leaves the figure until all text fits (a few rounds:
    wrapping one line makes the layout give the axes less room)."""
    for _ in range(rounds):
        bad = outside(fig)
        if not bad:
            break
        r = _renderer(fig)
        for t in bad:
            text = t.get_text()
            width = t.get_window_extent(r).width
            longest = max(len(line) for line in text.splitlines())
            chars = max(10, int(longest * 0.92 * fig.bbox.width / max(width, 1.0)))
            if chars >= longest:
                chars = max(10, longest - 8)
            t.set_text("\n".join(textwrap.fill(line, chars) for line in text.splitlines()))
    return fig


def _no_data(ax: Any) -> None:
    ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="grey")


def _fig_snr(loaded: list, split_text: str) -> Figure:
    fig = Figure(figsize=SIZES["snr"], layout="constrained")
    axes = fig.subplots(1, len(ACC_PANELS), sharey=True)
    for ax, (metric, title) in zip(axes, ACC_PANELS, strict=True):
        for t, runs in loaded:
            curves = [100 * _snr_curve(r.export.per_cell, metric) for r in runs]
            mean, std = _mean_std(curves)
            _line(ax, mean, std if t.group else None, t.label, marker="o")
        chance = _run_chance([r for _, runs in loaded for r in runs], metric)
        _chance_line(ax, chance, "chance (1 / classes of the head)" if ax is axes[0] else "_")
        ax.set_title(f"{title} accuracy")
        ax.set_xlabel("SNR (dB)")
        _percent_axis(ax)
        ax.label_outer()
    handles, labels = axes[0].get_legend_handles_labels()
    band = "; bands: ± 1 std over a group's runs" if any(t.group for t, _ in loaded) else ""
    _legend_below(fig, handles, labels)
    fig.suptitle(f"Accuracy vs SNR: {_names([t.label for t, _ in loaded])} ({split_text}{band})")
    return fig


def _mod_lines(ax: Any, target: Target, runs: list[_Run], metric: str) -> None:
    """`metric` vs SNR, a line per modulation (a group: the mean, ± 1 std of its runs)."""
    mods, snrs, values, _ = analysis.cell_matrix(_cells(runs), metric)
    std = _cell_std(runs, metric).set_index(["modulation", "snr_db"])["std"]
    colors = matplotlib.colormaps["tab20"].resampled(max(len(mods), 1))
    for i, mod in enumerate(mods):
        mean = pd.Series(100 * values[i], index=snrs)
        s = pd.Series([std.get((mod, snr), math.nan) for snr in snrs], index=snrs) * 100
        _line(ax, mean, s if target.group else None, mod, color=colors(i), marker=".")


def _fig_snr_mod(target: Target, runs: list[_Run], split_text: str) -> Figure:
    fig = Figure(figsize=SIZES["snr_mod"], layout="constrained")
    ax = fig.subplots()
    _mod_lines(ax, target, runs, "acc_combined")
    _chance_line(ax, _run_chance(runs, "acc_combined"))
    ax.set_xlabel("SNR (dB)")
    _percent_axis(ax, "Combined accuracy (%)")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), title="Modulation", frameon=False)
    fig.suptitle(f"Combined accuracy per modulation: {target.label} ({split_text})")
    return fig


def _fig_heatmap(target: Target, runs: list[_Run], split_text: str) -> Figure:
    fig = Figure(figsize=SIZES["heatmap"], layout="constrained")
    ax = fig.subplots()
    mods, snrs, values, _ = analysis.cell_matrix(_cells(runs), "acc_combined")
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#dddddd")
    im = ax.imshow(np.ma.masked_invalid(100 * values), aspect="auto", cmap=cmap, vmin=0,
                   vmax=100, interpolation="nearest")  # fmt: skip
    ticks = range(0, len(snrs), max(1, math.ceil(len(snrs) / 13)))
    ax.set_xticks(ticks, [str(snrs[i]) for i in ticks])
    ax.set_yticks(range(len(mods)), mods)
    ax.set_xlabel("SNR (dB)")
    ax.set_ylabel("Modulation")
    ax.grid(False)
    what = f"mean of {len(runs)} runs, " if target.group else ""
    fig.colorbar(im, ax=ax, label="Combined accuracy (%)")
    fig.suptitle(f"Combined accuracy per cell: {target.label} ({what}{split_text}; grey = no data)")
    return fig


def _fig_confusion(target: Target, runs: list[_Run], split_text: str) -> Figure:
    fig = Figure(figsize=SIZES["confusion"], layout="constrained")
    ax = fig.subplots()
    cm = _confusion(runs)
    cmap = matplotlib.colormaps["Blues"].with_extremes(bad="#dddddd")
    im = ax.imshow(np.ma.masked_invalid(100 * cm.to_numpy()), cmap=cmap, vmin=0, vmax=100)
    ax.set_xticks(range(len(cm.columns)), list(cm.columns), rotation=90)
    ax.set_yticks(range(len(cm.index)), list(cm.index))
    ax.set_xlabel("Predicted modulation")
    ax.set_ylabel("True modulation")
    ax.grid(False)
    if len(cm) <= 12:  # values stay legible only for small tables
        for (i, j), share in np.ndenumerate(cm.to_numpy()):
            if math.isfinite(share) and 100 * share >= 0.5:
                ax.text(j, i, report.pct(share, 0, unit=""), ha="center", va="center",
                        fontsize=6, color="white" if 100 * share > 60 else "black")  # fmt: skip
    fig.colorbar(im, ax=ax, label="Share of the true class (%)")
    what = f"{len(runs)} runs summed, " if target.group else ""
    fig.suptitle(f"Modulation confusion (row-normalised): {target.label} ({what}{split_text})")
    return fig


def _fig_curves(target: Target, runs: list[_Run]) -> Figure:
    fig = Figure(figsize=SIZES["curves"], layout="constrained")
    axes = fig.subplots(2, 2, sharex=True).ravel()
    panels = [(f"{{}}_{m}", title, ("train", "val")) for m, title in ACC_PANELS]
    panels.append(("w_{}", "Task weight share", ("mod", "snr")))
    names = {"train": "train", "val": "validation", "mod": "modulation", "snr": "SNR"}
    for ax, (pattern, title, parts) in zip(axes, panels, strict=True):
        drawn = False
        for part in parts:
            mean, std = _traj_stats(runs, pattern.format(part))
            if mean.notna().any():
                _line(ax, 100 * mean, 100 * std if target.group else None, names[part])
                drawn = True
        if not drawn:
            _no_data(ax)
        elif pattern != "w_{}":
            _chance_line(ax, _run_chance(runs, pattern.format("")[1:]))
        if len(runs) == 1 and pattern != "w_{}":
            best = _best_epoch(runs[0].path, runs[0].traj)
            if best is not None:
                ax.axvline(best, color="grey", linestyle=":", linewidth=1, label="best epoch")
        ax.set_title(title if pattern == "w_{}" else f"{title} accuracy")
        _percent_axis(ax, "Weight share (%)" if pattern == "w_{}" else "Accuracy (%)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ax in axes[2:]:
            ax.set_xlabel("Epoch")
        if drawn:
            ax.legend(loc="best")
    band = f", mean ± 1 std of {len(runs)} runs" if target.group else ""
    fig.suptitle(f"Training curves: {target.label}{band}")
    return fig


def _fig_knee(target: Target, runs: list[_Run], split_text: str) -> Figure:
    """Modulation accuracy vs SNR per modulation, the knee levels dotted, chance dashed."""
    fig = Figure(figsize=SIZES["knee"], layout="constrained")
    ax = fig.subplots()
    _mod_lines(ax, target, runs, "acc_mod")
    for level in tables.KNEE_LEVELS:
        ax.axhline(100 * level, color="black", linestyle=":", linewidth=0.8, zorder=1)
    _chance_line(ax, _run_chance(runs, "acc_mod"))
    ax.set_xlabel("SNR (dB)")
    _percent_axis(ax, "Modulation accuracy (%)")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), title="Modulation", frameon=False)
    what = f"mean of {len(runs)} runs, " if target.group else ""
    levels = " and ".join(report.pct(v, 0) for v in tables.KNEE_LEVELS)
    fig.suptitle(
        f"Modulation accuracy per modulation: {target.label} ({what}{split_text}); dotted: {levels}"
    )
    return fig


def _fig_bands(loaded: list, split_text: str) -> Figure:
    """Modulation and SNR accuracy per SNR band, one bar per target (a point: the mean of its
    runs with the 95 % CI of the mean as an error bar), chance dashed."""
    fig = Figure(figsize=SIZES["bands"], layout="constrained")
    heads = (("acc_mod", "Modulation"), ("acc_snr", "SNR"))
    axes = fig.subplots(1, len(heads), sharey=True)
    width = 0.8 / max(1, len(loaded))
    colors = matplotlib.colormaps["tab10"]
    for ax, (metric, title) in zip(axes, heads, strict=True):
        bands = sorted({b for _, runs in loaded for r in runs
                        for b in band_accuracy(r.export.per_cell, metric)})  # fmt: skip
        for i, (t, runs) in enumerate(loaded):
            per_run = [band_accuracy(r.export.per_cell, metric) for r in runs]
            stats = [describe([acc.get(b) for acc in per_run]) for b in bands]
            x = [bands.index(b) + (i - (len(loaded) - 1) / 2) * width for b in bands]
            means = [100 * s.mean for s in stats]
            errs = [100 * s.half if s.n >= 2 else 0.0 for s in stats]
            ax.bar(x, means, width, yerr=errs if t.group else None, capsize=2, label=t.label,
                   color=colors(i % 10))  # fmt: skip
        ax.set_xticks(range(len(bands)), [BAND_NAMES[b] for b in bands])
        ax.set_title(f"{title} accuracy")
        ax.set_xlabel("SNR band")
        _chance_line(ax, _run_chance(_all(loaded), metric),
                     "chance (1 / classes of the head)" if ax is axes[0] else "_")  # fmt: skip
        _percent_axis(ax)
        ax.label_outer()
    handles, labels = axes[0].get_legend_handles_labels()
    _legend_below(fig, handles, labels)
    ci = "; error bars: 95 % CI over a point's runs" if any(t.group for t, _ in loaded) else ""
    fig.suptitle(
        f"Accuracy per SNR band: {_names([t.label for t, _ in loaded])} ({split_text}{ci})"
    )
    return fig


# --------------------------------------------------------------------------- entry point


def _as_target(t: Target | str | os.PathLike[str]) -> Target:
    return t if isinstance(t, Target) else Target.of_run(t)


def plot_targets(
    targets: Sequence[Target | str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    formats: Sequence[str] = ("png",),
    split: str = "auto",
    kinds: Sequence[str] = KINDS,
) -> list[Path]:
    """Draw `kinds` for the targets into `out_dir`; the paths written, in order.

    `snr` and `bands` overlay every target in one figure (acc_vs_snr.<fmt>,
    acc_by_snr_band.<fmt>); the others are drawn per target (<stem>_<label>.<fmt>). `split`: "test" (export/final), "val" (the best epoch's
    export), or "auto" (test when every run has it). Bad input raises UserError before any
    file is written."""
    formats = [f.lower().lstrip(".") for f in formats]
    for name, given, valid in (("format", formats, FORMATS), ("figure", kinds, KINDS)):
        bad = [g for g in given if g not in valid]
        if bad:
            raise UserError(f"unknown {name} {bad[0]!r}; choose from {', '.join(valid)}")
        if not given:
            raise UserError(f"no {name} chosen; choose from {', '.join(valid)}")
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    resolved = [_as_target(t) for t in targets]
    if not resolved:
        raise UserError("nothing to plot: name runs or a group")
    split, loaded = _load(resolved, kinds, split)
    out = Path(out_dir)
    stems, figures = {}, []
    for t, _ in loaded:
        s, i = slug(t.label), 2
        while s in stems.values():
            s, i = f"{slug(t.label)}-{i}", i + 1
        stems[id(t)] = s
    with matplotlib.rc_context(STYLE):
        if "snr" in kinds:
            figures.append((FILE_STEMS["snr"], _fig_snr(loaded, _split_text(split, _all(loaded)))))
        if "bands" in kinds:
            text = _split_text(split, _all(loaded))
            figures.append((FILE_STEMS["bands"], _fig_bands(loaded, text)))
        for t, runs in loaded:
            for kind in KINDS[1:]:
                if kind in OVERLAID:
                    continue
                if kind in kinds:
                    fig = _draw(kind, t, runs, _split_text(split, runs))
                    figures.append((f"{FILE_STEMS[kind]}_{stems[id(t)]}", fig))
        for _, fig in figures:
            fit(fig)
        written = write_figures(out, figures, formats)
    return written


def write_figures(
    out: Path, figures: Sequence[tuple[str, Any]], formats: Sequence[str], dpi: int = DPI
) -> list[Path]:
    """Each (stem, figure) as out/<stem>.<format> at `dpi`, atomically; the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, fig in figures:
        for fmt in formats:
            path = out / f"{stem}.{fmt}"
            atomic_write_with(path, lambda f, fig=fig, fmt=fmt: fig.savefig(
                f, format=fmt, dpi=dpi, metadata=METADATA[fmt]))  # fmt: skip
            written.append(path)
    return written


def _draw(kind: str, target: Target, runs: list[_Run], split_text: str) -> Figure:
    if kind == "snr_mod":
        return _fig_snr_mod(target, runs, split_text)
    if kind == "heatmap":
        return _fig_heatmap(target, runs, split_text)
    if kind == "confusion":
        return _fig_confusion(target, runs, split_text)
    if kind == "knee":
        return _fig_knee(target, runs, split_text)
    return _fig_curves(target, runs)


def _all(loaded: list) -> list[_Run]:
    return [r for _, runs in loaded for r in runs]
