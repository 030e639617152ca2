"""RUNLOG: the workspace's RUNLOG.md rendered as Markdown, with an index of run entries to
jump to (`amc_tui.runlog.entry_offsets` finds them).

The file is read in a worker. A very large RUNLOG renders only the chosen entry, so opening it
never stalls the UI.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Markdown, OptionList, Static
from textual.widgets.option_list import Option

FULL_RENDER_LIMIT = 256 << 10  # bytes; beyond this, render one entry at a time
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


@dataclass
class RunlogRead(Message):
    text: str = ""
    entries: list[tuple[str, str, int, int]] = field(default_factory=list)  # id, title, s, e
    error: str | None = None
    missing: bool = False


def headings_before(text: str, offset: int) -> int:
    """How many Markdown headings start before `offset` (fenced code skipped): the index of an
    entry's heading in the rendered table of contents."""
    count, fenced, pos = 0, False, 0
    for line in text.splitlines(keepends=True):
        if pos >= offset:
            break
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced and _HEADING.match(line.rstrip("\n")):
            count += 1
        pos += len(line)
    return count


def entry_title(chunk: str, run_id: str) -> str:
    """The entry's first heading without the trailing `(id)` (the index is narrow)."""
    for line in chunk.splitlines():
        m = _HEADING.match(line)
        if m:
            return m.group(2).removesuffix(f"({run_id})").strip() or run_id
    return run_id


class RunlogScreen(Screen):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("j", "focus_index", "Jump"),
        Binding("i", "toggle_index", "Index"),
        Binding("R", "reload", "Reload"),
    ]

    def __init__(self, jump_to: str | None = None) -> None:
        super().__init__(classes="runlog")
        self.jump_to = jump_to
        self.text = ""
        self.entries: list[tuple[str, str, int, int]] = []
        self.partial = False

    @property
    def amc(self) -> Any:
        return self.app

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("RUNLOG.md: reading...", id="rl-head")
        with Horizontal(id="rl-body"):
            yield OptionList(id="rl-index")
            with VerticalScroll(id="rl-scroll"):
                yield Markdown("", id="rl-md")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._read()

    @work(thread=True, exclusive=True, group="runlog", exit_on_error=False)
    def _read(self) -> None:
        from amc_tui.runlog import entry_offsets

        path = self.amc.ws.runlog
        try:
            if not path.exists():
                self.post_message(RunlogRead(missing=True))
                return
            text = path.read_text(encoding="utf-8", errors="replace")
            offsets = entry_offsets(text)
            entries = [
                (rid, entry_title(text[s:e], rid), s, e)
                for rid, (s, e) in sorted(offsets.items(), key=lambda kv: kv[1][0])
            ]
            self.post_message(RunlogRead(text, entries))
        except Exception as e:  # noqa: BLE001
            self.post_message(RunlogRead(error=str(e)))

    @on(RunlogRead)
    async def _show(self, msg: RunlogRead) -> None:
        head = self.query_one("#rl-head", Static)
        md = self.query_one("#rl-md", Markdown)
        if msg.error:
            self.amc.report_error(f"RUNLOG: {msg.error}")
            head.update("RUNLOG.md: cannot read (see notification)")
            return
        if msg.missing:
            head.update("no RUNLOG.md yet: it gets an entry when a run starts")
            await md.update("")
            return
        self.text, self.entries = msg.text, msg.entries
        self.partial = len(msg.text.encode()) > FULL_RENDER_LIMIT
        index = self.query_one("#rl-index", OptionList)
        index.clear_options()
        index.add_options([Option(title, id=rid) for rid, title, _, _ in msg.entries])
        size_kb = len(msg.text.encode()) / 1024
        head.update(
            f"RUNLOG.md · {len(msg.entries)} run entries · {size_kb:.0f} KB"
            + (" · large file: showing one entry at a time" if self.partial else "")
        )
        target = self.jump_to if any(e[0] == self.jump_to for e in msg.entries) else None
        if self.partial:
            first = target or (msg.entries[-1][0] if msg.entries else None)
            await md.update(self._entry_text(first) if first else msg.text[:FULL_RENDER_LIMIT])
        else:
            await md.update(msg.text)
        if target:
            self.jump(target)

    def _entry_text(self, run_id: str) -> str:
        for rid, _, s, e in self.entries:
            if rid == run_id:
                return self.text[s:e]
        return ""

    def jump(self, run_id: str) -> bool:
        """Scroll to a run's entry (render it alone in a large file)."""
        entry = next((e for e in self.entries if e[0] == run_id), None)
        if entry is None:
            self.amc.report(f"no RUNLOG entry for {run_id}", "warning")
            return False
        md = self.query_one("#rl-md", Markdown)
        index = self.query_one("#rl-index", OptionList)
        with contextlib.suppress(Exception):
            index.highlighted = index.get_option_index(run_id)
        if self.partial:
            self.run_worker(md.update(self._entry_text(run_id)), exclusive=True, group="rl-md")
            self.query_one("#rl-scroll").scroll_home(animate=False)
            return True
        toc = md.table_of_contents
        n = headings_before(self.text, entry[2])
        if n < len(toc):
            block_id = toc[n][2]
            target = md.query_one(f"#{block_id}")
            self.call_after_refresh(
                lambda: self.query_one("#rl-scroll").scroll_to_widget(
                    target, top=True, animate=False
                )
            )
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
