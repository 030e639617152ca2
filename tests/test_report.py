"""Plain-text formatting rules: percent vs number per metric, missing values, deltas, times,
tables, event lines and the live ETA."""

from __future__ import annotations

import math
import re
import time
from pathlib import Path

import numpy as np
import pytest

from amc_tui import contract, report


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.delenv("TZ")
    time.tzset()


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize("name", contract.METRICS)
@pytest.mark.parametrize("split", ["", "val.", "train."])
def test_percent_is_decided_by_the_contract_alone(name: str, split: str) -> None:
    shown = report.metric(split + name, 0.5)
    assert shown == ("50.00%" if contract.is_percent(name) else "0.5")


def test_snr_within_1_is_a_percent_and_snr_mae_a_number() -> None:
    assert report.metric("snr_within_1", 0.8608) == "86.08%"
    assert report.metric("val.snr_within_1", 0.8608, ".4f") == "86.08%"
    assert report.metric("val.snr_mae_db", 2.0) == "2"
    assert report.metric("val.snr_mae_db", 2.0, ".4f") == "2.0000"
    assert report.metric("val.loss", 1.30475) == "1.305"
    assert report.best({"metric": "val.snr_within_1", "value": 0.8608, "epoch": 3}) == "86.08% @3"
    assert report.best({"metric": "val.snr_mae_db", "value": 1.25, "epoch": 2}) == "1.25 @2"
    assert report.best({"metric": "val.acc_combined", "value": 0.4061}) == "40.61% @?"


@pytest.mark.parametrize("bad", [None, math.nan, math.inf, -math.inf, True, "0.5", [0.5]])
def test_no_finite_number_reads_as_the_missing_mark(bad: object) -> None:
    assert report.pct(bad) == "-"
    assert report.num(bad) == "-"
    assert report.metric("val.acc_mod", bad) == "-"
    assert report.metric("val.loss", bad) == "-"
    assert report.delta("val.acc_mod", bad) == "-"
    assert report.duration(bad) == "-"
    assert report.clock(bad) == "-"
    assert report.pct(bad, missing="–") == "–"
    assert report.metric("val.loss", bad, missing="?") == "?"
    assert report.utc_date(bad) == "?"


def test_pct_and_num_digits() -> None:
    assert report.pct(0.40614) == "40.61%"
    assert report.pct(0.639, 1) == "63.9%"
    assert report.pct(1) == "100.00%"
    assert report.num(1.30475) == "1.305"
    assert report.num(2.5e-4, ".2e") == "2.50e-04"
    assert report.num(1e-05, "g") == "1e-05"
    assert report.best(None) == "-" and report.best({}) == "-"


def test_each_surface_keeps_its_digits_through_one_formatter() -> None:
    """The CLI's 2 decimals, the app's 1, a RUNLOG statistic's bare 2, a figure's 0."""
    assert report.pct(0.40614, 1) == "40.6%"
    assert report.pct(0.40614, unit="") == "40.61"
    assert report.pct(0.4061, 0, unit="") == "41"
    assert report.metric("val.acc_combined", 0.40614, ".3f", digits=1) == "40.6%"
    assert report.metric("val.loss", 0.41234, ".3f", digits=1) == "0.412"
    assert report.delta("val.acc_combined", 0.0123, digits=1) == "+1.2pt"
    assert report.delta("val.loss", -0.5, "+.2f", digits=1) == "-0.50"
    assert report.num(1234.0, ".0f", "N/A", " MiB") == "1234 MiB"
    assert report.num(None, ".0f", "N/A", " MiB") == "N/A"
    assert report.pct(np.float64(0.5)) == "50.00%" and report.num(np.int64(3), ".0f") == "3"


def test_rates_ages_and_config_values() -> None:
    assert report.rate(780) == "780 samples/s"
    assert report.rate(12_345) == "12.3k samples/s"
    assert report.rate(None) == "-"
    assert report.ago(100.0, 112.5) == "12s ago"
    assert report.ago(120.0, 112.5) == "0s ago"  # a clock a little ahead
    assert report.ago(None, 1.0) == "-"
    assert [report.config_value(v) for v in (None, True, 1e-05, "", "adamw", 3)] == [
        "-", "true", "1e-05", '""', "adamw", "3"]  # fmt: skip


def test_deltas_are_signed_points_for_percents_and_signed_numbers_otherwise() -> None:
    assert report.delta("val.acc_mod", -0.0036) == "-0.36pt"
    assert report.delta("train.acc_snr", 0.005) == "+0.50pt"
    assert report.delta("val.acc_combined", 0.0) == "+0.00pt"
    assert report.delta("val.snr_within_1", -0.0036) == "-0.36pt"
    assert report.delta("val.loss", 0.0029) == "+0.0029"
    assert report.delta("val.snr_mae_db", -0.25) == "-0.2500"
    assert report.delta("val.snr_mae_db", -0.25, "+.2f") == "-0.25"


# --------------------------------------------------------------------------- times


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0s"), (59.9, "59s"), (60, "1m00s"), (389.4, "6m29s"), (3599, "59m59s"),
     (3600, "1h00m"), (7500, "2h05m"), (86399, "23h59m"), (90061, "1d01h"),
     (-5, "-")],
)  # fmt: skip
def test_durations(seconds: float, shown: str) -> None:
    assert report.duration(seconds) == shown


def test_clock_times_are_local_and_the_runlog_date_is_utc(utc, monkeypatch) -> None:
    t = 1_750_002_001.0  # 2025-06-15 15:40:01 UTC
    assert report.clock(t) == "2025-06-15 15:40"
    assert report.clock_s(t) == "15:40:01"
    assert report.clock_s(None) == "--:--:--"
    assert report.utc_date(t) == "June 15, 2025, 15:40:01 UTC"
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    assert report.clock(t) == "2025-06-15 21:10"
    assert report.utc_date(t) == "June 15, 2025, 15:40:01 UTC"


# --------------------------------------------------------------------------- tables


def test_table_pads_columns_and_trims_trailing_space() -> None:
    text = report.table([["a", "1"], ["long-name", ""]], ["NAME", "N"])
    assert text.split("\n") == ["NAME       N", "a          1", "long-name"]
    assert report.table([], ["NAME", "VALUE"]) == "NAME  VALUE"


def test_trajectory_table_marks_the_best_epoch() -> None:
    row = {"val_acc_combined": 0.4061, "val_acc_mod": 0.8184, "val_acc_snr": None,
           "val_loss": 1.305, "train_acc_combined": 0.3954, "train_loss": math.nan,
           "w_mod": 0.6389, "w_snr": 0.3611}  # fmt: skip
    lines = report.trajectory_table([{**row, "epoch": 1}, {**row, "epoch": 2}], 2).split("\n")
    assert lines[0].split() == ["EPOCH", "VAL", "COMB", "VAL", "MOD", "VAL", "SNR", "VAL",
                                "LOSS", "TRAIN", "COMB", "TRAIN", "LOSS", "W", "MOD", "W", "SNR"]  # fmt: skip
    assert lines[1].split() == [
        "1",
        "40.61%",
        "81.84%",
        "-",
        "1.305",
        "39.54%",
        "-",
        "63.89%",
        "36.11%",
    ]
    assert lines[2].startswith("2 *    40.61%")
    assert "*" not in report.trajectory_table([{**row, "epoch": 1}])


# --------------------------------------------------------------------------- event lines


def _epoch_event(**extra: object) -> dict:
    return {
        "kind": "epoch", "epoch": 2, "t": 0,
        "val": {"acc_combined": 0.4061, "acc_mod": 0.8184, "acc_snr": 0.6572, "loss": 1.30475},
        "train": {"acc_combined": 0.3954, "loss": 1.293},
        "epoch_time_s": 61.23, "samples_per_s": 812.4, **extra,
    }  # fmt: skip


def test_epoch_line() -> None:
    line = report.epoch_line(_epoch_event(weights={"mod": 0.619, "snr": 0.381}, is_best=True), 6)
    assert line == (
        "epoch 2/6  val comb 40.61% mod 81.84% snr 65.72% loss 1.305  | train comb 39.54% "
        "loss 1.293  | w mod/snr 61.9/38.1%  | 61.2 s, 812 samples/s  *best*"
    )
    bare = report.epoch_line({"kind": "epoch", "epoch": 1})
    assert bare.startswith("epoch 1/?  val comb - mod - snr - loss -")
    assert "w mod/snr" not in bare and "*best*" not in bare


def test_event_lines(utc) -> None:
    start = {"kind": "start", "t": 1_750_002_001.0, "name": "a-b-1", "device": "cpu",
             "n_train": 800, "n_val": 100, "n_test": 100, "classes": ["BPSK", "QPSK"],
             "snrs": [0, 2, 4], "params": 11_200_000, "resumed": True}  # fmt: skip
    assert report.event_line(start) == (
        "15:40:01 start a-b-1 on cpu: 800 train / 100 val / 100 test frames, "
        "2 classes x 3 SNRs, 11.20M parameters (resumed)"
    )
    end = {"kind": "end", "state": "completed", "exit_code": 0,
           "best": {"metric": "val.snr_within_1", "value": 0.9, "epoch": 4}}  # fmt: skip
    assert report.event_body(end) == "end: completed (exit 0), best 90.00% @4"
    assert report.event_line({"kind": "gpu", "util": 50}) == "--:--:-- gpu util=50"
    step = {"kind": "step", "epoch": 1, "step": 7, "batch": 7, "batches": 10, "loss": 2.0,
            "loss_mod": 1.0, "loss_snr": 1.0, "lr": 1e-4, "samples_per_s": 700.0}  # fmt: skip
    assert report.event_body(step) == (
        "epoch 1 step 7 batch 7/10  loss 2.000 (mod 1.000, snr 1.000)  lr 1.00e-04  700 samples/s"
    )


# --------------------------------------------------------------------------- live ETA


def _step(epoch: int, batch: int, batches: int = 10, sps: float | None = 320.0) -> dict:
    # 60 s epochs from t = 0: batch b of epoch e at (e - 1) * 60 + 6 * b
    return {"t": (epoch - 1) * 60.0 + 6.0 * batch, "kind": "step", "epoch": epoch,
            "step": (epoch - 1) * batches + batch, "batch": batch, "batches": batches,
            "loss": 1.0, "samples_per_s": sps}  # fmt: skip


def _clock(*events: dict) -> contract.EpochClock:
    clock = contract.EpochClock()
    for ev in events:
        clock.feed(ev)
    return clock


def _epoch(epoch: int, t: float, took: float = 60.0) -> dict:
    return {"t": t, "kind": "epoch", "epoch": epoch, "epoch_time_s": took}


def test_eta_counts_down_within_and_across_epochs() -> None:
    clock = _clock({"t": 0.0, "kind": "start", "resumed": False}, _epoch(0, 0.0))  # a 60 s epoch
    etas = []
    for e in (1, 2, 3):
        for b in (1, 5, 10):
            etas.append(report.step_eta(_step(e, b), 3, clock, batch_size=32))
        clock.feed(_epoch(e, e * 60.0))
    assert etas[0] == pytest.approx(174.0) and etas[1] == pytest.approx(150.0)
    assert etas[2] == pytest.approx(120.0) and etas[-1] == pytest.approx(0.0)
    assert all(a > b for a, b in zip(etas, etas[1:], strict=False))
    # what contract.eta_s says for the same point
    assert etas[4] == pytest.approx(contract.eta_s(3, 1, 60.0, 30.0))


def test_eta_before_the_first_epoch_uses_the_step_throughput() -> None:
    # 10 batches of 32 at 320 samples/s: a 1 s epoch
    assert report.step_eta(_step(1, 5), 3, None, batch_size=32) == pytest.approx(2.5)
    assert report.step_eta(_step(1, 5), 3, _clock(), batch_size=32) == pytest.approx(2.5)
    no_batches = {k: v for k, v in _step(1, 5).items() if k not in ("batch", "batches")}
    assert report.step_eta(no_batches, 3, None, 32, batches=10) == pytest.approx(3.0)
    assert report.step_eta(_step(1, 5, sps=None), 3, None, batch_size=32) is None
    assert report.step_eta(_step(1, 5), 3, None, batch_size=None) is None
    assert report.step_eta(_step(2, 5), None, _clock(_epoch(1, 60.0))) is None


# The case: 8 epochs of ~2 s; stopped in epoch 3 at batch 6 of 10, resumed an hour later.
# The resumed attempt's first epoch event times only its 4 batches (0.78 s): not an epoch.
RESUMED = (
    {"t": 100.0, "kind": "start", "resumed": False, "epoch": 0, "step": 0, "steps_per_epoch": 10},
    _epoch(1, 102.0, 2.0),
    _epoch(2, 104.0, 2.0),
    {
        "t": 4000.0,
        "kind": "start",
        "resumed": True,
        "epoch": 2,
        "step": 26,
        "batch": 6,
        "steps_per_epoch": 10,
    },  # fmt: skip
    _epoch(3, 4000.78, 0.78),
)


def test_a_partial_epoch_after_a_resume_is_not_an_epoch_time() -> None:
    clock = _clock(*RESUMED)
    assert clock.epoch_s == 2.0  # the latest full epoch's (epoch 2), not 0.78
    # 5 epochs left, 0.5 s into epoch 4: what full epochs say
    assert clock.eta_s(8, 3, 4001.28) == pytest.approx(contract.eta_s(8, 3, 2.0, 0.5))
    assert clock.eta_s(8, 3, 4001.28) == pytest.approx(9.5)
    # before that partial epoch ends: 60% of epoch 3 was done when it resumed, and the hour it
    # sat stopped does not count as progress
    at_resume = _clock(*RESUMED[:4])
    assert at_resume.eta_s(8, 2, 4000.0) == pytest.approx(6 * 2.0 - 0.6 * 2.0)
    assert at_resume.eta_s(8, 2, 4000.4) == pytest.approx(6 * 2.0 - 0.6 * 2.0 - 0.4)
    # the next epoch after it is a full one again
    later = _clock(*RESUMED, _epoch(4, 4002.9, 2.12))
    assert later.epoch_s == 2.12


def test_a_start_event_without_batch_says_its_position_by_step() -> None:
    old = {k: v for k, v in RESUMED[3].items() if k != "batch"}  # an older trainer's start
    assert contract.start_share(old) == pytest.approx(0.6)
    assert _clock(*RESUMED[:3], old, RESUMED[4]).epoch_s == 2.0
    at_boundary = {**old, "step": 20}  # resumed at an epoch's end: its next epoch is full
    assert contract.start_share(at_boundary) == 0.0
    assert _clock(*RESUMED[:3], at_boundary, _epoch(3, 4002.1, 2.1)).epoch_s == 2.1
    fresh = {"t": 0.0, "kind": "start", "resumed": False, "step": 26, "epoch": 2,
             "steps_per_epoch": 10}  # fmt: skip
    assert contract.start_share(fresh) == 0.0 and contract.start_share({"kind": "start"}) == 0.0


def test_step_eta_after_a_resume_uses_full_epochs() -> None:
    clock = _clock(*RESUMED)
    step = {"t": 4001.28, "kind": "step", "epoch": 4, "batch": 3, "batches": 10,
            "samples_per_s": 320.0}  # fmt: skip
    assert report.step_eta(step, 8, clock, batch_size=32) == pytest.approx(9.5)


def test_progress_line() -> None:
    line = report.progress_line(_step(2, 5), 3, 150.0)
    assert line == "epoch 2/3 batch 5/10  loss 1.000  320 samples/s  ETA 2m30s"
    no_batch = {"kind": "step", "epoch": 1, "step": 4}
    assert (
        report.progress_line(no_batch, "?", None) == "epoch 1/? step 4  loss -  - samples/s  ETA -"
    )


def test_no_substring_rule_decides_percent_anywhere() -> None:
    root = Path(report.__file__).parent
    rule = re.compile(r"""["'](acc|within)["'] in """)
    offenders = [
        f"{p.relative_to(root)}:{n}"
        for p in root.rglob("*.py")
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if rule.search(line)
    ]
    assert offenders == []
