"""Task losses, multi-task weighting schemes and the LR schedule."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from amc_tui.train.losses import (
    DWAWeighting,
    UncertaintyWeighting,
    make_weighting,
    mod_loss,
    shares_from_sigma2,
    snr_loss,
)
from amc_tui.train.schedule import Schedule

torch.set_num_threads(1)


def test_seed_shares_from_sigma2() -> None:
    """The seed's RUNLOG: sigma^2 = 1.510 / 2.456 -> 61.9 % / 38.1 %."""
    shares = shares_from_sigma2({"mod": 1.510, "snr": 2.456})
    assert round(100 * shares["mod"], 1) == 61.9
    assert round(100 * shares["snr"], 1) == 38.1
    assert math.isclose(sum(shares.values()), 1.0)


def test_uncertainty_weighting_reports_sigma2_and_shares() -> None:
    w = UncertaintyWeighting()
    with torch.no_grad():
        w.log_var.copy_(torch.log(torch.tensor([1.510, 2.456])))
    sigma2 = w.sigma2()
    assert math.isclose(sigma2["mod"], 1.510, rel_tol=1e-6)
    assert math.isclose(sigma2["snr"], 2.456, rel_tol=1e-6)
    assert round(100 * w.shares()["mod"], 1) == 61.9


def test_uncertainty_objective_and_its_optimum() -> None:
    """total = sum exp(-s) L + s/2; for a fixed L the optimum is exp(-s) = 1/(2L)."""
    w = UncertaintyWeighting()
    lm, ls = torch.tensor(0.5), torch.tensor(2.0)
    s = torch.tensor([0.3, -0.2])
    with torch.no_grad():
        w.log_var.copy_(s)
    expected = math.exp(-0.3) * 0.5 + 0.15 + math.exp(0.2) * 2.0 - 0.1
    assert math.isclose(float(w.combine({"mod": lm, "snr": ls}).detach()), expected, rel_tol=1e-6)
    opt = torch.optim.SGD(w.parameters(), lr=0.1)
    for _ in range(2000):
        opt.zero_grad()
        w.combine({"mod": lm, "snr": ls}).backward()
        opt.step()
    prec = {k: 1 / v for k, v in w.sigma2().items()}
    assert math.isclose(prec["mod"], 1 / (2 * 0.5), rel_tol=1e-3)
    assert math.isclose(prec["snr"], 1 / (2 * 2.0), rel_tol=1e-3)
    assert w.shares()["snr"] < 0.5  # the larger loss gets the smaller share


def test_fixed_equal_and_state() -> None:
    fixed = make_weighting("fixed", {"mod": 3.0, "snr": 1.0})
    assert fixed.shares() == pytest.approx({"mod": 0.75, "snr": 0.25})
    assert fixed.sigma2() == pytest.approx({"mod": 1 / 3, "snr": 1.0})
    out = fixed.combine({"mod": torch.tensor(2.0), "snr": torch.tensor(5.0)})
    assert float(out) == pytest.approx(11.0)
    equal = make_weighting("equal")
    assert equal.shares() == pytest.approx({"mod": 0.5, "snr": 0.5})
    with pytest.raises(ValueError):
        make_weighting("gradnorm")


def test_dwa_weights_follow_loss_ratios_and_resume() -> None:
    w = DWAWeighting()
    assert w.weights() == pytest.approx({"mod": 1.0, "snr": 1.0})
    w.end_epoch({"mod": 1.0, "snr": 2.0})
    assert w.weights() == pytest.approx({"mod": 1.0, "snr": 1.0})  # first two epochs: 1, 1
    w.end_epoch({"mod": 0.5, "snr": 2.0})  # mod halves, snr flat -> snr gets more weight
    r = torch.tensor([0.5, 1.0])
    e = torch.exp(r / 2)
    expected = (2 * e / e.sum()).tolist()
    assert [w.weights()["mod"], w.weights()["snr"]] == pytest.approx(expected)
    assert sum(w.weights().values()) == pytest.approx(2.0)
    clone = DWAWeighting()
    clone.load_state_dict(w.state_dict())
    clone.end_epoch({"mod": 0.4, "snr": 1.0})
    w.end_epoch({"mod": 0.4, "snr": 1.0})
    assert clone.weights() == pytest.approx(w.weights())


def test_snr_loss_adds_expected_bin_distance() -> None:
    logits = torch.tensor([[2.0, 0.0, 0.0, -1.0]])
    target = torch.tensor([1])
    p = logits.softmax(1)[0]
    expected_dist = float(p[0] * 1 + p[2] * 1 + p[3] * 2)
    ce = float(F.cross_entropy(logits, target))
    assert float(snr_loss(logits, target, 0.0)) == pytest.approx(ce)
    assert float(snr_loss(logits, target, 0.5)) == pytest.approx(ce + 0.5 * expected_dist)
    # a near miss costs less than a far miss at equal confidence
    near = torch.tensor([[0.0, 0.0, 5.0, 0.0]])
    far = torch.tensor([[0.0, 0.0, 0.0, 5.0]])
    assert float(snr_loss(near, target, 0.5)) < float(snr_loss(far, target, 0.5))
    assert float(mod_loss(logits, target)) == pytest.approx(ce)


def _opt() -> torch.optim.Optimizer:
    return torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)


def test_schedule_warmup_cosine_and_resume() -> None:
    opt = _opt()
    s = Schedule(opt, "cosine", total_steps=100, warmup_steps=10)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        s.step()
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[10] == pytest.approx(1.0) and lrs[55] == pytest.approx(0.5, abs=0.02)
    assert lrs[-1] < 0.01
    opt2 = _opt()
    s2 = Schedule(opt2, "cosine", total_steps=100, warmup_steps=10)
    s2.load_state_dict(s.state_dict())
    assert opt2.param_groups[0]["lr"] == pytest.approx(opt.param_groups[0]["lr"])


def test_schedule_plateau_and_none() -> None:
    opt = _opt()
    s = Schedule(opt, "plateau", total_steps=10, metric="val.acc_combined")
    for v in (0.5, 0.6, 0.6, 0.6, 0.6):
        s.end_epoch(v)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5)
    # a lower-is-better select metric: a falling loss is improvement; NaN is never better
    opt = _opt()
    s = Schedule(opt, "plateau", total_steps=10, metric="val.loss")
    for v in (0.5, 0.4, 0.3, float("nan"), 0.2, 0.1):
        s.end_epoch(v)
    assert opt.param_groups[0]["lr"] == 1.0
    for v in (0.2, 0.2, 0.2):
        s.end_epoch(v)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5)
    opt = _opt()
    s = Schedule(opt, "none", total_steps=10)
    for _ in range(10):
        s.step()
    assert opt.param_groups[0]["lr"] == 1.0
