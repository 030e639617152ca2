"""The command line's shape: `--workspace` goes before or after the command, and a command's
module is loaded only when that command runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from amc_tui.cli import main
from amc_tui.cli.parser import build_parser


def listed(capsys: pytest.CaptureFixture[str], argv: list[str]) -> list[str]:
    assert main(argv) == 0
    return [row["name"] for row in json.loads(capsys.readouterr().out)]


def test_workspace_before_or_after_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    (a / "runs" / "only-in-a").mkdir(parents=True)
    (b / "runs" / "only-in-b").mkdir(parents=True)
    assert listed(capsys, ["-w", str(a), "ls", "--all", "--json"]) == ["only-in-a"]
    assert listed(capsys, ["ls", "--all", "--json", "-w", str(b)]) == ["only-in-b"]
    assert listed(capsys, ["ls", "--workspace", str(b), "--all", "--json"]) == ["only-in-b"]
    # given on both sides, the one after the command wins; given before only, it is kept
    assert listed(capsys, ["-w", str(a), "ls", "-w", str(b), "--all", "--json"]) == ["only-in-b"]


def test_every_command_takes_workspace() -> None:
    parser = build_parser()
    argv = [["ls"], ["gpus"], ["show", "x"], ["group", "show", "g"], ["runlog", "sync"],
            ["config", "check", "f.toml"], ["serve"], ["plot", "r", "--out", "o"]]  # fmt: skip
    for args in argv:
        assert parser.parse_args([*args, "-w", "/ws"]).workspace == "/ws", args


def test_ls_loads_neither_the_app_nor_what_creating_a_run_needs(tmp_path: Path) -> None:
    heavy = ("textual", "pandas", "numpy", "h5py", "matplotlib", "amc_tui.launch.create")
    probe = (
        "import sys\nfrom amc_tui.cli import main\nmain(['ls'])\n"
        f"print('LOADED:' + ','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert "no runs in" in out.stdout  # it did list
    assert "LOADED:\n" in out.stdout, out.stdout
