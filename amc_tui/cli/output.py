"""What every command prints the same way: JSON (`--json`), with numpy scalars, paths and
dataclasses made plain."""

from __future__ import annotations

import json

from amc_tui.fsutil import plain


def print_json(obj: object) -> None:
    print(json.dumps(obj, indent=2, default=plain))
