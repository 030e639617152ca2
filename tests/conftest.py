"""Shared pytest set-up: every test gets its own workspace; nothing leaks from the user's.

Under pytest-xdist (`-n`, `--dist loadgroup`, set in pyproject.toml) the files whose tests
share a module or session fixture (a trained run, a finished sweep, a served app) run as one
unit on one worker, so the fixture is built once; every other test is its own unit. The units
start slowest first, so that the workers end at about the same time.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Units of files run on one worker: their tests share a module or session fixture (or rely
# on their order); files named together share a cached fixture (train_fixtures).
GROUPS = (
    ("test_train_run.py", "test_train_durability.py"),
    ("test_sweep_e2e.py",),
    ("test_health_runs.py",),
    ("test_launcher_real_trainer.py",),
    ("test_tui_analysis.py",),
    ("test_tui_snapshots.py",),
    ("test_train_ownership.py",),
    ("test_serve.py",),
    ("test_tui_views.py",),
    ("test_data_source.py",),
    ("test_data_radioml.py",),
)
# Start order, slowest units and tests first; the other files follow in their own order.
FIRST = (
    "test_train_run.py", "test_train_durability.py", "test_sweep_e2e.py", "test_health_runs.py",
    "test_bench_suite.py",
    "test_ddp.py", "test_launcher_real_trainer.py", "test_tui_analysis.py", "test_tui_trainer.py",
    "test_launcher_faults.py", "test_tui_snapshots.py", "test_train_ownership.py",
    "test_tui_runs.py", "test_tui_new_run.py", "test_cli_runs.py", "test_launcher_queue.py",
    "test_cli_faults.py", "test_groups.py",
)  # fmt: skip


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
    # Subprocesses inherit these: two workers and their trainers share two cores, so one
    # OpenMP thread each (a trainer picks its own count), and waiting threads sleep.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # The suite starts ~300 Python processes (trainers, CLIs, workers); with bytecode
    # writing off (PYTHONDONTWRITEBYTECODE, set on some machines) each one compiles every
    # amc_tui module it imports again: ~0.15 s per CLI call, ~1 s per trainer. The caches
    # land in __pycache__ folders, which git ignores.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.dont_write_bytecode = False


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Group and order the tests as the module docstring says (a stable sort: the order
    inside a file is kept)."""
    group = {name: files[0].removesuffix(".py") for files in GROUPS for name in files}
    rank = {name: i for i, name in enumerate(FIRST)}
    for item in items:
        if item.path.name in group:
            item.add_marker(pytest.mark.xdist_group(group[item.path.name]))
    items.sort(key=lambda item: rank.get(item.path.name, len(FIRST)))
