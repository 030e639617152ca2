"""The workspace: a folder holding configs/, runs/, data/, RUNLOG.md and, when notifications
are wanted, amc-tui.toml (amc_tui/notify/settings.py).

`--workspace DIR`, else `$AMC_TUI_WORKSPACE`, else the current folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "AMC_TUI_WORKSPACE"


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def find(cls, explicit: str | os.PathLike[str] | None = None) -> Workspace:
        raw = explicit or os.environ.get(ENV_VAR) or os.getcwd()
        return cls(Path(raw).expanduser().resolve())

    @property
    def configs(self) -> Path:
        return self.root / "configs"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def runlog(self) -> Path:
        return self.root / "RUNLOG.md"

    @property
    def state_dir(self) -> Path:
        """Workspace-level bookkeeping (run counter, queue lock), kept beside the runs."""
        return self.runs / ".amc-tui"

    def resolve(self, path: str | os.PathLike[str]) -> Path:
        """A user path relative to the workspace (absolute paths pass through)."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.root / p
