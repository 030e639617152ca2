"""The RUNLOG.md file itself: its header, the lock every writer takes, and a read and an atomic
write that keep bytes outside the markers as they were (surrogateescape)."""

from __future__ import annotations

from pathlib import Path

from filelock import FileLock

from amc_tui.fsutil import atomic_write_bytes

HEADER = (
    "# RUNLOG\n\n"
    "Training runs of this workspace. amc-tui keeps one entry per run between its markers;\n"
    "everything outside the markers is yours and is never changed.\n"
)
LOCK_TIMEOUT_S = 60.0


def lock(path: Path) -> FileLock:
    return FileLock(path.with_name(f".{path.name}.lock"), timeout=LOCK_TIMEOUT_S)


def read(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        return None


def write(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8", "surrogateescape"))  # keeps the file's mode
