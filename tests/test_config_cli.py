"""`amc-tui config check` as a real subprocess: exit 0 + resolved config, or exit 2 + one line."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def amc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "amc_tui.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def test_check_prints_the_resolved_config(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text('[train]\nepochs = 3\n[model]\narch = "resnet18"\n')
    out = amc("config", "check", "c.toml", "--set", "train.lr=0.01", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    resolved = tomllib.loads(out.stdout)
    assert resolved["train"]["epochs"] == 3 and resolved["train"]["lr"] == 0.01
    assert resolved["image"]["size"] == 224  # defaults filled


def test_check_json(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text("[data]\nsnr_min = 0\n")
    out = amc("config", "check", "c.toml", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["data"]["snr_min"] == 0


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[train]\nlr_rate = 1\n", "did you mean 'lr'?"),
        ("[train\n", "c.toml:1:"),
        ("[image]\nchannels = 0\n", "channels must be in 1..3"),
    ],
)
def test_check_rejects_with_exit_2_and_one_line(tmp_path: Path, text: str, needle: str) -> None:
    (tmp_path / "c.toml").write_text(text)
    out = amc("config", "check", "c.toml", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], out.stderr


def test_missing_config_file(tmp_path: Path) -> None:
    out = amc("config", "check", "nope.toml", cwd=tmp_path)
    assert out.returncode == 2 and "config file not found" in out.stderr


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "configs").glob("*.toml")))
def test_shipped_configs_are_valid(name: str) -> None:
    out = amc("config", "check", str(REPO / "configs" / name), cwd=REPO)
    assert out.returncode == 0, out.stderr
