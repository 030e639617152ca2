"""RUNLOG: the workspace's RUNLOG.md rendered as Markdown, with an index of run entries to
jump to (`amc_tui.runlog.sync.entry_offsets` finds them).

The file is read in a worker and split into chunks (the user's text and one chunk per run
entry), each rendered by Rich's Markdown in its own Static: far cheaper than a widget per
Markdown block, and jumping to an entry is scrolling to its chunk. A very large RUNLOG shows
one entry at a time.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field

from rich.markdown import Markdown as RichMarkdown
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Footer, Header, OptionList, Static
from textual.widgets.option_list import Option

from amc_tui.runlog.sync import entry_offsets
from amc_tui.tui import keys
from amc_tui.tui.screens.base import AmcScreen

FULL_RENDER_LIMIT = 192 << 10  # characters; beyond this, render one entry at a time
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


@dataclass
class Chunk:
    text: str
    run_id: str | None = None  # None: the user's text between entries
    title: str = ""


@dataclass
class RunlogRead(Message):
    chunks: list[Chunk] = field(default_factory=list)
    size: int = 0
    error: str | None = None
    missing: bool = False


def entry_title(chunk: str, run_id: str) -> str:
    """The entry's first heading without the trailing `(id)` (the index is narrow)."""
    for line in chunk.splitlines():
        m = _HEADING.match(line)
        if m:
            return m.group(2).removesuffix(f"({run_id})").strip() or run_id
    return run_id


def split_runlog(text: str, offsets: dict[str, tuple[int, int]]) -> list[Chunk]:
    """The file as consecutive chunks: user text, entry, user text, entry, ..."""
    chunks: list[Chunk] = []
    pos = 0
    for run_id, (start, end) in sorted(offsets.items(), key=lambda kv: kv[1][0]):
        if start < pos:
            continue
        if text[pos:start].strip():
            chunks.append(Chunk(text[pos:start]))
        body = text[start:end]
        chunks.append(Chunk(body, run_id, entry_title(body, run_id)))
        pos = end
    if text[pos:].strip():
        chunks.append(Chunk(text[pos:]))
    return chunks


class RunlogScreen(AmcScreen):
    BINDINGS = keys.bindings("runlog")

    def __init__(self, jump_to: str | None = None) -> None:
        super().__init__(classes="runlog")
        self.jump_to = jump_to
        self.chunks: list[Chunk] = []
        self.partial = False
        self.current: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("RUNLOG.md: reading...", id="rl-head")
        with Horizontal(id="rl-body"):
            yield OptionList(id="rl-index")
            yield VerticalScroll(id="rl-scroll")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._read()

    @work(thread=True, exclusive=True, group="runlog", exit_on_error=False)
    def _read(self) -> None:
        path = self.amc.ws.runlog
        try:
            if not path.exists():
                self.post_message(RunlogRead(missing=True))
                return
            text = path.read_text(encoding="utf-8", errors="replace")
            self.post_message(RunlogRead(split_runlog(text, entry_offsets(text)), len(text)))
        except Exception as e:  # noqa: BLE001
            self.post_message(RunlogRead(error=str(e)))

    @on(RunlogRead)
    async def _show(self, msg: RunlogRead) -> None:
        head = self.query_one("#rl-head", Static)
        scroll = self.query_one("#rl-scroll", VerticalScroll)
        if msg.error:
            self.amc.report_error(f"RUNLOG: {msg.error}")
            head.update("RUNLOG.md: cannot read (see notification)")
            return
        await scroll.remove_children()
        if msg.missing:
            head.update("no RUNLOG.md yet: a run gets its entry when it starts")
            return
        self.chunks = msg.chunks
        entries = [c for c in msg.chunks if c.run_id]
        self.partial = msg.size > FULL_RENDER_LIMIT
        index = self.query_one("#rl-index", OptionList)
        index.clear_options()
        index.add_options([Option(c.title, id=c.run_id) for c in entries])
        head.update(
            f"RUNLOG.md · {len(entries)} run entries · {msg.size / 1024:.0f} KB"
            + (" · large file: one entry at a time" if self.partial else "")
        )
        target = self.jump_to if any(c.run_id == self.jump_to for c in entries) else None
        if self.partial:
            first = target or (entries[-1].run_id if entries else None)
            await self._render_chunks(
                [c for c in msg.chunks if c.run_id == first] or msg.chunks[:1]
            )
        else:
            await self._render_chunks(msg.chunks)
        if target:
            self.jump(target)

    async def _render_chunks(self, chunks: list[Chunk]) -> None:
        scroll = self.query_one("#rl-scroll", VerticalScroll)
        await scroll.remove_children()
        await scroll.mount_all(
            Static(
                RichMarkdown(c.text), classes="rl-chunk", id=f"rl-{c.run_id}" if c.run_id else None
            )
            for c in chunks
        )

    def jump(self, run_id: str) -> bool:
        """Scroll to a run's entry (render it alone in a large file)."""
        chunk = next((c for c in self.chunks if c.run_id == run_id), None)
        if chunk is None:
            self.amc.report(f"no RUNLOG entry for {run_id}", "warning")
            return False
        self.current = run_id
        index = self.query_one("#rl-index", OptionList)
        with contextlib.suppress(Exception):
            index.highlighted = index.get_option_index(run_id)
        scroll = self.query_one("#rl-scroll", VerticalScroll)
        if self.partial:
            self.run_worker(self._render_chunks([chunk]), exclusive=True, group="rl-render")
            scroll.scroll_home(animate=False)
            return True
        target = scroll.query_one(f"#rl-{run_id}")
        self.call_after_refresh(scroll.scroll_to_widget, target, top=True, animate=False)
        return True

    @on(OptionList.OptionSelected, "#rl-index")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.jump(event.option.id)

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_focus_index(self) -> None:
        index = self.query_one("#rl-index", OptionList)
        index.display = True
        index.focus()

    def action_toggle_index(self) -> None:
        index = self.query_one("#rl-index", OptionList)
        index.display = not index.display

    def action_reload(self) -> None:
        self._read()
