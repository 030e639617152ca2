"""RUNLOG: the workspace's RUNLOG.md rendered as Markdown, with an index of its entries (runs
and sweep groups) to jump to (`amc_tui.runlog.sync.entry_offsets` and
`amc_tui.runlog.group_entry.group_offsets` find them).

The file is read in a worker and split into chunks (the user's text, one chunk per run entry
and one per group entry), each chunk into blocks: prose, rendered by Rich's Markdown at the
view's width (it wraps), and tables, rendered at their natural width so that no value is ever
squeezed or cut; a table wider than the view scrolls sideways (left / right) with the rest.
One Static per block: far cheaper than a widget per Markdown block, and jumping to an entry
is scrolling to its first block. A very large RUNLOG shows one entry at a time. Below 120
columns the index starts hidden and shows over the text (`i` shows it, `j` jumps through it
and hides it again), so the text keeps the whole width.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field

from rich.console import Console, ConsoleOptions, RenderResult
from rich.markdown import Markdown as RichMarkdown
from rich.measure import Measurement
from rich.segment import Segment
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, ScrollableContainer
from textual.message import Message
from textual.widgets import Footer, Header, OptionList, Static
from textual.widgets.option_list import Option

from amc_tui.runlog.group_entry import group_offsets
from amc_tui.runlog.sync import entry_offsets
from amc_tui.tui import keys
from amc_tui.tui.screens.base import AmcScreen

FULL_RENDER_LIMIT = 192 << 10  # characters; beyond this, render one entry at a time
WIDE = 120  # from this many columns the index shows from the start
GROUP = "group-"  # the key of a group entry: GROUP + its id (run entries: the run id)
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_TABLE_ROW = re.compile(r"^\s*\|")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass
class Chunk:
    text: str
    key: str | None = None  # a run id, or GROUP + a group id; None: the user's text
    title: str = ""

    @property
    def is_group(self) -> bool:
        return bool(self.key and self.key.startswith(GROUP))


@dataclass
class RunlogRead(Message):
    chunks: list[Chunk] = field(default_factory=list)
    size: int = 0
    error: str | None = None
    missing: bool = False


def entry_title(chunk: str, entry_id: str) -> str:
    """The entry's first heading without the trailing `(id)` (the index is narrow)."""
    for line in chunk.splitlines():
        m = _HEADING.match(line)
        if m:
            return m.group(2).removesuffix(f"({entry_id})").strip() or entry_id
    return entry_id


def runlog_offsets(text: str) -> dict[str, tuple[int, int]]:
    """{key: (start, end)} of every entry: run entries by run id, group entries by GROUP + id."""
    offsets = dict(entry_offsets(text))
    offsets.update({f"{GROUP}{gid}": span for gid, span in group_offsets(text).items()})
    return offsets


def split_runlog(text: str, offsets: dict[str, tuple[int, int]]) -> list[Chunk]:
    """The file as consecutive chunks: user text, entry, user text, entry, ..."""
    chunks: list[Chunk] = []
    pos = 0
    for key, (start, end) in sorted(offsets.items(), key=lambda kv: kv[1][0]):
        if start < pos:
            continue
        if text[pos:start].strip():
            chunks.append(Chunk(text[pos:start]))
        body = text[start:end]
        chunks.append(Chunk(body, key, entry_title(body, key.removeprefix(GROUP))))
        pos = end
    if text[pos:].strip():
        chunks.append(Chunk(text[pos:]))
    return chunks


def split_blocks(text: str) -> list[tuple[bool, str]]:
    """(is_table, text) blocks in order: each Markdown table (a header row, its rule and the
    rows under it) apart from the prose around it; code fences are never tables."""
    lines = text.splitlines(keepends=True)
    out: list[tuple[bool, str]] = []
    prose: list[str] = []
    fenced = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if _FENCE.match(line):
            fenced = not fenced
        if (not fenced and _TABLE_ROW.match(line) and i + 1 < len(lines)
                and _TABLE_RULE.match(lines[i + 1])):  # fmt: skip
            j = i + 2
            while j < len(lines) and _TABLE_ROW.match(lines[j]):
                j += 1
            if "".join(prose).strip():
                out.append((False, "".join(prose)))
            prose = []
            out.append((True, "".join(lines[i:j])))
            i = j
            continue
        prose.append(line)
        i += 1
    if "".join(prose).strip():
        out.append((False, "".join(prose)))
    return out


def widest_rows(table: str) -> str:
    """A Markdown table cut to its header, its rule and, per column, the row with the longest
    cell: as wide as the whole table when drawn unsqueezed, cheap to measure however long."""
    lines = table.splitlines(keepends=True)
    rows = lines[2:]
    cells = [[c.strip() for c in r.strip().strip("|").split("|")] for r in rows]
    keep: set[int] = set()
    for col in range(max((len(c) for c in cells), default=0)):
        lengths = [len(c[col]) if col < len(c) else -1 for c in cells]
        keep.add(max(range(len(rows)), key=lengths.__getitem__))
    return "".join(lines[:2] + [rows[i] for i in sorted(keep)])


class NaturalWidth:
    """Markdown (a table) measured at its natural width: the view gives it all the columns it
    needs instead of squeezing its cells ("10.8…")."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.markdown = RichMarkdown(text)
        self._width: int | None = None

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        if self._width is None:
            sample = RichMarkdown(widest_rows(self.text))
            lines = console.render_lines(sample, options.update_width(1 << 12), pad=False)
            self._width = max((Segment.get_line_length(ln) for ln in lines), default=1)
        return Measurement(self._width, self._width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.markdown


def chunk_blocks(chunk: Chunk) -> list[Static]:
    """One Static per block of a chunk; the first carries the entry's id (the jump target)."""
    out = []
    for i, (is_table, text) in enumerate(split_blocks(chunk.text)):
        out.append(
            Static(
                NaturalWidth(text) if is_table else RichMarkdown(text),
                classes="rl-table" if is_table else "rl-prose",
                id=f"rl-{chunk.key}" if chunk.key and i == 0 else None,
            )
        )
    return out


class RunlogScreen(AmcScreen):
    BINDINGS = keys.bindings("runlog")
    # below 120 columns the index lies over the text instead of narrowing it: showing or
    # hiding it never reflows the text (a jump lands where it aims)
    DEFAULT_CSS = """
    RunlogScreen #rl-body { layers: text index; }
    RunlogScreen.-narrow #rl-index { dock: left; layer: index; background: $panel; }
    RunlogScreen #rl-scroll { overflow-x: auto; overflow-y: auto; }
    RunlogScreen .rl-prose { width: 100%; }
    RunlogScreen .rl-table { width: auto; }
    """

    def __init__(self, jump_to: str | None = None) -> None:
        super().__init__(classes="runlog")
        self.jump_to = jump_to
        self.chunks: list[Chunk] = []
        self.partial = False
        self.current: str | None = None
        self._index_to_jump = False  # the index was shown by `j`: hidden again after a jump

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("RUNLOG.md: reading...", id="rl-head")
        with Horizontal(id="rl-body"):
            yield OptionList(id="rl-index")
            yield ScrollableContainer(id="rl-scroll")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        if self.app.size.width < WIDE:  # the text needs the room more than the index does
            self.query_one("#rl-index", OptionList).display = False
        self.query_one("#rl-scroll").focus()
        self._read()

    @work(thread=True, exclusive=True, group="runlog", exit_on_error=False)
    def _read(self) -> None:
        path = self.amc.ws.runlog
        try:
            if not path.exists():
                self.post_message(RunlogRead(missing=True))
                return
            text = path.read_text(encoding="utf-8", errors="replace")
            self.post_message(RunlogRead(split_runlog(text, runlog_offsets(text)), len(text)))
        except Exception as e:  # noqa: BLE001
            self.post_message(RunlogRead(error=str(e)))

    @on(RunlogRead)
    async def _show(self, msg: RunlogRead) -> None:
        head = self.query_one("#rl-head", Static)
        scroll = self.query_one("#rl-scroll", ScrollableContainer)
        if msg.error:
            self.amc.report_error(f"RUNLOG: {msg.error}")
            head.update("RUNLOG.md: cannot read (see notification)")
            return
        await scroll.remove_children()
        if msg.missing:
            head.update("no RUNLOG.md yet: a run gets its entry when it starts")
            return
        self.chunks = msg.chunks
        entries = [c for c in msg.chunks if c.key]
        self.partial = msg.size > FULL_RENDER_LIMIT
        index = self.query_one("#rl-index", OptionList)
        index.clear_options()
        index.add_options([Option(c.title, id=c.key) for c in entries])
        n_groups = sum(c.is_group for c in entries)
        n_runs = len(entries) - n_groups
        head.update(
            f"RUNLOG.md · {n_runs} run entr{'y' if n_runs == 1 else 'ies'}"
            + (f" · {n_groups} group entr{'y' if n_groups == 1 else 'ies'}" if n_groups else "")
            + f" · {msg.size / 1024:.0f} KB"
            + (" · large file: one entry at a time" if self.partial else "")
        )
        target = self.jump_to if any(c.key == self.jump_to for c in entries) else None
        if self.partial:
            first = target or (entries[-1].key if entries else None)
            await self._render_chunks([c for c in msg.chunks if c.key == first] or msg.chunks[:1])
        else:
            await self._render_chunks(msg.chunks)
        if target:
            self.jump(target)

    async def _render_chunks(self, chunks: list[Chunk]) -> None:
        scroll = self.query_one("#rl-scroll", ScrollableContainer)
        await scroll.remove_children()
        await scroll.mount_all([block for c in chunks for block in chunk_blocks(c)])

    def jump(self, key: str) -> bool:
        """Scroll to an entry (render it alone in a large file)."""
        chunk = next((c for c in self.chunks if c.key == key), None)
        if chunk is None:
            self.amc.report(f"no RUNLOG entry for {key}", "warning")
            return False
        self.current = key
        index = self.query_one("#rl-index", OptionList)
        with contextlib.suppress(Exception):
            index.highlighted = index.get_option_index(key)
        scroll = self.query_one("#rl-scroll", ScrollableContainer)
        if self.partial:
            self.run_worker(self._render_chunks([chunk]), exclusive=True, group="rl-render")
            scroll.scroll_home(animate=False)
            return True
        target = scroll.query_one(f"#rl-{key}")
        self.call_after_refresh(scroll.scroll_to_widget, target, top=True, animate=False)
        return True

    @on(OptionList.OptionSelected, "#rl-index")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        if not event.option.id:
            return
        self.jump(event.option.id)
        if self._index_to_jump:
            self._index_to_jump = False
            event.option_list.display = False
            self.query_one("#rl-scroll").focus()

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_focus_index(self) -> None:
        index = self.query_one("#rl-index", OptionList)
        self._index_to_jump = not index.display
        index.display = True
        index.focus()

    def action_toggle_index(self) -> None:
        index = self.query_one("#rl-index", OptionList)
        index.display = not index.display
        self._index_to_jump = False
        if not index.display:
            self.query_one("#rl-scroll").focus()

    def action_reload(self) -> None:
        self._read()
