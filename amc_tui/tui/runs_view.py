"""The Runs table as data: columns, the cells of one run, filter and sort.

Pure functions over `amc_tui.runs.RunInfo` (read by attribute, so a stale or partial run still
renders) and an injected `now`, so the screen can update cells in place by comparing old and
new cell text, and snapshots stay deterministic.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text

from amc_tui.tui import fmt

# (key, label, width); widths are minimums: the table sizes columns to their content.
COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("name", "name", 18),
    ("state", "state", 9),
    ("arch", "arch", 10),
    ("epoch", "ep", 5),
    ("best", "best%", 5),
    ("mod", "mod%", 5),
    ("snr", "snr%", 5),
    ("elapsed", "time", 6),
    ("eta", "ETA", 6),
    ("gpu", "GPU", 4),
    ("id", "id", 8),
)  # id last: in 80 columns it is the one that scrolls off (the Live header shows it)
COLUMN_KEYS = tuple(c[0] for c in COLUMNS)
SORTABLE = COLUMN_KEYS
MARK = "*"


def _get(info: Any, name: str, default: Any = None) -> Any:
    return getattr(info, name, default)


def elapsed_s(info: Any, now: float) -> float | None:
    """Wall time since the trainer started (RunInfo's own rule, with the injected clock)."""
    fn = getattr(info, "elapsed_s", None)
    return fn(now) if callable(fn) else None


def eta_s(info: Any, now: float) -> float | None:
    """Remaining time of a running run (RunInfo's own rule, with the injected clock)."""
    fn = getattr(info, "eta_s", None)
    return fn(now) if callable(fn) else None


def val_metric(info: Any, metric: str) -> float | None:
    """A validation metric of the best epoch when known, else of the last epoch."""
    best = _get(info, "best") or {}
    if isinstance(best, dict) and best.get("metric") in (metric, f"val.{metric}"):
        v = best.get("value")
        if fmt.is_num(v):
            return v
    last = _get(info, "last_epoch") or {}
    val = last.get("val") if isinstance(last, dict) else None
    v = val.get(metric) if isinstance(val, dict) else None
    return v if fmt.is_num(v) else None


def best_value(info: Any) -> float | None:
    best = _get(info, "best") or {}
    v = best.get("value") if isinstance(best, dict) else None
    return v if fmt.is_num(v) else None


def gpu_text(info: Any) -> str:
    gpus = _get(info, "gpus")
    if isinstance(gpus, list | tuple) and gpus:
        return ",".join(str(g) for g in gpus)
    device = _get(info, "device") or ""
    if isinstance(device, str) and device.startswith("cuda:"):
        return device[5:]
    return "cpu" if device == "cpu" else fmt.DASH


def state_text(state: str) -> Text:
    return Text(state or "?", style=fmt.STATE_STYLES.get(state, ""))


def row_cells(info: Any, now: float, marked: bool = False) -> dict[str, Any]:
    """Cell renderables of one run, keyed by column. Each cell carries its own one-space gap
    (the table runs with cell_padding 0, so 80 columns hold every column); a marked run
    (for compare) shows a star before its name."""
    epoch, epochs = _get(info, "epoch") or 0, _get(info, "epochs") or 0
    name = Text(MARK if marked else " ", style="bold yellow")
    name.append(str(_get(info, "name") or "?"))
    state = Text(" ")
    state.append_text(state_text(_get(info, "state") or "?"))
    plain = {
        "id": str(_get(info, "id") or "?"),
        "arch": str(_get(info, "arch") or fmt.DASH),
        "epoch": f"{epoch}/{epochs}" if epochs else fmt.DASH,
        "best": fmt.pct(best_value(info), sign=False),
        "mod": fmt.pct(val_metric(info, "acc_mod"), sign=False),
        "snr": fmt.pct(val_metric(info, "acc_snr"), sign=False),
        "elapsed": fmt.duration(elapsed_s(info, now)),
        "eta": fmt.duration(eta_s(info, now)),
        "gpu": gpu_text(info),
    }
    # Text, not str: a str cell is parsed as markup (slow, and a "[" in a name would break)
    cells: dict[str, Any] = {"name": name, "state": state}
    cells.update({k: Text(" " + v) for k, v in plain.items()})
    return {k: cells[k] for k in COLUMN_KEYS}


def sort_key(info: Any, column: str, now: float) -> tuple:
    """A key that orders unknown values last whichever direction is chosen."""
    value: Any
    if column == "best":
        value = best_value(info)
    elif column in ("mod", "snr"):
        value = val_metric(info, f"acc_{column}")
    elif column == "elapsed":
        value = elapsed_s(info, now)
    elif column == "eta":
        value = eta_s(info, now)
    elif column == "epoch":
        value = (_get(info, "epoch") or 0) / max(1, _get(info, "epochs") or 1)
    elif column == "gpu":
        value = gpu_text(info)
    elif column == "created":
        value = _get(info, "created_at")
    else:
        value = _get(info, column)
    if value is None or value == fmt.DASH:
        return (1, 0)
    return (0, value if fmt.is_num(value) else str(value).lower())


@dataclass
class RunFilter:
    """`state:running tag:baseline swin` -> runs in that state, with that tag, and whose
    name/id/arch/phase/notes/tags contain every free word (case-insensitive)."""

    states: set[str] = field(default_factory=set)
    tags: set[str] = field(default_factory=set)
    words: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> RunFilter:
        try:
            parts = shlex.split(text)
        except ValueError:
            parts = text.split()
        out = cls()
        for part in parts:
            key, sep, value = part.partition(":")
            if sep and key in ("state", "s") and value:
                out.states.update(v for v in value.lower().split(",") if v)
            elif sep and key in ("tag", "t") and value:
                out.tags.update(v for v in value.split(",") if v)
            elif part:
                out.words.append(part.lower())
        return out

    @property
    def empty(self) -> bool:
        return not (self.states or self.tags or self.words)

    def matches(self, info: Any) -> bool:
        if self.states and (_get(info, "state") or "") not in self.states:
            return False
        tags = [str(t) for t in (_get(info, "tags") or [])]
        if self.tags and not self.tags.issubset(tags):
            return False
        if self.words:
            hay = " ".join(
                str(x)
                for x in (
                    _get(info, "name"),
                    _get(info, "id"),
                    _get(info, "arch"),
                    _get(info, "phase"),
                    _get(info, "notes"),
                    *tags,
                )
                if x
            ).lower()
            return all(w in hay for w in self.words)
        return True


def select(infos: Iterable[Any], flt: RunFilter, column: str, reverse: bool, now: float) -> list:
    """The runs to show, filtered and ordered."""
    rows = [i for i in infos if flt.matches(i)]
    rows.sort(key=lambda i: sort_key(i, column, now), reverse=reverse)
    if reverse:  # keep unknowns last either way
        rows.sort(key=lambda i: sort_key(i, column, now)[0])
    return rows


def changed_cells(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Columns whose rendered text or style differs (what update_cell must touch)."""
    out = []
    for key, value in new.items():
        before = old.get(key)
        if _cell_repr(before) != _cell_repr(value):
            out.append(key)
    return out


def _cell_repr(v: Any) -> tuple:
    if isinstance(v, Text):
        return (v.plain, str(v.style))
    return (str(v), "")


def state_counts(infos: Sequence[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for i in infos:
        s = _get(i, "state") or "?"
        counts[s] = counts.get(s, 0) + 1
    return counts
