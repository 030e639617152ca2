"""Small file primitives every writer shares: atomic replace and append-only lines.

A reader must never see half a status.json, checkpoint or RUNLOG.md: write a temp file in the
same folder, fsync, rename over the target, fsync the folder.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO


def atomic_write_with(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> None:
    """Replace `path` with what `write(f)` writes, so that readers see the old or the new
    file, never a mix (checkpoints pass `lambda f: torch.save(state, f)`)."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, _mode_for(target))  # mkstemp makes 0600; keep what readers expect
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    atomic_write_with(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=plain) + "\n")


def append_line(path: str | os.PathLike[str], line: str) -> None:
    """Append one line with a single O_APPEND write, so concurrent appenders never interleave
    inside a line and a crash leaves at most a torn last line."""
    data = (line.rstrip("\n") + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def read_json(path: str | os.PathLike[str]) -> Any | None:
    """The parsed file, or None when it is missing or unreadable (a reader never crashes).
    One bytes read and json.loads: listing 1,000 runs reads 2,000 of these."""
    try:
        with open(path, "rb") as f:
            return json.loads(f.read())
    except (OSError, ValueError):
        return None


def plain(obj: Any) -> Any:
    """json.dumps `default=`: numpy scalars and arrays, paths and sets become plain types."""
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _mode_for(target: Path) -> int:
    """The target's current permission bits, or 0644 for a new file."""
    try:
        return target.stat().st_mode & 0o777
    except OSError:
        return 0o644


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_tmp(*folders: str | os.PathLike[str]) -> list[Path]:
    """Delete the temp files `atomic_write_with` leaves when its process is killed mid-write
    (`.<name>.<random>.tmp`; a checkpoint's is 50-130 MB). Only the folder's owner calls it
    (a trainer holding the run's lock), so no live writer's temp file is removed."""
    removed: list[Path] = []
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for e in entries:
            if e.name.startswith(".") and e.name.endswith(".tmp") and e.is_file():
                with contextlib.suppress(OSError):
                    os.unlink(e.path)
                    removed.append(Path(e.path))
    return removed


def free_bytes(path: str | os.PathLike[str]) -> int | None:
    """Free space on the filesystem holding `path` (its nearest existing parent)."""
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return None


def human_bytes(n: float | None) -> str:
    if n is None:
        return "unknown"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC/EDQUOT, or torch.save's RuntimeError for a short write ("unexpected pos",
    "file write failed"), which hides the errno of a full disk."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    text = str(exc)
    return isinstance(exc, RuntimeError) and (
        "unexpected pos" in text or "file write failed" in text or "No space left" in text
    )


def disk_full_message(path: str | os.PathLike[str]) -> str:
    """What a person needs: which file, and how much room there is."""
    return f"no space left on device writing {path} ({human_bytes(free_bytes(path))} free)"
