"""The issue-2 acceptance path through the real CLI: synth a file, inspect it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def amc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "amc_tui.cli", *args],
        cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120,
    )  # fmt: skip


def test_synth_then_inspect_shows_442_cells_of_8(tmp_path: Path) -> None:
    out = amc("data", "synth", "x.h5", "--frames-per-cell", "8", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    out = amc("data", "inspect", "x.h5", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["frames"] == 17 * 26 * 8
    assert report["cells"] == 17 * 26
    assert set(report["classes"].values()) == {26 * 8} and len(report["classes"]) == 17
    assert set(report["snrs"].values()) == {17 * 8} and len(report["snrs"]) == 26
    assert report["layout"] == "contiguous" and report["problems"] == []


def test_synth_with_unknown_class_exits_2(tmp_path: Path) -> None:
    out = amc("data", "synth", "x.h5", "--classes", "QPSK,NOPE", cwd=tmp_path)
    assert out.returncode == 2 and "NOPE" in out.stderr
    assert not (tmp_path / "x.h5").exists()
