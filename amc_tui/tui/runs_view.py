"""The Runs table as data: columns, the cells of one run, filter and sort.

Pure functions over `amc_tui.runs.RunInfo` (its own elapsed and ETA rules) and an injected
`now`, so the screen can update cells in place by comparing old and
new cell text, and snapshots stay deterministic.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.text import Text

from amc_tui import contract
from amc_tui.tui import fmt

if TYPE_CHECKING:
    from amc_tui.runs import RunInfo

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


def val_metric(info: RunInfo, metric: str) -> float | None:
    """A validation metric of the best epoch when known, else of the last epoch."""
    best = info.best or {}
    if best.get("metric") in (metric, f"val.{metric}") and fmt.is_num(best.get("value")):
        return best["value"]
    return contract.metric_value(info.last_epoch, f"val.{metric}")


def best_value(info: RunInfo) -> float | None:
    v = (info.best or {}).get("value")
    return v if fmt.is_num(v) else None


def best_metric(info: RunInfo) -> str:
    """The metric the run selects its best epoch by (the trainer's default when unstated)."""
    return str((info.best or {}).get("metric") or contract.DEFAULT_SELECT)


def gpu_text(info: RunInfo) -> str:
    if info.gpus:
        return ",".join(str(g) for g in info.gpus)
    device = info.device or ""
    if device.startswith("cuda:"):
        return device[5:]
    return "cpu" if device == "cpu" else fmt.DASH


def state_text(state: str) -> Text:
    return Text(state or "?", style=fmt.STATE_STYLES.get(state, ""))


def row_cells(info: RunInfo, now: float, marked: bool = False) -> dict[str, Text]:
    """Cell renderables of one run, keyed by column. Each cell carries its own one-space gap
    (the table runs with cell_padding 0, so 80 columns hold every column); a marked run
    (for compare) shows a star before its name."""
    epoch, epochs = info.epoch or 0, info.epochs or 0
    name = Text(MARK if marked else " ", style="bold yellow")
    name.append(str(info.name or "?"))
    state = Text(" ")
    state.append_text(state_text(info.state or "?"))
    plain = {
        "id": str(info.id or "?"),
        "arch": str(info.arch or fmt.DASH),
        "epoch": f"{epoch}/{epochs}" if epochs else fmt.DASH,
        "best": fmt.metric(best_value(info), best_metric(info), sign=False),
        "mod": fmt.metric(val_metric(info, "acc_mod"), "acc_mod", sign=False),
        "snr": fmt.metric(val_metric(info, "acc_snr"), "acc_snr", sign=False),
        "elapsed": fmt.duration(info.elapsed_s(now)),
        "eta": fmt.duration(info.eta_s(now)),
        "gpu": gpu_text(info),
    }
    # Text, not str: a str cell is parsed as markup (slow, and a "[" in a name would break)
    cells: dict[str, Text] = {"name": name, "state": state}
    cells.update({k: Text(" " + v) for k, v in plain.items()})
    return {k: cells[k] for k in COLUMN_KEYS}


def sort_key(info: RunInfo, column: str, now: float) -> tuple:
    """A key that orders unknown values last whichever direction is chosen."""
    value: Any
    if column == "best":
        value = best_value(info)
    elif column in ("mod", "snr"):
        value = val_metric(info, f"acc_{column}")
    elif column == "elapsed":
        value = info.elapsed_s(now)
    elif column == "eta":
        value = info.eta_s(now)
    elif column == "epoch":
        value = (info.epoch or 0) / max(1, info.epochs or 1)
    elif column == "gpu":
        value = gpu_text(info)
    elif column == "created":
        value = info.created_at
    else:
        value = getattr(info, column, None)
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

    def matches(self, info: RunInfo) -> bool:
        if self.states and (info.state or "") not in self.states:
            return False
        tags = [str(t) for t in (info.tags or [])]
        if self.tags and not self.tags.issubset(tags):
            return False
        if self.words:
            hay = " ".join(
                str(x) for x in (info.name, info.id, info.arch, info.phase, info.notes, *tags) if x
            ).lower()
            return all(w in hay for w in self.words)
        return True


def select(
    infos: Iterable[RunInfo], flt: RunFilter, column: str, reverse: bool, now: float
) -> list[RunInfo]:
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


def state_counts(infos: Sequence[RunInfo]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for i in infos:
        s = i.state or "?"
        counts[s] = counts.get(s, 0) + 1
    return counts
