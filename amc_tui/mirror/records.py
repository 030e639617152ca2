"""amc-tui events turned into mirror records: what a dashboard gets, backend-neutral.

The `Translator` reads events in file order (live: as the trainer writes them; backfill: from
events.jsonl) and the export folders they point to. An epoch's validation export comes before
its epoch event, so its per-SNR curve is held and logged with that epoch; the final (test)
export gives the test metrics and the per-cell table. Steps are epochs everywhere.
"""

from __future__ import annotations

import csv
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amc_tui import contract
from amc_tui.fsutil import read_json
from amc_tui.run.rundir import RunDir, read_meta

CURVE_METRICS = ("acc_mod", "acc_snr", "acc_combined")  # the per-SNR curve of each epoch


@dataclass
class RunInfo:
    """Who the run is, for a dashboard: names, config, tags, sweep group and point."""

    run_id: str
    name: str
    config: dict[str, Any]
    config_text: str
    tags: list[str]
    group: str | None = None
    point: str | None = None
    repeat: int | None = None
    notes: str = ""


@dataclass
class Open:
    run: RunInfo
    resumed: bool = False


@dataclass
class Scalars:
    step: int
    values: dict[str, float]
    t: float


@dataclass
class Final:
    """The final test pass: metrics of the best weights (step = that epoch), per-cell rows."""

    step: int
    values: dict[str, float]
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    t: float = 0.0


@dataclass
class Close:
    state: str  # completed, stopped, failed


Record = Open | Scalars | Final | Close


def point_text(point: Any) -> str | None:
    if not isinstance(point, dict):
        return None
    return ", ".join(f"{k}={v}" for k, v in point.items()) or "base"


def describe(run: RunDir) -> RunInfo:
    """The run as meta.json and config.toml say (both written once, at creation)."""
    meta = read_meta(run)
    try:
        text = run.config.read_text(encoding="utf-8")
        config = tomllib.loads(text)
    except (OSError, ValueError):
        text, config = "", {}
    tags = [str(t) for t in meta.get("tags") or config.get("tags") or []]
    return RunInfo(
        run_id=str(meta.get("id") or run.name), name=str(meta.get("name") or run.name),
        config=config, config_text=text, tags=tags,
        group=meta.get("group") or None, point=point_text(meta.get("point")),
        repeat=meta.get("repeat"), notes=str(meta.get("notes") or ""),
    )  # fmt: skip


def read_per_cell(folder: Path) -> tuple[list[str], list[list[Any]]]:
    """per_cell.csv as (columns, rows) with numbers parsed; ([], []) when missing."""
    try:
        with (folder / contract.PER_CELL_FILE).open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except OSError:
        return [], []
    if not rows:
        return [], []
    return rows[0], [[_number(v) for v in row] for row in rows[1:]]


def _number(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def snr_curve(columns: list[str], rows: list[list[Any]]) -> dict[str, float]:
    """`val_by_snr/<metric>/<snr>dB`: each SNR's accuracy over its cells, weighted by frames
    (a cell with n = 0 has no data and counts for nothing)."""
    if "snr_db" not in columns or "n" not in columns:
        return {}
    at = {c: i for i, c in enumerate(columns)}
    sums: dict[int, dict[str, float]] = {}
    for row in rows:
        n = row[at["n"]]
        if not isinstance(n, int | float) or n <= 0:
            continue
        s = sums.setdefault(int(row[at["snr_db"]]), {"n": 0.0})
        s["n"] += n
        for m in CURVE_METRICS:
            if m in at and isinstance(row[at[m]], int | float):
                s[m] = s.get(m, 0.0) + n * row[at[m]]
    out = {}
    for snr in sorted(sums):
        s = sums[snr]
        for m in CURVE_METRICS:
            if m in s:
                out[f"val_by_snr/{m}/{snr:+d}dB"] = s[m] / s["n"]
    return out


def epoch_scalars(event: dict[str, Any]) -> dict[str, float]:
    """An epoch event's numbers under dashboard names: split/metric, weights/task, lr, ..."""
    out: dict[str, float] = {}
    for split in ("train", "val"):
        for k, v in (event.get(split) or {}).items():
            if isinstance(v, int | float):
                out[f"{split}/{k}"] = float(v)
    for group in ("weights", "uncertainty"):
        for k, v in (event.get(group) or {}).items():
            if isinstance(v, int | float):
                out[f"{group}/{k}"] = float(v)
    for key, name in (("lr", "lr"), ("samples_per_s", "throughput/samples_per_s"),
                      ("epoch_time_s", "time/epoch_s")):  # fmt: skip
        if isinstance(event.get(key), int | float):
            out[name] = float(event[key])
    return out


class Translator:
    """Feed events in file order; get the records a dashboard writes."""

    def __init__(self, run: RunDir) -> None:
        self.run = run
        self.curves: dict[int, dict[str, float]] = {}  # epoch: its val export's SNR curve
        self.opened = False

    def feed(self, event: dict[str, Any]) -> list[Record]:
        kind = event.get("kind")
        out: list[Record] = []
        if kind == "start" and not self.opened:
            self.opened = True
            out.append(Open(describe(self.run), resumed=bool(event.get("resumed"))))
        elif kind == "export":
            out.extend(self._export(event))
        elif kind == "epoch" and isinstance(event.get("epoch"), int):
            epoch = event["epoch"]
            values = {**epoch_scalars(event), **self.curves.pop(epoch, {})}
            out.append(Scalars(epoch, values, float(event.get("t") or 0.0)))
        elif kind == "end":
            out.append(Close(str(event.get("state") or "completed")))
        return out

    def _folder(self, event: dict[str, Any]) -> Path:
        """The export folder, found in this run directory (a moved run's events name the
        old path)."""
        if event.get("split") == "test":
            return self.run.final_export
        return self.run.epoch_export(int(event.get("epoch") or 0))

    def _export(self, event: dict[str, Any]) -> list[Record]:
        folder = self._folder(event)
        columns, rows = read_per_cell(folder)
        if event.get("split") != "test":
            self.curves[int(event.get("epoch") or 0)] = snr_curve(columns, rows)
            return []
        summary = read_json(folder / contract.SUMMARY_FILE) or {}
        test = summary.get("test") or summary.get("metrics") or {}
        values = {f"test/{k}": float(v) for k, v in test.items() if isinstance(v, int | float)}
        step = summary.get("epoch") if isinstance(summary.get("epoch"), int) else 0
        return [Final(step, values, columns, rows, float(event.get("t") or 0.0))]
