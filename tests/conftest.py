"""Shared pytest set-up: every test gets its own workspace; nothing leaks from the user's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AMC_TUI_WORKSPACE", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """An empty workspace folder with configs/, runs/ and data/."""
    for sub in ("configs", "runs", "data"):
        (tmp_path / sub).mkdir()
    return tmp_path


def pytest_configure(config: pytest.Config) -> None:
    # Trainer subprocesses inherit this: two cores are shared by everything in the suite.
    os.environ.setdefault("OMP_NUM_THREADS", "2")
