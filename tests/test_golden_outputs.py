"""What a user reads about finished runs stays byte for byte what it was.

A fixed workspace of finished run directories (every ended state, one queued run, exports,
a resumed run) is rendered through the CLI (`ls`, `ls --json`, `show`, `show --json`,
`compare`) and the RUNLOG writer; the text must equal the files in tests/golden/. A refactor
that changes a number, a unit or a column fails here. A deliberate change of output
regenerates them: `AMC_TUI_GOLDEN_UPDATE=1 .venv/bin/python -m pytest tests/test_golden_outputs.py`
and the diff of tests/golden/ goes in the same commit.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from pathlib import Path

import pytest
from runs_fixtures import make_fake_run, runs_workspace

from amc_tui.cli import main
from amc_tui.workspace import Workspace

GOLDEN = Path(__file__).resolve().parent / "golden"
ROOT = "/GOLDEN-WS"
# (name, id, state, seed, epochs); created_at follows the seed, so the order is fixed.
RUNS = (
    ("amber-otter-1", "aaaa0001", "completed", 1, 4),
    ("brisk-heron-2", "bbbb0002", "completed", 2, 6),
    ("calm-lynx-3", "cccc0003", "stopped", 3, 6),
    ("dusty-wren-4", "dddd0004", "failed", 4, 4),
    ("eager-mole-5", "eeee0005", "crashed", 5, 4),
    ("fuzzy-newt-6", "ffff0006", "queued", 6, 4),
)
COMMANDS = (
    ("ls.txt", ["ls"]),
    ("ls.json", ["ls", "--json"]),
    ("show-completed.txt", ["show", "brisk-heron-2"]),
    ("show-completed.json", ["show", "brisk-heron-2", "--json"]),
    ("show-failed.txt", ["show", "dusty-wren-4"]),
    ("show-failed.json", ["show", "dusty-wren-4", "--json"]),
    ("show-crashed.json", ["show", "eager-mole-5", "--json"]),
    ("compare.txt", ["compare", "amber-otter-1", "brisk-heron-2"]),
    ("compare.json", ["compare", "amber-otter-1", "brisk-heron-2", "--json"]),
)


@pytest.fixture
def golden_ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.setenv("AMC_TUI_NO_WORKER", "1")
    time.tzset()
    ws = runs_workspace(tmp_path)
    for name, run_id, state, seed, epochs in RUNS:
        make_fake_run(ws, name, run_id=run_id, state=state, seed=seed, epochs=epochs,
                      tags=["golden"], phase="Phase 1", notes=f"seed {seed}")  # fmt: skip
    yield ws
    monkeypatch.delenv("TZ")
    time.tzset()


def _run(ws: Workspace, argv: list[str]) -> str:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["--workspace", str(ws.root), *argv])
    return f"exit {rc}\n{out.getvalue()}{err.getvalue()}".replace(str(ws.root), ROOT)


def _check(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("AMC_TUI_GOLDEN_UPDATE") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"no golden file {path}; run with AMC_TUI_GOLDEN_UPDATE=1"
    assert text == path.read_text(), f"{name} differs from tests/golden/{name}"


@pytest.mark.parametrize(("name", "argv"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_cli_output_is_unchanged(golden_ws: Workspace, name: str, argv: list[str]) -> None:
    _check(name, _run(golden_ws, argv))


def test_runlog_entries_are_unchanged(golden_ws: Workspace) -> None:
    _run(golden_ws, ["runlog", "sync"])
    _check("RUNLOG.md", golden_ws.runlog.read_text().replace(str(golden_ws.root), ROOT))
