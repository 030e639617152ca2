"""Atomic replace and append-only lines: the primitives every writer shares."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

from amc_tui.fsutil import append_line, atomic_write_json, atomic_write_text, read_json


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "status.json"
    atomic_write_json(target, {"state": "running"})
    atomic_write_json(target, {"state": "completed"})
    assert read_json(target) == {"state": "completed"}
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]


def test_new_files_are_world_readable_and_modes_are_kept(tmp_path: Path) -> None:
    new = tmp_path / "new.txt"
    atomic_write_text(new, "a")
    assert new.stat().st_mode & 0o777 == 0o644
    kept = tmp_path / "RUNLOG.md"
    kept.write_text("x")
    kept.chmod(0o664)
    atomic_write_text(kept, "y")
    assert kept.stat().st_mode & 0o777 == 0o664 and kept.read_text() == "y"


def test_read_json_tolerates_missing_and_torn_files(tmp_path: Path) -> None:
    assert read_json(tmp_path / "nope.json") is None
    (tmp_path / "torn.json").write_text('{"state": "runn')
    assert read_json(tmp_path / "torn.json") is None


def _appender(path: str, tag: int) -> None:
    for i in range(200):
        append_line(path, json.dumps({"tag": tag, "i": i, "pad": "x" * 300}))


def test_concurrent_appenders_never_interleave_within_a_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    procs = [
        mp.get_context("fork").Process(target=_appender, args=(str(path), k)) for k in range(4)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    lines = path.read_text().splitlines()
    assert len(lines) == 800
    assert sorted((d["tag"], d["i"]) for d in map(json.loads, lines)) == [
        (k, i) for k in range(4) for i in range(200)
    ]
