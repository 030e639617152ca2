"""Pure functions over a run's analysis export (DESIGN section 5) and epoch events.

No torch here (the trainer writes the export; this reads it): pandas and numpy only, so the
TUI, the CLI and the trainer's RUNLOG hook can all use it. Nothing here writes files.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from amc_tui import contract
from amc_tui.config import diff_configs
from amc_tui.contract import METRICS, PER_CELL_COLUMNS
from amc_tui.data.classes import CLASS_INDEX
from amc_tui.fsutil import read_json
from amc_tui.report import metric as _metric
from amc_tui.report import pct as _pct
from amc_tui.run import index
from amc_tui.run.health import stopped_by
from amc_tui.run.rundir import (
    EXPORT_DIR,
    FINAL_STATES,
    RunDir,
    epoch_events,
    first_event,
    read_config_dict,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

CELL_METRICS = ("acc_combined", "acc_mod", "acc_snr", "snr_mae_db")
UNDERWEIGHT_SHARE = 0.40
OVERFIT_GAP = 0.05  # train ahead of val by more than 5 points of combined accuracy
_EPOCH_DIR = re.compile(r"^epoch_(\d+)$")
FINAL = contract.FINAL_EXPORT


# --------------------------------------------------------------------------- export


def _frame(columns: list[str] | None = None) -> pd.DataFrame:
    """An empty table (no export, or a missing file)."""
    import pandas as pd  # pandas (~0.3 s): off the CLI's and the app's start path

    return pd.DataFrame(columns=columns)


@dataclass
class Export:
    dir: Path
    summary: dict[str, Any] = field(default_factory=dict)
    per_cell: pd.DataFrame = field(default_factory=lambda: _frame(PER_CELL_COLUMNS))
    confusion_mod: pd.DataFrame = field(default_factory=_frame)
    confusion_snr: pd.DataFrame = field(default_factory=_frame)
    f1_mod: pd.DataFrame = field(default_factory=_frame)
    f1_snr: pd.DataFrame = field(default_factory=_frame)

    @property
    def name(self) -> str:
        return self.dir.name

    @property
    def epoch(self) -> int | None:
        e = self.summary.get("epoch")
        return int(e) if isinstance(e, int | float) else export_epoch(self.dir.name)


def export_epoch(name: str) -> int | None:
    m = _EPOCH_DIR.match(name)
    return int(m.group(1)) if m else None


def list_exports(run_dir: str | os.PathLike[str]) -> list[str]:
    """Export folder names in order: epoch_001, epoch_002, ..., then final."""
    root = Path(run_dir) / EXPORT_DIR
    try:
        names = [e.name for e in os.scandir(root) if e.is_dir()]
    except OSError:
        return []
    epochs = sorted((n for n in names if export_epoch(n) is not None), key=export_epoch)
    return epochs + ([FINAL] if FINAL in names else [])


def read_summary(export_dir: str | os.PathLike[str]) -> dict[str, Any]:
    data = read_json(Path(export_dir) / contract.SUMMARY_FILE)
    return data if isinstance(data, dict) else {}


def _csv(path: Path, **kw: Any) -> pd.DataFrame:
    import pandas as pd  # pandas (~0.3 s): off the CLI's and the app's start path

    try:
        return pd.read_csv(path, **kw)
    except (OSError, ValueError, pd.errors.ParserError):
        return pd.DataFrame()


def read_per_cell(export_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """per_cell.csv with its DESIGN columns (an empty frame when missing or bad). A cell
    without frames (n = 0; the trainer writes 0.0 there) reads as NaN in every metric: no
    data, never 0 %."""
    import numpy as np  # numpy, pandas: off the CLI's and the app's start path
    import pandas as pd  # pandas (~0.3 s): off the CLI's and the app's start path

    df = _csv(Path(export_dir) / contract.PER_CELL_FILE)
    if df.empty or not set(PER_CELL_COLUMNS) <= set(df.columns):
        return pd.DataFrame(columns=PER_CELL_COLUMNS)
    df["modulation"] = df["modulation"].astype(str)
    df["n"] = pd.to_numeric(df["n"], errors="coerce").fillna(0).astype(int)
    for m in CELL_METRICS:
        df[m] = pd.to_numeric(df[m], errors="coerce").astype(float)
    df.loc[df["n"] <= 0, list(CELL_METRICS)] = np.nan
    return df


def load_export(export_dir: str | os.PathLike[str]) -> Export:
    """Every file of one export folder; missing or bad files give empty frames."""
    d = Path(export_dir)
    return Export(
        dir=d,
        summary=read_summary(d),
        per_cell=read_per_cell(d),
        confusion_mod=_csv(d / contract.CONFUSION_FILES["mod"], index_col=0),
        confusion_snr=_csv(d / contract.CONFUSION_FILES["snr"], index_col=0),
        f1_mod=_csv(d / contract.F1_FILES["mod"]),
        f1_snr=_csv(d / contract.F1_FILES["snr"]),
    )


def latest_export(run_dir: str | os.PathLike[str], prefer_final: bool = True) -> str | None:
    names = list_exports(run_dir)
    if not names:
        return None
    if prefer_final or names[-1] != FINAL:
        return names[-1]
    return names[-2] if len(names) > 1 else names[-1]


# --------------------------------------------------------------------------- cells


def _mod_order(mods: list[str]) -> list[str]:
    return sorted(mods, key=lambda m: (CLASS_INDEX.get(m, 10_000), m))


def cell_matrix(
    per_cell: pd.DataFrame, metric: str = "acc_combined"
) -> tuple[list[str], list[int], np.ndarray, np.ndarray]:
    """(modulations in class-table order, SNRs ascending, values[mod, snr], n[mod, snr]);
    cells absent from the export are NaN with n = 0."""
    import numpy as np  # numpy, pandas: off the CLI's and the app's start path

    if metric not in CELL_METRICS:
        raise ValueError(f"metric must be one of {', '.join(CELL_METRICS)}, got {metric!r}")
    if per_cell.empty:
        return [], [], np.zeros((0, 0)), np.zeros((0, 0), dtype=int)
    mods = _mod_order(list(dict.fromkeys(per_cell["modulation"].astype(str))))
    snrs = sorted({int(s) for s in per_cell["snr_db"]})
    mi = {m: i for i, m in enumerate(mods)}
    si = {s: j for j, s in enumerate(snrs)}
    values = np.full((len(mods), len(snrs)), np.nan)
    n = np.zeros((len(mods), len(snrs)), dtype=int)
    for mod, snr, cnt, val in zip(
        per_cell["modulation"].astype(str),
        per_cell["snr_db"],
        per_cell["n"],
        per_cell[metric],
        strict=True,
    ):
        i, j = mi[mod], si[int(snr)]
        values[i, j] = float(val)
        n[i, j] = int(cnt)
    return mods, snrs, values, n


def snr_curve(
    per_cell: pd.DataFrame, metric: str = "acc_combined", modulation: str | None = None
) -> tuple[list[int], list[float | None]]:
    """`metric` against SNR: (SNRs ascending, values). Overall (every modulation), or one
    `modulation`'s row. Each SNR's value is the frame-weighted mean of its cells with data,
    which is that SNR's exact accuracy (or MAE); an SNR without frames is None."""
    import numpy as np  # numpy, pandas: off the CLI's and the app's start path

    if metric not in CELL_METRICS:
        raise ValueError(f"metric must be one of {', '.join(CELL_METRICS)}, got {metric!r}")
    if per_cell.empty:
        return [], []
    df = per_cell
    snrs = sorted({int(s) for s in df["snr_db"]})
    if modulation is not None:
        df = df[df["modulation"].astype(str) == modulation]
    values: list[float | None] = []
    for s in snrs:
        cells = df[(df["snr_db"].astype(int) == s) & (df["n"] > 0)]
        cells = cells[np.isfinite(cells[metric].astype(float))]
        total = float(cells["n"].sum())
        values.append(float((cells[metric] * cells["n"]).sum()) / total if total else None)
    return snrs, values


# --------------------------------------------------------------------------- trajectory


def trajectory(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per epoch from epoch events or export summaries (the same keys), sorted by
    epoch; a repeated epoch (resumed after a crash mid-epoch) keeps its last record.

    A split without frames has no metrics, whatever numbers the record carries (the trainer
    writes 0.0 for an empty validation split): its values are None when a `start` event
    among `events` says n_val/n_train = 0, or a summary's split_sizes does."""
    rows: dict[int, dict[str, Any]] = {}
    empty: set[str] = set()
    for ev in events:
        if ev.get("kind") == "start":
            empty = {s for s in ("train", "val") if ev.get(f"n_{s}") == 0}
            continue
        if ev.get("kind", "epoch") != "epoch" or not isinstance(ev.get("epoch"), int | float):
            continue
        sizes = ev.get("split_sizes") if isinstance(ev.get("split_sizes"), dict) else {}
        row: dict[str, Any] = {"epoch": int(ev["epoch"])}
        for split in ("train", "val"):
            metrics = ev.get(split) if isinstance(ev.get(split), dict) else {}
            if split in empty or sizes.get(split) == 0:
                metrics = {}
            for m in METRICS:
                row[f"{split}_{m}"] = _f(metrics.get(m))
        for key in ("weights", "uncertainty"):
            obj = ev.get(key) if isinstance(ev.get(key), dict) else {}
            for task in ("mod", "snr"):
                row[f"{key[0]}_{task}"] = _f(obj.get(task))
        row["lr"] = _f(ev.get("lr"))
        row["epoch_time_s"] = _f(ev.get("epoch_time_s"))
        row["samples_per_s"] = _f(ev.get("samples_per_s"))
        row["is_best"] = bool(ev.get("is_best"))
        rows[row["epoch"]] = row
    return [rows[k] for k in sorted(rows)]


def run_trajectory(run_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """A run's trajectory from its epoch events (its first `start` event tells an empty
    split), else from its export summaries."""
    start = first_event(RunDir(run_dir).events, "start")
    traj = trajectory([*([start] if start else []), *epoch_events(run_dir)])
    return traj or export_trajectory(run_dir)


def export_trajectory(run_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The trajectory from export/epoch_NNN/summary.json files (one per finished epoch)."""
    root = Path(run_dir) / EXPORT_DIR
    summaries = []
    for name in list_exports(run_dir):
        if name == FINAL:
            continue
        s = read_summary(root / name)
        if s:
            s.setdefault("epoch", export_epoch(name))
            summaries.append(s)
    return trajectory(summaries)


def _f(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v)


def best_row(traj: list[dict[str, Any]], select_metric: str) -> dict[str, Any] | None:
    """The trajectory row that `select_metric` (e.g. val.acc_combined) ranks best; the first
    of equals wins, as the trainer keeps the first best checkpoint."""
    key = select_metric.replace(".", "_", 1)
    scored = [r for r in traj if r.get(key) is not None and math.isfinite(r[key])]
    if not scored:
        return None
    best = scored[0]
    for r in scored[1:]:
        if contract.is_better(r[key], best[key], select_metric):
            best = r
    return best


# --------------------------------------------------------------------------- findings


@dataclass(frozen=True)
class Finding:
    """One observation and the rule that produced it (RUNLOG names the rule)."""

    rule: str
    level: str  # "bad" | "good" | "warn" | "info"
    text: str


def findings(
    traj: list[dict[str, Any]],
    *,
    select_metric: str = "val.acc_combined",
    state: str = "completed",
    epochs: int | None = None,
    baseline: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    restarts: int = 0,
    health: Sequence[dict[str, Any]] = (),
    stop_reason: str | None = None,
) -> list[Finding]:
    """Findings by stated rules over what the run measured: its trajectory, its health
    verdicts (status.json `health`: the trainer's rules, with their numbers and p-values) and
    the frozen baseline. A run that learned nothing or diverged gets its verdict first and no
    praise: no "no overfitting sign", "still improving" or "new best" for chance-level
    numbers."""
    out: list[Finding] = []
    cfg = config or {}
    for h in health:
        rule = str(h.get("rule"))
        stopped = " (it stopped the run: run.stop_on)" if stopped_by(stop_reason) == rule else ""
        level = "bad" if rule in contract.SEVERE_HEALTH else "warn"
        out.append(Finding(rule, level, f"{h.get('message')}{stopped}"))
    active = {str(h.get("rule")) for h in health}
    wasted = bool(active & contract.SEVERE_HEALTH)
    if cfg.get("data", {}).get("shuffle") is False:
        out.append(Finding("no-shuffle", "warn", "fixed epoch order: data.shuffle = false"))
    if restarts:
        out.append(
            Finding(
                "restarted",
                "warn",
                f"restarted {restarts} time(s) after a crash (restart = on-failure)",
            )
        )
    if not traj:
        return out
    last = traj[-1]
    tv, tt = last.get("val_acc_combined"), last.get("train_acc_combined")
    if tv is not None and tt is not None:
        always = all(
            r["val_acc_combined"] >= r["train_acc_combined"]
            for r in traj
            if r.get("val_acc_combined") is not None and r.get("train_acc_combined") is not None
        )
        if tv >= tt and not wasted:
            out.append(
                Finding(
                    "val-above-train",
                    "good",
                    f"no overfitting sign: validation combined {_pct(tv)} >= training {_pct(tt)}"
                    + (" throughout" if always and len(traj) > 1 else ""),
                )
            )
        elif tt - tv > OVERFIT_GAP and "overfitting" not in active:
            out.append(
                Finding(
                    "train-above-val",
                    "warn",
                    f"overfitting sign: training combined {_pct(tt)} leads validation {_pct(tv)} "
                    f"by {100 * (tt - tv):.2f} points (> {100 * OVERFIT_GAP:.0f})",
                )
            )
    for key in ("train_loss", "val_loss"):
        if any(r.get(key) is not None and not math.isfinite(r[key]) for r in traj):
            out.append(Finding("non-finite-loss", "warn", f"{key.replace('_', ' ')} went NaN/inf"))
            break
    best = best_row(traj, select_metric)
    if best is not None and not wasted:
        key = select_metric.replace(".", "_", 1)
        if best["epoch"] == last["epoch"] and len(traj) > 1:
            so_far = "" if state in ("completed", "stopped", "failed", "crashed") else " so far"
            out.append(
                Finding(
                    "best-is-last",
                    "info",
                    f"still improving: the best {select_metric} ({_metric(select_metric, best[key])}) "
                    f"is at the last epoch ({last['epoch']}){so_far}; more epochs may help",
                )
            )
        elif best["epoch"] != last["epoch"] and "plateau" not in active:
            out.append(
                Finding(
                    "plateau",
                    "info",
                    f"best {select_metric} at epoch {best['epoch']}; no gain in the last "
                    f"{last['epoch'] - best['epoch']} epoch(s)",
                )
            )
    names = {"mod": "modulation", "snr": "SNR"}
    for task in ("mod", "snr"):
        share = last.get(f"w_{task}")
        if share is not None and share < UNDERWEIGHT_SHARE:
            shares = [r.get(f"w_{task}") for r in traj]
            always = all(s is not None and s < UNDERWEIGHT_SHARE for s in shares)
            out.append(
                Finding(
                    "weight-share<40%",
                    "warn",
                    f"{names[task]} task underweighted: {_pct(share, 1)} weight share "
                    f"(< {_pct(UNDERWEIGHT_SHARE, 0)})"
                    + (" throughout" if always and len(traj) > 1 else ""),
                )
            )
    if baseline and best is not None and baseline.get("metric") == select_metric and not wasted:
        key = select_metric.replace(".", "_", 1)
        mine, theirs = best[key], float(baseline["value"])
        ahead = contract.is_better(mine, theirs, select_metric)
        percent = contract.is_percent(select_metric)
        fmt = partial(_metric, select_metric)  # a share in percent, else `.4g`
        diff = abs(mine - theirs) * (100 if percent else 1)
        unit = " points" if percent else ""
        who = f"{baseline.get('name')} ({baseline.get('id')})"
        if ahead:
            text = f"new best: {select_metric} {fmt(mine)} beats the best earlier run {who} at {fmt(theirs)} by {diff:.2f}{unit}"
        elif mine == theirs:
            text = f"ties the best earlier run {who} at {fmt(theirs)}"
        else:
            text = f"{select_metric} {fmt(mine)} is {diff:.2f}{unit} behind the best earlier run {who} ({fmt(theirs)})"
        out.append(Finding("vs-best-earlier", "good" if ahead else "info", text))
    elif not baseline and best is not None and not wasted:
        out.append(
            Finding(
                "vs-best-earlier",
                "info",
                "no earlier finished run on the same task to compare with",
            )
        )
    return out


# --------------------------------------------------------------------------- compare


def _common_export(a: Path, b: Path) -> str | None:
    common = [n for n in list_exports(a) if n in set(list_exports(b))]
    return common[-1] if common else None


@dataclass
class CellDeltas:
    """One per-cell metric of two exports aligned by label: every modulation (class-table
    order) and SNR either export has; a cell only one of them has is None in the other's grid
    and in `delta` (b - a). `top` holds the cells that changed most."""

    metric: str
    mods: list[str]
    snrs: list[int]
    a: list[list[float | None]]
    b: list[list[float | None]]
    delta: list[list[float | None]]
    top: list[dict[str, Any]]


@overload
def cell_deltas(
    a: pd.DataFrame, b: pd.DataFrame, n: int = ..., metric: str = ...,
    *, grid: Literal[False] = ...,
) -> list[dict[str, Any]]: ...  # fmt: skip
@overload
def cell_deltas(
    a: pd.DataFrame, b: pd.DataFrame, n: int = ..., metric: str = ..., *, grid: Literal[True]
) -> CellDeltas: ...
def cell_deltas(
    a: pd.DataFrame,
    b: pd.DataFrame,
    n: int = 5,
    metric: str = "acc_combined",
    *,
    grid: bool = False,
) -> list[dict[str, Any]] | CellDeltas:
    """The n cells whose `metric` changed most from per-cell frame a to b (by absolute delta,
    then modulation and SNR); with `grid=True` the whole aligned comparison (`CellDeltas`) the
    compare screen draws, the same top cells included."""
    ma, sa, va, _ = cell_matrix(a, metric)
    mb, sb, vb, _ = cell_matrix(b, metric)
    mods = _mod_order(list(dict.fromkeys([*ma, *mb])))
    snrs = sorted(set(sa) | set(sb))

    def align(ms: list[str], ss: list[int], vals: np.ndarray) -> list[list[float | None]]:
        ri, ci = {m: i for i, m in enumerate(ms)}, {s: j for j, s in enumerate(ss)}

        def cell(m: str, s: int) -> float | None:
            v = vals[ri[m], ci[s]] if m in ri and s in ci else None
            return float(v) if contract.is_number(v) else None  # NaN: not in that export

        return [[cell(m, s) for s in snrs] for m in mods]

    ga, gb = align(ma, sa, va), align(mb, sb, vb)
    delta = [
        [y - x if x is not None and y is not None else None for x, y in zip(ra, rb, strict=True)]
        for ra, rb in zip(ga, gb, strict=True)
    ]
    changed = [
        {"modulation": m, "snr_db": s, "a": ga[i][j], "b": gb[i][j], "delta": d}
        for i, m in enumerate(mods)
        for j, s in enumerate(snrs)
        if (d := delta[i][j]) is not None
    ]
    changed.sort(key=lambda c: (-abs(c["delta"]), c["modulation"], c["snr_db"]))
    top = changed[:n]
    return CellDeltas(metric, mods, snrs, ga, gb, delta, top) if grid else top


def compare_runs(a: Any, b: Any, n_cells: int = 5) -> dict[str, Any]:
    """Config keys that differ, best and final metrics side by side with deltas (b - a), and
    the cells that changed most in the newest export both runs have."""
    da, db = Path(a.dir), Path(b.dir)
    metric = (a.best or {}).get("metric") or "val.acc_combined"
    ta, tb = run_trajectory(da), run_trajectory(db)
    rows_out = []
    picks = {
        "best": (best_row(ta, metric), best_row(tb, metric)),
        "final": (ta[-1] if ta else None, tb[-1] if tb else None),
    }
    for split in ("val", "train"):
        for m in METRICS:
            key = f"{split}_{m}"
            row: dict[str, Any] = {
                "metric": f"{split}.{m}",
                "lower_is_better": contract.lower_is_better(m),
            }
            for which, (ra, rb) in picks.items():
                va = ra.get(key) if ra else None
                vb = rb.get(key) if rb else None
                row[f"{which}_a"], row[f"{which}_b"] = va, vb
                row[f"{which}_delta"] = vb - va if va is not None and vb is not None else None
            rows_out.append(row)
    common = _common_export(da, db)
    cells = []
    if common:
        cells = cell_deltas(
            read_per_cell(da / "export" / common), read_per_cell(db / "export" / common), n_cells
        )
    return {
        "a": {
            "id": a.id,
            "name": a.name,
            "best": a.best,
            "epoch": (picks["final"][0] or {}).get("epoch"),
            "best_epoch": (picks["best"][0] or {}).get("epoch"),
        },
        "b": {
            "id": b.id,
            "name": b.name,
            "best": b.best,
            "epoch": (picks["final"][1] or {}).get("epoch"),
            "best_epoch": (picks["best"][1] or {}).get("epoch"),
        },
        "select_metric": metric,
        "config_diff": [
            (k, va, vb)
            for k, va, vb in diff_configs(
                read_config_dict(RunDir(da)), read_config_dict(RunDir(db))
            )
            if k != "name"
        ],
        "metrics": rows_out,
        "export": common,
        "top_cells": cells,
    }


def best_earlier_run(ws: Any, metric: str, cells: dict[str, int]) -> dict[str, Any] | None:
    """The best finished run of workspace `ws` on the same metric and cell grid: frozen into
    a new run's meta.json, so the RUNLOG finding 'against the best earlier run' renders from
    that run's files alone."""

    best: dict[str, Any] | None = None
    for info in index.list_runs(ws, with_last_epoch=False):  # meta.json from the index
        if info.state not in FINAL_STATES or not info.best or info.best.get("metric") != metric:
            continue
        if info.meta.get("cells") not in (None, cells):
            continue
        value = info.best.get("value")
        if not isinstance(value, int | float):
            continue
        if best is None or contract.is_better(float(value), best["value"], metric):
            best = {
                "id": info.id,
                "name": info.name,
                "metric": metric,
                "value": float(value),
                "epoch": info.best.get("epoch"),
            }
    return best
