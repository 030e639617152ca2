"""The health rules (amc_tui/run/health.py) on hand-made epoch histories: each fires on what
it names, not before, and clears when the run recovers. The trainer's use of them is in
tests/test_health_runs.py (real runs)."""

from __future__ import annotations

import math

import pytest

from amc_tui.run import health
from amc_tui.run.health import Counts, Limits, Monitor


def ev(epoch: int, train_loss: float, val_loss: float, val_comb: float = 0.1) -> dict:
    return {
        "kind": "epoch",
        "epoch": epoch,
        "train": {"loss": train_loss, "acc_combined": val_comb},
        "val": {"loss": val_loss, "acc_combined": val_comb},
    }


def counts(n_per_class: int, k: int, right: int, k_snr: int = 4, right_snr: int | None = None):
    n = n_per_class * k
    snr_each = n // k_snr
    return Counts(
        n=n,
        correct={"mod": right, "snr": right_snr if right_snr is not None else n},
        per_class={"mod": [n_per_class] * k, "snr": [snr_each] * k_snr},
    )


def binom_tail(k: int, n: int, p: float) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))


@pytest.mark.parametrize(
    ("k", "n", "p"), [(5, 20, 0.25), (12, 20, 0.25), (0, 10, 0.1), (30, 40, 0.5)]
)
def test_binomial_tail_matches_the_sum(k: int, n: int, p: float) -> None:
    assert health.p_above_chance(k, n, p) == pytest.approx(binom_tail(k, n, p), rel=1e-9, abs=1e-12)


def test_chance_is_the_most_frequent_class_share_of_the_classes_present() -> None:
    balanced = Counts(40, {}, {"mod": [10, 10, 10, 10, 0, 0]})  # two classes not in the split
    assert balanced.chance("mod") == pytest.approx(0.25)
    skewed = Counts(40, {}, {"mod": [25, 5, 10]})
    assert skewed.chance("mod") == pytest.approx(25 / 40)
    assert Counts(0, {}, {"mod": [0, 0]}).chance("mod") is None


def test_learned_nothing_fires_at_chance_only_from_min_epochs() -> None:
    lim = Limits(min_epochs=3)
    hist = [ev(1, 5.0, 5.0), ev(2, 4.9, 5.0)]
    at_chance = counts(100, 17, right=100)  # 100 of 1,700 right = 1/17
    assert health.learned_nothing(hist, at_chance, lim) is None  # too early to judge
    hist.append(ev(3, 4.8, 5.0))
    msg, values = health.learned_nothing(hist, at_chance, lim)
    assert msg.startswith("learned nothing: val modulation 5.9 % vs chance 5.9 %")
    assert "after 3 epochs" in msg and "SNR" not in msg  # the SNR head is right every time
    assert values["mod"]["chance"] == pytest.approx(1 / 17) and values["mod"]["p"] > 0.4
    # clearly above chance: 10 % of 1,700 (p ~ 1e-11) is learning
    assert health.learned_nothing(hist, counts(100, 17, right=170), lim) is None


def test_learned_nothing_also_when_the_training_loss_does_not_fall() -> None:
    lim = Limits(min_epochs=2)
    learning = counts(100, 4, right=300)
    flat = [ev(1, 10.1, 10.1), ev(2, 10.1, 10.1)]
    msg, values = health.learned_nothing(flat, learning, lim)
    assert "training loss 10.1 not below epoch 1's 10.1" in msg
    assert values["train_loss"] == {"first": 10.1, "last": 10.1}
    assert health.learned_nothing([ev(1, 10.1, 10), ev(2, 9.0, 10)], learning, lim) is None


def test_diverged_on_an_exploding_or_non_finite_loss() -> None:
    lim = Limits(explode_factor=10)
    assert health.diverged([ev(1, 2.0, 2.0), ev(2, 19.0, 2.0)], lim) is None
    msg, values = health.diverged([ev(1, 2.0, 2.0), ev(2, 25.0, 2.0)], lim)
    assert "12x epoch 1's 2" in msg and values["ratio"] == pytest.approx(12.5)
    msg, values = health.diverged([ev(1, 2.0, 2.0), ev(2, math.inf, 2.0)], lim)
    assert msg.startswith("diverged: training loss inf") and values["train_loss"] == "inf"


def test_plateau_fires_after_patience_and_clears_on_a_new_best() -> None:
    mon = Monitor(Limits(patience=2, min_epochs=99, overfit_epochs=0), "val.acc_combined")
    assert mon.epoch_end(ev(1, 5, 5, 0.10)) == []
    assert mon.epoch_end(ev(2, 5, 5, 0.10)) == []  # equal is no gain, one epoch since
    fired = mon.epoch_end(ev(3, 5, 5, 0.09))
    assert [(f.rule, f.active) for f in fired] == [("plateau", True)]
    assert "no gain in val.acc_combined for 2 epochs (best 10.00% at epoch 1)" in fired[0].message
    assert mon.status()[0]["rule"] == "plateau"
    assert mon.epoch_end(ev(4, 5, 5, 0.08)) == []  # still on: no second event
    cleared = mon.epoch_end(ev(5, 5, 5, 0.2))
    assert [(f.rule, f.active) for f in cleared] == [("plateau", False)] and mon.status() == []


def test_overfitting_needs_a_growing_gap_and_a_worse_validation_loss() -> None:
    lim = Limits(overfit_epochs=3)
    growing = [ev(1, 2.0, 2.1), ev(2, 1.5, 1.9), ev(3, 1.2, 2.0), ev(4, 0.9, 2.1), ev(5, 0.6, 2.2)]
    msg, values = health.overfitting(growing, lim)
    assert "grew for 3 epochs" in msg and "its best 1.9 at epoch 2" in msg
    assert values["gap_to"] == pytest.approx(1.6)
    # the gap grows but validation still improves: learning faster on train is no overfitting
    improving = [ev(1, 2.0, 2.1), ev(2, 1.5, 1.9), ev(3, 1.2, 1.8), ev(4, 0.9, 1.7)]
    assert health.overfitting(improving, lim) is None
    assert health.overfitting(growing[:3], lim) is None  # too few epochs


def test_data_bound_only_over_a_whole_window_of_gpu_samples() -> None:
    """GPU busy samples cannot exist on this machine: the rule gets them as numbers."""
    lim = Limits(data_bound_util=50, data_bound_minutes=5)
    now = 10_000.0
    idle = [(now - 300 + 10 * i, 20.0) for i in range(31)]
    msg, values = health.data_bound(idle, now, lim)
    assert "GPU busy 20 % on average over 5 min (< 50 %)" in msg and values["samples"] == 31
    assert health.data_bound(idle[-6:], now, lim) is None  # one minute of samples: too early
    busy = [(t, 90.0) for t, _ in idle]
    assert health.data_bound(busy, now, lim) is None
    assert health.data_bound(idle, now, Limits(data_bound_minutes=0)) is None  # off


def test_a_restored_monitor_does_not_report_a_rule_again() -> None:
    lim = Limits(min_epochs=2)
    mon = Monitor(lim)
    dead = counts(50, 4, right=50)
    mon.epoch_end(ev(1, 5, 5), dead)
    (fired,) = mon.epoch_end(ev(2, 5, 5), dead)
    written = [ev(1, 5, 5), ev(2, 5, 5), {"kind": "health", "rule": fired.rule, "active": True,
                                          "epoch": 2, "message": fired.message}]  # fmt: skip
    again = Monitor(lim)
    again.restore(written, upto_epoch=2)
    assert [h["rule"] for h in again.status()] == ["learned-nothing"]
    assert again.epoch_end(ev(3, 5, 5), dead) == []  # still dead: said once already
    assert len(again.history) == 3


def test_readers_mark_and_order_severe_first() -> None:
    rows = [{"rule": "plateau", "epoch": 4, "message": "p"},
            {"rule": "learned-nothing", "epoch": 3, "message": "d"}, {"rule": "bogus"}, "x"]  # fmt: skip
    active = health.active_of(rows)
    assert [h["rule"] for h in active] == ["learned-nothing", "plateau"]
    assert health.mark(active) == "no-learn,plateau" and health.wasted(active)
    assert not health.wasted(active[1:]) and health.active_of(None) == []
