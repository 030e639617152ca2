"""What a trainer refuses before torch is imported: the config, the data file's layout (read
from its metadata, no frame) and the files `model.weights` / `run.resume` name.

Importing torch and timm costs ~8 s of CPU; a run whose data file is missing, or whose seed
checkpoint was moved, now fails in a fraction of a second with the same one-line error, the
same status, `end` event and RUNLOG entry as a failure found later. This module imports no
torch, and neither does recording the failure (`fail`).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import sys
import time
from pathlib import Path

from amc_tui.config import Config, load_config, with_data_path
from amc_tui.data.radioml import RadioMLFile  # h5py: no torch
from amc_tui.errors import UserError
from amc_tui.run.rundir import (
    RunDir,
    append_event,
    attempt_started,
    read_status,
    run_workspace,
    write_status,
)
from amc_tui.runlog.sync import sync_entry


class CheckpointError(UserError):
    """A checkpoint that cannot be used (one line)."""


def checkpoint_file(ref: str, key: str, workspace: Path) -> Path:
    """The file `key` (`run.resume`, `model.weights`) names. The launcher writes an absolute
    path when it creates the run (refs.resolve_checkpoint); a relative one, from a hand-written
    config, is taken from the workspace. No search here: a trainer must not pick a different
    checkpoint than the one its config records."""
    path = Path(ref).expanduser()
    if not path.is_absolute():
        path = workspace / path
    if not path.is_file():
        where = "" if str(path) == ref else f" ({path})"
        raise CheckpointError(f"{key} = {ref!r}: no such file{where}")
    return path


def seed_files(cfg: Config, workspace: Path, resuming: bool) -> list[tuple[str, Path]]:
    """(config key, file) of the checkpoints a fresh start loads weights from: a bad file's
    error names the key that chose it. `run.resume` is read only when not resuming (a resume
    continues from the run's own last.pt)."""
    found = []
    if cfg.model.weights:
        found.append(("model.weights", checkpoint_file(cfg.model.weights, "model.weights", workspace)))  # fmt: skip
    if cfg.run.resume and not resuming:
        found.append(("run.resume", checkpoint_file(cfg.run.resume, "run.resume", workspace)))
    return found


def data_error(e: UserError) -> UserError:
    """A data file's error with the key that chose the file (unless it names a data key)."""
    if re.search(r"(^|\s)data\.\w+", str(e)):
        return e
    return type(e)(f"data.path: {e}")


def check(run: RunDir, resuming: bool) -> None:
    """Raise the UserError the trainer would raise later for the config, the data file or a
    seed checkpoint; nothing is read but metadata."""

    ws = run_workspace(run)
    cfg = with_data_path(load_config(run.config), ws)
    seed_files(cfg, ws, resuming)
    try:
        RadioMLFile.open(cfg.data.path).close()
    except UserError as e:
        raise data_error(e) from None


def runlog_error(e: BaseException) -> str:
    """Why RUNLOG.md could not be updated, in one line: the OS reason and the file for an
    OSError ("Is a directory: /ws/RUNLOG.md"), else the exception's first line."""
    if isinstance(e, OSError) and e.strerror:
        return f"{e.strerror}: {e.filename}" if e.filename else e.strerror
    first = (str(e).strip().splitlines() or [""])[0]
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


def sync_runlog(run: RunDir) -> str | None:
    """Update the run's RUNLOG.md entry; why it could not be (also printed), else None. A
    RUNLOG problem never fails a run: the caller keeps it as status.json `runlog_error`."""
    try:
        sync_entry(run.path)
    except Exception as e:  # noqa: BLE001 - a RUNLOG problem is said, never raised
        error = runlog_error(e)
        print(f"RUNLOG.md not updated: {error}", flush=True)
        return error
    return None


def fail(run: RunDir, error: str, code: int = 2) -> int:
    """Record a run that failed before training started, as the trainer's own end would:
    status.json, one `end` event, the RUNLOG entry, the error on stderr. Epoch and step are
    left as they were (a failed resume keeps its progress)."""
    msg = error.splitlines()[0] if error else "failed before start"
    print(f"error: {msg}", file=sys.stderr, flush=True)
    now = time.time()
    # the attempt ran from its launch (as the trainer counts it): elapsed does not drop to 0
    started = attempt_started(read_status(run), now)
    with contextlib.suppress(OSError):
        write_status(
            run, state="failed", exit_code=code, pid=os.getpid(), pgid=os.getpgid(0),
            host=socket.gethostname(), **started, heartbeat_at=now, ended_at=now,
            error=msg, runlog_error=None,
        )  # fmt: skip
    with contextlib.suppress(OSError):  # no start event: the end says when the attempt began
        append_event(run, "end", state="failed", exit_code=code, best=None, error=msg,
                     started_at=started["started_at"])  # fmt: skip
    said = sync_runlog(run)
    if said:
        with contextlib.suppress(OSError):
            write_status(run, runlog_error=said)
    print(f"failed (exit {code})", flush=True)
    return code
