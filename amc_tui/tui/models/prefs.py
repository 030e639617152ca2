"""What the app remembers per workspace, beside the runs: runs/.amc-tui/tui.json (the Runs
table's columns and sort) and runs/.amc-tui/last-config.toml (the config last launched from
the New-run form, offered first when the form opens again).

Reads and writes are small and happen in the screens' thread workers; a missing or damaged
file reads as "nothing remembered", and writes are atomic, so a crash never leaves half a file.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amc_tui.config import dumps_config, load_config
from amc_tui.fsutil import atomic_write_json, atomic_write_text, read_json

if TYPE_CHECKING:
    from amc_tui.config import Config
    from amc_tui.workspace import Workspace

PREFS_FILE = "tui.json"
LAST_CONFIG_FILE = "last-config.toml"


def prefs_path(ws: Workspace) -> Path:
    return ws.state_dir / PREFS_FILE


def last_config_path(ws: Workspace) -> Path:
    return ws.state_dir / LAST_CONFIG_FILE


@dataclasses.dataclass
class RunsPrefs:
    """The Runs table's optional columns (None: the default set) and its sort."""

    columns: list[str] | None = None
    sort_column: str = "created"
    sort_reverse: bool = True


def read_runs_prefs(ws: Workspace) -> RunsPrefs:
    data = read_json(prefs_path(ws))
    runs = data.get("runs") if isinstance(data, dict) else None
    if not isinstance(runs, dict):
        return RunsPrefs()
    cols = runs.get("columns")
    out = RunsPrefs(columns=[str(c) for c in cols] if isinstance(cols, list) else None)
    if isinstance(runs.get("sort_column"), str):
        out.sort_column = runs["sort_column"]
    if isinstance(runs.get("sort_reverse"), bool):
        out.sort_reverse = runs["sort_reverse"]
    return out


def write_runs_prefs(ws: Workspace, prefs: RunsPrefs) -> None:
    """Merge into tui.json (other sections are kept)."""
    path = prefs_path(ws)
    data: Any = read_json(path)
    data = data if isinstance(data, dict) else {}
    data["runs"] = dataclasses.asdict(prefs)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, data)


def remember_config(ws: Workspace, cfg: Config) -> None:
    """Keep the launched config, without its run name (names are one run's own)."""

    cfg = dataclasses.replace(cfg, name="")
    path = last_config_path(ws)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, dumps_config(cfg))


def last_config(ws: Workspace) -> Config | None:
    """The remembered config, or None when there is none or it no longer validates."""

    path = last_config_path(ws)
    if not path.is_file():
        return None
    try:
        return load_config(path)
    except Exception:  # noqa: BLE001 - a stale or damaged file is simply not offered
        return None
