"""The Runs table as data: columns, the cells of one run, filter and sort.

Pure functions over `amc_tui.run.rundir.RunInfo` (its own elapsed and ETA rules) and an injected
`now`, so the screen can update cells in place by comparing old and
new cell text, and snapshots stay deterministic.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.text import Text

from amc_tui import contract, report
from amc_tui.run import health

if TYPE_CHECKING:
    from amc_tui.run.rundir import RunInfo

# how each state reads wherever it shows (Runs table, Live header, New-run queue)
STATE_STYLES: dict[str, str] = {
    "queued": "bold #8fa1b3",
    "submitted": "bold #87afd7",  # a Slurm job waits for a node
    "running": "bold #5fd7ff",
    "completed": "bold #87d75f",
    "failed": "bold #ff5f5f",
    "stopped": "bold #d7af5f",
    "crashed": "bold #ff5fd7",
    "stalled": "bold #ffaf00 reverse",  # the trainer lives but its heartbeat is old
    "unknown": "italic #8a8a8a",  # status.json unreadable: nothing acts on the run
    "foreign": "dim",  # a folder under runs/ that is not a run (`ls --all`)
}


class KeyedText(Text):
    """The name cell: it knows its run's key, so the table can order rows by run."""

    run_key: str = ""


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    config: str = ""  # the config key a hyperparameter column shows


# The order columns take when shown. The name column is always shown; the others are picked.
COLUMNS: tuple[Column, ...] = (
    Column("name", "name"),
    Column("state", "state"),
    Column("health", "health"),
    Column("arch", "arch"),
    Column("epoch", "ep"),
    Column("best", "best%"),
    Column("mod", "mod%"),
    Column("snr", "snr%"),
    Column("lr", "lr", "train.lr"),
    Column("batch", "batch", "train.batch_size"),
    Column("size", "img", "image.size"),
    Column("weighting", "weighting", "loss.weighting"),
    Column("phase", "phase"),
    Column("tags", "tags"),
    Column("elapsed", "time"),
    Column("eta", "ETA"),
    Column("gpu", "GPU"),
    Column("job", "job"),
    Column("id", "id"),
)  # id last: the Live header shows it when a narrow terminal has no room
BY_KEY = {c.key: c for c in COLUMNS}
COLUMN_KEYS = tuple(c.key for c in COLUMNS)
DESCENDING = ("created", "best", "mod", "snr", "epoch", "elapsed")  # sorted high to low first
# shown until the user picks: 80 columns hold these with every id whole; arch joins when wide
DEFAULT_COLUMNS = ("name", "state", "epoch", "best", "mod", "snr", "elapsed", "eta", "gpu", "id")
WIDE_EXTRA = ("arch",)
WIDE_AT = 100
COLUMN_HELP = {
    "name": "run name (* marked for compare)",
    "state": "queued, submitted, running, stalled, completed, failed, stopped, crashed, unknown",
    "health": "health rules active now (learned nothing, diverged, plateau, ...); the state "
    "shows ! (red: a wasted run)",
    "arch": "model architecture",
    "epoch": "epochs done / planned",
    "best": "the selection metric at the best epoch",
    "mod": "modulation accuracy at the best epoch (validation)",
    "snr": "SNR accuracy at the best epoch (validation)",
    "lr": "learning rate (train.lr)",
    "batch": "batch size (train.batch_size)",
    "size": "image size in pixels (image.size)",
    "weighting": "task weighting (loss.weighting)",
    "phase": "research phase",
    "tags": "tags",
    "elapsed": "time trained, earlier attempts of a resumed run included",
    "eta": "time left of a running run",
    "gpu": "GPU(s) or cpu; slurm for a run on a cluster node",
    "job": "Slurm job id (run.executor = slurm)",
    "id": "run id",
}
MARK = "*"


def default_columns(width: int) -> list[str]:
    keys = set(DEFAULT_COLUMNS) | (set(WIDE_EXTRA) if width >= WIDE_AT else set())
    return [k for k in COLUMN_KEYS if k in keys]


def shown_columns(picked: Iterable[str] | None, width: int) -> list[str]:
    """The columns to show, in table order: the picked ones (the name always), else the
    default set for this terminal width."""
    if picked is None:
        return default_columns(width)
    keys = set(picked) | {"name"}
    return [k for k in COLUMN_KEYS if k in keys]


def needs_config(columns: Iterable[str]) -> bool:
    return any(BY_KEY[k].config for k in columns if k in BY_KEY)


@dataclass
class RunExtra:
    """What a row shows beyond RunInfo, read by the poll worker: the best epoch's event
    (None when the run has no best epoch yet) and, when a hyperparameter column is shown,
    the run's config values by dotted key."""

    best_event: dict[str, Any] | None = None
    config: dict[str, Any] | None = None


def best_value(info: RunInfo) -> float | None:
    v = (info.best or {}).get("value")
    return v if contract.is_number(v) else None


def best_metric(info: RunInfo) -> str:
    """The metric the run selects its best epoch by (the trainer's default when unstated)."""
    return str((info.best or {}).get("metric") or contract.DEFAULT_SELECT)


def best_epoch_metric(extra: RunExtra | None, metric: str) -> float | None:
    """A validation metric of the best epoch (None before a best epoch exists)."""
    ev = extra.best_event if extra is not None else None
    return contract.metric_value(ev, f"val.{metric}")


def gpu_text(info: RunInfo) -> str:
    if info.slurm_job_id and not info.gpus:
        return "slurm"
    if info.gpus:
        return ",".join(str(g) for g in info.gpus)
    device = info.device or ""
    if device.startswith("cuda:"):
        return device[5:]
    return "cpu" if device == "cpu" else report.MISSING


def state_text(state: str) -> Text:
    return Text(state or "?", style=STATE_STYLES.get(state, ""))


def epoch_text(info: RunInfo) -> str:
    """`11/20`; the epochs done are unknown (not 0) before a run starts or when its status
    cannot be read."""
    total = f"/{info.epochs}" if info.epochs else ""
    known = info.state != "unknown" and (info.started_at is not None or info.epoch)
    if not known:
        return f"{report.MISSING}{total}" if total else report.MISSING
    return f"{info.epoch}{total}" if total else str(info.epoch)


def config_value(info: RunInfo, extra: RunExtra | None, key: str) -> Any:
    """A hyperparameter column's value; None when unknown."""
    if key == "arch":
        return info.arch or None
    if key == "phase":
        return info.phase or None
    if key == "tags":
        return ",".join(info.tags) if info.tags else None
    cfg = extra.config if extra is not None else None
    return cfg.get(BY_KEY[key].config) if cfg else None


def _hp_text(value: Any) -> str:
    if value is None or value == "":
        return report.MISSING
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def row_cells(
    info: RunInfo,
    now: float,
    marked: bool = False,
    extra: RunExtra | None = None,
    columns: Sequence[str] = COLUMN_KEYS,
    key: str = "",
) -> dict[str, Text]:
    """Cell renderables of one run for `columns`. Each cell carries its own one-space gap
    (the table runs with cell_padding 0, so 80 columns hold the default set); a marked run
    (for compare) shows a star before its name. best%, mod% and snr% are all the best
    epoch's; a missing value is a dash, never 0."""
    out: dict[str, Text] = {}
    for col in columns:
        if col == "name":
            name = KeyedText(MARK if marked else " ", style="bold yellow")
            name.append(str(info.name or "?"))
            name.run_key = key or str(info.dir)
            out[col] = name
            continue
        if col == "state":
            cell = Text(" ")
            cell.append_text(state_text(info.state or "?"))
            if info.health:  # a rule fired: red for a wasted run (it learned nothing, ...)
                cell.append(
                    "!", style="bold #ff5f5f" if health.wasted(info.health) else "bold #ffaf00"
                )
            out[col] = cell
            continue
        out[col] = Text(" " + _plain(info, now, extra, col))
    return out


def _plain(info: RunInfo, now: float, extra: RunExtra | None, col: str) -> str:
    if col == "id":
        return str(info.id or "?")
    if col == "epoch":
        return epoch_text(info)
    if col == "best":
        return report.metric(best_metric(info), best_value(info), ".3f", digits=1, unit="")
    if col in ("mod", "snr"):
        return report.metric(
            f"acc_{col}", best_epoch_metric(extra, f"acc_{col}"), digits=1, unit=""
        )
    if col == "elapsed":
        return report.duration(info.elapsed_s(now))
    if col == "eta":
        return report.duration(info.eta_s(now))
    if col == "gpu":
        return gpu_text(info)
    if col == "job":
        return info.slurm_job_id or report.MISSING
    if col == "health":
        return health.mark(info.health) or report.MISSING
    return _hp_text(config_value(info, extra, col))


def sort_key(info: RunInfo, column: str, now: float, extra: RunExtra | None = None) -> tuple:
    """A key that orders unknown values last whichever direction is chosen."""
    value: Any
    if column == "best":
        value = best_value(info)
    elif column in ("mod", "snr"):
        value = best_epoch_metric(extra, f"acc_{column}")
    elif column == "elapsed":
        value = info.elapsed_s(now)
    elif column == "eta":
        value = info.eta_s(now)
    elif column == "epoch":
        value = (info.epoch or 0) / max(1, info.epochs or 1)
    elif column == "gpu":
        value = gpu_text(info)
    elif column == "job":
        value = info.slurm_job_id
    elif column == "health":
        value = health.mark(info.health) or None
    elif column == "created":
        value = info.created_at
    elif column in ("name", "state", "id"):
        value = getattr(info, column, None)
    elif column in BY_KEY:
        value = config_value(info, extra, column)
    else:
        value = None
    if value is None or value == report.MISSING:
        return (1, 0)
    if isinstance(value, bool):
        value = str(value)
    return (0, value if contract.is_number(value) else str(value).lower())


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
    infos: Iterable[RunInfo],
    flt: RunFilter,
    column: str,
    reverse: bool,
    now: float,
    extras: dict[str, RunExtra] | None = None,
) -> list[RunInfo]:
    """The runs to show, filtered and ordered (unknown values last either way)."""
    rows = [i for i in infos if flt.matches(i)]
    return order(rows, column, reverse, now, extras)


def order(
    rows: list[RunInfo],
    column: str,
    reverse: bool,
    now: float,
    extras: dict[str, RunExtra] | None = None,
) -> list[RunInfo]:
    """Rows by `column` (unknown values last either way). Equal values keep one order, newest
    first, then by name and folder: the order never depends on how the rows came in (the
    table's current order, the scan's), so ties do not swap places on a refresh."""
    extras = extras or {}
    rows = sorted(rows, key=tie_order)
    keyed = [(sort_key(i, column, now, extras.get(str(i.dir))), i) for i in rows]
    known = [(k, i) for k, i in keyed if k[0] == 0]
    unknown = [i for k, i in keyed if k[0] != 0]
    try:  # sorted(), not .sort(): a failed sort leaves `known` in its tie order
        known = sorted(known, key=lambda ki: ki[0][1], reverse=reverse)
    except TypeError:  # mixed value types in one column: compare as text
        known = sorted(known, key=lambda ki: str(ki[0][1]), reverse=reverse)
    return [i for _, i in known] + unknown


def tie_order(info: RunInfo) -> tuple:
    created = info.created_at if contract.is_number(info.created_at) else float("-inf")
    return (-created, str(info.name or ""), str(info.dir))


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


def header_label(column: str, sort_column: str, reverse: bool) -> str:
    """A column's header; the sort column carries its direction."""
    label = " " + BY_KEY[column].label
    if column == sort_column:
        label += "↓" if reverse else "↑"
    return label


def state_counts(infos: Sequence[RunInfo]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for i in infos:
        s = i.state or "?"
        counts[s] = counts.get(s, 0) + 1
    return counts
