"""Chart axes, smoothing and the Live model's x positions and training time, without a
terminal."""

from __future__ import annotations

import pytest

from amc_tui.tui.models import axes
from amc_tui.tui.models.live_model import LiveModel


def test_nice_axis_gives_round_ticks_that_fit() -> None:
    assert axes.nice_axis(0, 100, 5, clamp=(0, 100)) == (0, 100, [0, 25, 50, 75, 100])
    assert axes.nice_axis(0, 100, 3, clamp=(0, 100)) == (0, 100, [0, 50, 100])
    lo, hi, ticks = axes.nice_axis(12.3, 40.9, 4, clamp=(0, 100))
    assert lo <= 12.3 and hi >= 40.9 and len(ticks) <= 4 and ticks[0] == lo
    lo, hi, ticks = axes.nice_axis(1, 7, 20, integer=True)
    assert ticks == [1, 2, 3, 4, 5, 6, 7]
    assert all(float(t).is_integer() for t in axes.nice_axis(1, 3, 10, integer=True)[2])
    lo, hi, ticks = axes.nice_axis(2.31, 2.31, 4)  # one point: a range around it
    assert lo < 2.31 < hi and len(ticks) >= 2


def test_tick_labels_show_the_decimals_the_step_needs() -> None:
    assert [axes.tick_label(t, [0, 25, 50], True) for t in (0, 25, 50)] == ["0%", "25%", "50%"]
    assert axes.tick_label(0.25, [0, 0.25, 0.5]) == "0.25"
    assert axes.tick_label(2.5, [2.0, 2.5, 3.0]) == "2.5"
    assert [axes.tick_label(t, [5000, 10000]) for t in (5000, 10000)] == ["5k", "10k"]


def test_ema_is_debiased_and_zero_is_identity() -> None:
    assert axes.ema([1.0, 2.0, 3.0], 0.0) == [1.0, 2.0, 3.0]
    smooth = axes.ema([2.0, 2.0, 2.0], 0.9)
    assert smooth == [pytest.approx(2.0)] * 3  # no pull towards 0 at the start
    up = axes.ema([0.0, 1.0], 0.6)
    assert up[1] == pytest.approx((0.6 * 0.4 * 0 + 0.4 * 1) / (0.6 * 0.4 + 0.4))


def test_training_time_sums_attempts_and_skips_the_stopped_gap() -> None:
    m = LiveModel()
    m.feed([
        {"t": 100.0, "kind": "start", "n_val": 10},
        {"t": 160.0, "kind": "step", "epoch": 1, "step": 5, "batch": 5, "batches": 10,
         "loss": 2.0},
        {"t": 220.0, "kind": "epoch", "epoch": 1, "val": {"acc_combined": 0.3}},
        {"t": 250.0, "kind": "end", "state": "stopped"},
        {"t": 1000.0, "kind": "start", "resumed": True, "n_val": 10},
        {"t": 1030.0, "kind": "step", "epoch": 2, "step": 15, "batch": 5, "batches": 10,
         "loss": 1.5},
    ])  # fmt: skip
    v = m.view()
    assert v.closed_s == 150.0 and v.attempt_start == 1000.0
    assert m.train_s(now=1100.0) == 250.0
    assert m.train_s() == 180.0  # up to its last event
    assert v.step_epoch == [0.5, 1.5] and v.step_time == [60.0, 180.0]
    assert v.epoch_step == [10.0] and v.epoch_time == [120.0]
    # a start after a crash (no end event) closes the dead attempt at its last event
    m.feed([{"t": 5000.0, "kind": "start", "n_val": 10}])
    assert m.view().closed_s == 150.0 + 30.0
    # an attempt counts from its start event's started_at (the launcher's stamp, as status.json)
    m.feed([{"t": 6000.0, "kind": "end", "state": "stopped"},
            {"t": 7008.0, "kind": "start", "resumed": True, "started_at": 7000.0}])  # fmt: skip
    assert m.view().attempt_start == 7000.0 and m.train_s(now=7010.0) == 180.0 + 1000.0 + 10.0


def test_an_empty_validation_split_has_no_val_series() -> None:
    m = LiveModel()
    m.feed([
        {"t": 1.0, "kind": "start", "n_val": 0},
        {"t": 2.0, "kind": "epoch", "epoch": 1, "val": {"acc_combined": 0.0, "loss": 0.0},
         "train": {"loss": 1.2}, "weights": {"mod": 0.5, "snr": 0.5}},
    ])  # fmt: skip
    v = m.view()
    assert v.no_val and v.series["val_acc_combined"] == [None] and v.series["val_loss"] == [None]
    assert v.series["train_loss"] == [1.2] and v.series["w_mod"] == [0.5]
