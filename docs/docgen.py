"""What the doc generators (make_config_reference.py, make_keys_reference.py) share: write the
file they made, or with --check only say whether the committed one is current."""

from __future__ import annotations

import sys
from pathlib import Path


def write_or_check(out: Path, current: str, text: str, argv: list[str], what: str) -> int:
    """`text` into `out` (printing its path), or with `--check` in argv: 1 and a line on
    stderr when `current` differs from it, else 0. `what` names the part, e.g. "docs/TUI.md's
    key table"."""
    if "--check" in argv:
        if current != text:
            print(f"{what} is stale: run `make docs`", file=sys.stderr)
            return 1
        print(f"{what} is current")
        return 0
    out.write_text(text, encoding="utf-8")
    print(out.relative_to(out.parents[1]))
    return 0
