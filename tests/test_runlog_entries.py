"""RUNLOG.md: entries rendered from run files, markers, user text kept, locking."""

from __future__ import annotations

import json
import multiprocessing as mp
import re
import sys
from pathlib import Path

import pytest
from runs_fixtures import fake_config, make_fake_run, runs_workspace

from amc_tui.fsutil import atomic_write_json
from amc_tui.run.rundir import RunDir, read_status, write_status
from amc_tui.runlog.sync import entry_offsets, render_entry, runlog_path_for, sync_all, sync_entry


@pytest.fixture
def ws(tmp_path):
    return runs_workspace(tmp_path)


def test_entry_mirrors_the_seed(ws):
    run = make_fake_run(ws, "calm-sea-1", epochs=4, run_id="abcd1234", phase="Phase 2", notes="n1")
    text = render_entry(run.path)
    assert text.startswith("<!-- amc-tui:begin abcd1234 -->\n## calm-sea-1 (abcd1234)\n")
    assert text.endswith("<!-- amc-tui:end abcd1234 -->\n")
    for needle in (
        "**Status**: ✅ **COMPLETED** (started June",
        "epoch 4/4)",
        "11.20M parameters",
        "**Phase**: Phase 2",
        "**Notes**: n1",
        "Batch=32, LR=0.0001, Dropout=0.3",
        "Weight Decay=1e-05, Epochs=4",
        "**Resumed from**: none",
        "1,000 total (80%/10%/10% split",
        "4 modulations x 11 SNR levels (-10..10 dB) = 44 combinations",
        "### Training Trajectory",
        "| 4 ★ |",
        "### Final Metrics (Epoch 4)",
        "validation vs",
        "### Multi-Task Weighting",
        "(uncertainty: 2.300) ← **Underweighted**",
        "### Hardest Cells (test, final)",
        "(rule: `val-above-train`)",
        "(rule: `best-is-last`)",
        "(rule: `weight-share<40%`)",
        "(rule: `vs-best-earlier`)",
    ):
        assert needle in text, needle
    assert text.count("| ") > 10 and render_entry(run.path) == text


def test_running_and_crashed_entries(ws):
    run = make_fake_run(
        ws, "a-b-1", state="running", epochs=6, epoch=2, pid=__import__("os").getpid()
    )
    text = render_entry(run.path)
    assert (
        "🔄 **RUNNING**" in text
        and "epoch 2/6" in text
        and "Latest Metrics (Epoch 2, live)" in text
    )
    assert "ended" not in text.split("\n")[3]
    dead = make_fake_run(ws, "a-b-2", state="crashed", epochs=6)
    assert "💥 **CRASHED**" in render_entry(dead.path)


def test_sync_creates_appends_and_updates_in_place(ws):
    user_head = "# My notes\r\n\r\nHand-written \xe9 text\n\n".encode() + b"raw \xff byte\n"
    ws.runlog.write_bytes(user_head)
    r1 = make_fake_run(
        ws, "run-one-1", run_id="id000001", state="running", epoch=1, pid=__import__("os").getpid()
    )
    r2 = make_fake_run(ws, "run-two-2", run_id="id000002")
    assert sync_entry(r1.path, ws.runlog) is True
    assert sync_entry(r2.path, ws.runlog) is True
    assert sync_entry(r2.path, ws.runlog) is False  # current: nothing written
    ws.runlog.write_bytes(ws.runlog.read_bytes() + b"trailing user text\n")
    before = ws.runlog.read_bytes()
    write_status(RunDir(r1.path), state="completed", ended_at=1_750_000_999.0)
    assert sync_entry(r1.path, ws.runlog) is True
    after = ws.runlog.read_bytes()
    assert after.startswith(user_head) and after.endswith(b"trailing user text\n")
    text = after.decode("utf-8", "surrogateescape")
    offs = entry_offsets(text)
    assert list(offs) == ["id000001", "id000002"]
    a, b = offs["id000001"]
    assert "**COMPLETED**" in text[a:b] and text.count("amc-tui:begin id000001") == 1
    # everything outside the markers is byte-identical
    old = before.decode("utf-8", "surrogateescape")
    oa, ob = entry_offsets(old)["id000001"]
    assert old[:oa] == text[:a] and old[ob:] == text[b:]


def test_entry_offsets_orphan_begin(ws):
    text = "x\n<!-- amc-tui:begin aaa -->\nuser\n<!-- amc-tui:begin bbb -->\nB\n<!-- amc-tui:end bbb -->\ny"
    offs = entry_offsets(text)
    assert text[slice(*offs["aaa"])] == "<!-- amc-tui:begin aaa -->\n"
    assert text[slice(*offs["bbb"])].endswith("<!-- amc-tui:end bbb -->\n")


def test_sync_all_rebuilds_missing_and_stale_only(ws):
    runs = [make_fake_run(ws, f"r-x-{i}", seed=i, run_id=f"id{i:06d}") for i in range(3)]
    make_fake_run(ws, "never-started-9", state="queued", run_id="queued01")
    assert sync_all(ws) == ["id000000", "id000001", "id000002"]
    mtime = ws.runlog.stat().st_mtime_ns
    assert sync_all(ws) == [] and ws.runlog.stat().st_mtime_ns == mtime
    status = read_status(RunDir(runs[1].path))
    atomic_write_json(RunDir(runs[1].path).status, {**status, "state": "stopped"})
    text = ws.runlog.read_text()
    a, b = entry_offsets(text)["id000002"]
    ws.runlog.write_text(text[:a] + text[b:])  # entry deleted by hand
    assert sorted(sync_all(ws)) == ["id000001", "id000002"]
    assert "queued01" not in ws.runlog.read_text()
    assert "⏹️ **STOPPED**" in ws.runlog.read_text()


def test_runlog_path_from_meta_workspace(ws, tmp_path):
    run = make_fake_run(ws, "p-q-1")
    assert runlog_path_for(run.path) == ws.root / "RUNLOG.md"


def _sync_many(args):
    dirs, runlog = args
    for d in dirs:
        sync_entry(Path(d), Path(runlog))


def test_concurrent_writers_all_land(ws):
    runs = [make_fake_run(ws, f"c-c-{i}", seed=i, run_id=f"cc{i:06d}") for i in range(8)]
    ws.runlog.write_text("# head\n\nuser text\n")
    ctx = mp.get_context("fork" if sys.platform != "win32" else "spawn")
    with ctx.Pool(4) as pool:
        pool.map(
            _sync_many, [([str(r.path) for r in runs[i::4]], str(ws.runlog)) for i in range(4)]
        )
    text = ws.runlog.read_text()
    assert text.startswith("# head\n\nuser text\n")
    assert sorted(entry_offsets(text)) == [f"cc{i:06d}" for i in range(8)]
    for i in range(8):
        assert text.count(f"<!-- amc-tui:end cc{i:06d} -->") == 1


def test_grid_without_start_event_or_export_comes_from_the_snr_grid(ws):
    run = make_fake_run(ws, "no-start-1", state="stopped", epochs=4, exports=False)
    lines = run.events.read_text().splitlines(keepends=True)
    run.events.write_text("".join(ln for ln in lines if json.loads(ln)["kind"] != "start"))
    # an off-grid bound (hand-edited) selects only the levels the dataset has
    raw = run.config.read_text()
    assert "snr_min = -20" in raw and "snr_max = 30" in raw
    run.config.write_text(
        raw.replace("snr_min = -20", "snr_min = -25").replace("snr_max = 30", "snr_max = 10")
    )
    text = render_entry(run.path)
    assert "17 modulations x 16 SNR levels (-20..10 dB) = 272 combinations" in text


def test_snr_within_1_selected_reads_as_percent(ws):
    cfg = fake_config(train={"epochs": 4, "select_metric": "val.snr_within_1"})
    run = make_fake_run(ws, "within-1", epochs=4, config=cfg)
    status = read_status(run)
    best = {"metric": "val.snr_within_1", "value": 0.8608, "epoch": 4}
    atomic_write_json(run.status, {**status, "best": best})
    text = render_entry(run.path)
    assert "★ best epoch by `val.snr_within_1`: 4 (86.08%)" in text
    improving = [ln for ln in text.splitlines() if "rule: `best-is-last`" in ln]
    assert improving and re.search(r"best val\.snr_within_1 \(\d+\.\d\d%\)", improving[0])
