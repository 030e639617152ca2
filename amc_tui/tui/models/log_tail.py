"""train.log read as it grows, for the Live screen's log panel: by byte offset, so each poll
reads only what was appended since the last one (the launcher and the trainer append, a
resumed run included: `launch/supervise.py` opens the file with "ab").

The first read starts at the last `tail_bytes` of the file (its first, likely cut, line
dropped). A file replaced under the name (rotated: another inode) or shorter than what was
read (truncated) is read again from its tail, and the poll says so (`reset`), so the panel
starts over instead of appending to lines that are gone. A line without its newline yet is
returned apart (`partial`) and returned again, longer, until it ends; a `\\r` inside a line
keeps what follows the last one (a progress counter shows its latest value).

Call `poll` from a worker thread: it does file I/O.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from amc_tui.tui.models.live_model import tail_lines

TAIL_BYTES = 32 << 10


@dataclass(frozen=True)
class LogChunk:
    lines: list[str] = field(default_factory=list)  # complete lines appended since the last poll
    partial: str = ""  # the unfinished last line ("" when the file ends with a newline)
    reset: bool = False  # the file was replaced or truncated: drop what was shown before


class LogTailer:
    """Incremental reader of one log file. `poll()` returns None when nothing changed."""

    def __init__(self, path: str | os.PathLike[str], tail_bytes: int = TAIL_BYTES) -> None:
        self.path = Path(path)
        self.tail_bytes = tail_bytes
        self.offset = 0
        self.inode: int | None = None  # of the file being read; None before the first read
        self.pending = b""  # bytes after the last newline read
        self.skip_first = False  # the bytes before the first newline are a cut line
        self.resets = 0

    def poll(self) -> LogChunk | None:
        try:
            st = os.stat(self.path)
        except OSError:
            if self.inode is None:
                return None
            self._start(None, 0)  # removed: whatever comes under the name next is new
            self.resets += 1
            return LogChunk(reset=True)
        reset = False
        if self.inode is None or st.st_ino != self.inode or st.st_size < self.offset:
            reset = self.inode is not None
            self.resets += reset
            self._start(st.st_ino, st.st_size)
        elif st.st_size - self.offset > self.tail_bytes:
            # far behind (a burst of output): what lies before the last tail_bytes would
            # scroll out of the panel anyway
            self._skip_to(st.st_size - self.tail_bytes)
        if st.st_size == self.offset and not reset:
            return None
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(st.st_size - self.offset)
        self.offset += len(data)
        data = self.pending + data
        if self.skip_first:
            cut = data.find(b"\n")
            if cut < 0:
                self.pending = data
                return LogChunk(reset=True) if reset else None
            data, self.skip_first = data[cut + 1 :], False
        end = data.rfind(b"\n")
        complete, self.pending = data[: end + 1], data[end + 1 :]
        lines = tail_lines(complete, 1 << 30) if complete else []
        # a progress line written with end="\r" shows what it wrote until the next write
        partial = (tail_lines(self.pending.rstrip(b"\r"), 1) or [""])[0]
        return LogChunk(lines, partial, reset)

    def _start(self, inode: int | None, size: int) -> None:
        self.inode = inode
        self.offset = 0
        self.pending = b""
        self.skip_first = False
        if size > self.tail_bytes:
            self._skip_to(size - self.tail_bytes)

    def _skip_to(self, offset: int) -> None:
        """Read on from `offset`, dropping the line it falls in: from the byte before, so a
        line that starts right at `offset` is kept (the byte before is its newline)."""
        self.offset = offset - 1
        self.pending = b""
        self.skip_first = True
