"""What every launcher process shares and nothing heavy: the workspace's state folder
(runs/.amc-tui/), its file locks and the environment of the processes it spawns. The queue
worker's keeper imports only this, so `amc-tui ls` does not load what creating a run needs."""

from __future__ import annotations

import os
from pathlib import Path

from filelock import FileLock

from amc_tui.workspace import Workspace

LOCK_TIMEOUT_S = 30.0


def state_dir(ws: Workspace) -> Path:
    """runs/.amc-tui/: locks, the run counter, the worker's log, trainer records."""
    ws.state_dir.mkdir(parents=True, exist_ok=True)
    return ws.state_dir


def file_lock(path: Path) -> FileLock:
    """A process-wide singleton lock per path: reentrant in one thread, exclusive across
    threads and processes. Pass other timeouts to `acquire`, not here (singletons must be
    built with the same arguments)."""
    return FileLock(path, timeout=LOCK_TIMEOUT_S, is_singleton=True)


def base_env() -> dict[str, str]:
    """Our environment, unbuffered, with this package importable from the child."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    pkg_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_root, env.get("PYTHONPATH", "")) if p)
    return env
