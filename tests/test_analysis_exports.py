"""analysis.py over hand-made exports: matrices, hardest cells, trajectory, findings, compare."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from runs_fixtures import epoch_event, make_fake_run, runs_workspace

from amc_tui.run import tables
from amc_tui.run.analysis import (
    best_row,
    cell_matrix,
    compare_runs,
    findings,
    list_exports,
    load_export,
    trajectory,
)
from amc_tui.run.rundir import read_run


@pytest.fixture
def ws(tmp_path):
    return runs_workspace(tmp_path)


def test_list_and_load_export(ws):
    run = make_fake_run(ws, "e-x-1", epochs=3)
    assert list_exports(run.path) == ["epoch_001", "epoch_002", "epoch_003", "final"]
    ex = load_export(run.final_export)
    assert ex.epoch == 3 and ex.summary["split"] == "test"
    assert list(ex.per_cell.columns)[:3] == ["modulation", "snr_db", "n"]
    assert ex.confusion_mod.shape == (4, 4) and list(ex.confusion_mod.index) == list(
        ex.confusion_mod.columns
    )
    assert len(ex.f1_snr) == 11
    assert list_exports(ws.root / "nothing") == []
    empty = load_export(ws.root / "nothing")
    assert empty.summary == {} and empty.per_cell.empty


def test_cell_matrix_orders_and_fills_gaps():
    df = pd.DataFrame(
        [
            ("QPSK", 10, 8, 0.5, 0.5, 0.25, 1.0),
            ("BPSK", -4, 8, 0.9, 0.8, 0.72, 0.5),
            ("BPSK", 10, 0, 0.0, 0.0, 0.0, 0.0),
        ],
        columns=["modulation", "snr_db", "n", "acc_mod", "acc_snr", "acc_combined", "snr_mae_db"],
    )
    mods, snrs, values, n = cell_matrix(df, "acc_combined")
    assert mods == ["BPSK", "QPSK"] and snrs == [-4, 10]
    assert values[0, 0] == 0.72 and math.isnan(values[1, 0]) and n[1, 0] == 0 and n[0, 1] == 0
    with pytest.raises(ValueError):
        cell_matrix(df, "nope")


def test_trajectory_dedupes_and_ignores_other_kinds():
    import random

    rng = random.Random(0)
    evs = [epoch_event(e, 3, rng, False) for e in (1, 2)]
    redo = epoch_event(2, 3, rng, True)
    redo["val"]["acc_combined"] = 0.99
    rows = trajectory([{"kind": "step", "epoch": 1}, *evs, redo, {"kind": "epoch"}])
    assert [r["epoch"] for r in rows] == [1, 2] and rows[1]["val_acc_combined"] == 0.99
    assert rows[0]["w_mod"] + rows[0]["w_snr"] == pytest.approx(1, abs=1e-3)
    assert best_row(rows, "val.acc_combined")["epoch"] == 2
    assert best_row(rows, "val.loss")["epoch"] == int(np.argmin([r["val_loss"] for r in rows])) + 1


def _row(epoch, val, train, w_snr=0.5):
    return {
        "epoch": epoch,
        "val_acc_combined": val,
        "train_acc_combined": train,
        "w_mod": 1 - w_snr,
        "w_snr": w_snr,
        "val_loss": 1.0,
        "train_loss": 1.0,
    }


def test_findings_rules():
    rules = lambda fs: {f.rule for f in fs}  # noqa: E731
    improving = [_row(1, 0.2, 0.19, 0.38), _row(2, 0.23, 0.22, 0.381)]
    fs = findings(
        improving, baseline={"metric": "val.acc_combined", "value": 0.21, "name": "old", "id": "x"}
    )
    assert rules(fs) == {"val-above-train", "best-is-last", "weight-share<40%", "vs-best-earlier"}
    text = " ".join(f.text for f in fs)
    assert "throughout" in text and "new best" in text and "38.1% weight share" in text
    overfit = [_row(1, 0.3, 0.3), _row(2, 0.25, 0.4)]
    fs = findings(
        overfit, baseline={"metric": "val.acc_combined", "value": 0.5, "name": "o", "id": "y"}
    )
    assert {"train-above-val", "plateau"} <= rules(fs) and "behind the best earlier run" in fs[
        -1
    ].text
    cfg = {"image": {"normalize": "max"}, "data": {"shuffle": False}}
    # a finding comes from what the run measured: a config choice alone asserts no outcome
    assert rules(findings([], config=cfg, restarts=1)) == {"no-shuffle", "restarted"}
    # a run the health rules call wasted gets its verdict first and no praise
    dead = [_row(1, 0.02, 0.02, 0.5), _row(2, 0.02, 0.02, 0.5), _row(3, 0.03, 0.02, 0.5)]
    verdict = {
        "rule": "learned-nothing",
        "epoch": 3,
        "message": "learned nothing: val modulation 25.0 % vs chance 25.0 % (p = 0.53)",
    }
    fs = findings(
        dead, baseline={"metric": "val.acc_combined", "value": 0.01, "name": "o", "id": "y"},
        health=[verdict], stop_reason="health: learned-nothing",
    )  # fmt: skip
    assert fs[0].rule == "learned-nothing" and fs[0].level == "bad"
    assert "p = 0.53" in fs[0].text and "stopped the run" in fs[0].text
    assert not rules(fs) & {"val-above-train", "best-is-last", "vs-best-earlier"}
    assert "vs-best-earlier" in rules(findings(dead, baseline=None))  # without the verdict


def test_compare_runs(ws):
    a = make_fake_run(ws, "cmp-a-1", seed=1, epochs=3)
    b = make_fake_run(ws, "cmp-b-2", seed=2, epochs=4, arch="swin_tiny")
    out = compare_runs(read_run(a.path), read_run(b.path))
    keys = {k for k, _, _ in out["config_diff"]}
    assert {"model.arch", "train.epochs"} <= keys and "name" not in keys
    row = next(r for r in out["metrics"] if r["metric"] == "val.acc_combined")
    assert row["final_delta"] == pytest.approx(row["final_b"] - row["final_a"])
    assert row["best_a"] is not None and row["best_delta"] is not None
    assert out["export"] == "final" and len(out["top_cells"]) == 5
    deltas = [abs(c["delta"]) for c in out["top_cells"]]
    assert deltas == sorted(deltas, reverse=True)


def _empty_cells(export_dir, mods=None) -> None:
    """Rewrite per_cell.csv as a trainer writes cells without frames: n = 0 and 0.0 values."""
    path = export_dir / "per_cell.csv"
    df = pd.read_csv(path)
    hit = df["modulation"].isin(mods) if mods else df["modulation"].notna()
    df.loc[hit, ["n", "acc_mod", "acc_snr", "acc_combined", "snr_mae_db"]] = 0
    df.to_csv(path, index=False)


def _no_val(run) -> None:
    """The run as a trainer leaves it with an empty validation split: start says n_val = 0,
    every val metric is 0 and every per-cell row has n = 0."""
    import json

    lines = [json.loads(x) for x in run.events.read_text().splitlines()]
    for ev in lines:
        if ev.get("kind") == "start":
            ev["n_val"] = 0
        if ev.get("kind") == "epoch":
            ev["val"] = {k: 0.0 for k in ev["val"]}
    run.events.write_text("".join(json.dumps(ev) + "\n" for ev in lines))
    for name in list_exports(run.path):
        if name != "final":
            _empty_cells(run.path / "export" / name)


def test_cells_without_frames_read_as_no_data(ws):
    from amc_tui.run.analysis import cell_deltas, read_per_cell

    run = make_fake_run(ws, "nd-x-1")
    _empty_cells(run.final_export, ["BPSK"])
    df = read_per_cell(run.final_export)
    empty = df[df["modulation"] == "BPSK"]
    assert len(empty) == 11 and (empty["n"] == 0).all()
    for m in ("acc_mod", "acc_snr", "acc_combined", "snr_mae_db"):
        assert empty[m].isna().all(), m
        assert df.loc[df["modulation"] != "BPSK", m].notna().all()
    mods, _, values, n = cell_matrix(df)
    row = mods.index("BPSK")
    assert np.isnan(values[row]).all() and (n[row] == 0).all()
    hard = tables.hardest(df, n=50, min_n=1)
    assert all(c.modulation != "BPSK" for c in hard.cells)
    assert tables.chance(df, "acc_mod") == 1 / 3  # BPSK has no frames: not a class here
    full = read_per_cell(make_fake_run(ws, "nd-y-2").final_export)
    grid = cell_deltas(full, df, n=100, grid=True)
    assert grid.b[grid.mods.index("BPSK")] == [None] * 11
    assert grid.delta[grid.mods.index("BPSK")] == [None] * 11
    assert all(c["modulation"] != "BPSK" for c in grid.top)


def test_snr_curve_weights_cells_by_frames_and_skips_empty_ones():
    from amc_tui.run.analysis import snr_curve

    rows = [
        ("QPSK", 0, 10, 0.5, 0.5, 0.5, 1.0),
        ("BPSK", 0, 30, 0.9, 0.9, 0.9, 0.0),
        ("BPSK", 10, 0, float("nan"), float("nan"), float("nan"), float("nan")),
        ("QPSK", 10, 4, 1.0, 1.0, 1.0, 0.0),
    ]
    cols = ["modulation", "snr_db", "n", "acc_mod", "acc_snr", "acc_combined", "snr_mae_db"]
    df = pd.DataFrame(rows, columns=cols)
    snrs, values = snr_curve(df, "acc_combined")
    assert snrs == [0, 10]
    assert values == [pytest.approx((5 + 27) / 40), pytest.approx(1.0)]
    assert snr_curve(df, "acc_combined", "BPSK") == ([0, 10], [pytest.approx(0.9), None])
    assert snr_curve(df, "snr_mae_db")[1][0] == pytest.approx(10 / 40)
    assert snr_curve(pd.DataFrame(columns=cols), "acc_combined") == ([], [])


def test_compare_against_a_run_without_validation_data(ws):
    import contextlib
    import io

    from amc_tui.cli import main

    a = make_fake_run(ws, "nv-a-1", seed=1, epochs=3)
    b = make_fake_run(ws, "nv-b-2", seed=2, epochs=3, state="stopped")
    _no_val(b)
    out = compare_runs(read_run(a.path), read_run(b.path))
    for row in out["metrics"]:
        if row["metric"].startswith("val."):
            assert row["final_b"] is None and row["final_delta"] is None, row
        else:
            assert row["final_b"] is not None, row
    assert out["top_cells"] == []
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        assert main(["--workspace", str(ws.root), "compare", "nv-a-1", "nv-b-2"]) == 0
    shown = text.getvalue()
    assert "0.00%" not in shown and "-100" not in shown and "+0.00pt" not in shown
    assert "no cells with data in both runs" in shown and "None" not in shown
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        assert main(["--workspace", str(ws.root), "show", "nv-b-2"]) == 0
    rows = [[c for c in ln.split() if c != "*"] for ln in text.getvalue().splitlines()
            if ln.split()[:1] == ["1"]]  # fmt: skip
    assert rows and rows[0][1:5] == ["-", "-", "-", "-"], rows  # val comb, mod, snr, loss
