"""Task losses and multi-task weighting.

Modulation: cross-entropy. SNR: cross-entropy plus `distance_weight` x the expected absolute
distance in bins under the softmax, so predicting 10 dB for a 12 dB frame costs less than
predicting -20 dB.

Weighting schemes (each an nn.Module whose state_dict carries its whole state, so a resumed
run continues with the same weights):
- "uncertainty" (Kendall, Gal, Cipolla 2018): learnable s_i = log sigma_i^2,
  total = sum_i exp(-s_i) L_i + s_i / 2. Reported sigma^2 = exp(s) and shares = normalised
  precisions (1/sigma_i^2) / sum_j (1/sigma_j^2).
- "fixed": the config's weights; "equal": 1 and 1;
- "dwa" (Liu et al. 2019, dynamic weight averaging): w_k = K exp(r_k/T) / sum_i exp(r_i/T),
  r_k = L_k(t-1) / L_k(t-2) over epoch-mean losses, T = 2; weights 1 for the first 2 epochs.
For the non-learned schemes the reported "uncertainty" is the equivalent sigma^2 = 1 / w_i,
so shares = (1/sigma^2) normalised holds for every scheme.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

TASKS = ("mod", "snr")


def mod_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.float(), target)


def snr_loss(logits: torch.Tensor, target: torch.Tensor, distance_weight: float) -> torch.Tensor:
    """Cross-entropy + distance_weight x E_softmax[|k - target|] (in bins)."""
    logits = logits.float()
    ce = F.cross_entropy(logits, target)
    if distance_weight == 0:
        return ce
    bins = torch.arange(logits.shape[1], device=logits.device, dtype=logits.dtype)
    dist = (bins[None, :] - target[:, None].to(logits.dtype)).abs()
    expected = (logits.softmax(dim=1) * dist).sum(dim=1).mean()
    return ce + distance_weight * expected


def shares_from_sigma2(sigma2: dict[str, float]) -> dict[str, float]:
    """Normalised precisions: w_i = (1/sigma_i^2) / sum_j (1/sigma_j^2)."""
    prec = {k: 1.0 / v for k, v in sigma2.items()}
    total = sum(prec.values())
    return {k: p / total for k, p in prec.items()}


class Weighting(nn.Module):
    """Combines the task losses; `weights()` gives the multipliers now in force."""

    name = "base"

    w: torch.Tensor  # the multipliers, a device buffer (no host sync per step)

    def combine(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        return sum(self.w[i].float() * losses[k] for i, k in enumerate(TASKS))  # type: ignore[return-value]

    def weights(self) -> dict[str, float]:
        return dict(zip(TASKS, self.w.detach().double().cpu().tolist(), strict=True))

    def sigma2(self) -> dict[str, float]:
        """sigma^2 per task (for non-learned schemes the equivalent 1 / w)."""
        return {k: 1.0 / max(float(v), 1e-12) for k, v in self.weights().items()}

    def shares(self) -> dict[str, float]:
        return shares_from_sigma2(self.sigma2())

    def end_epoch(self, mean_losses: dict[str, float]) -> None:
        """Called once per training epoch with the epoch-mean task losses."""


class UncertaintyWeighting(Weighting):
    name = "uncertainty"

    def __init__(self) -> None:
        super().__init__()
        self.log_var = nn.Parameter(torch.zeros(len(TASKS)))

    def combine(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        s = self.log_var.float()
        return sum(torch.exp(-s[i]) * losses[k] + 0.5 * s[i] for i, k in enumerate(TASKS))  # type: ignore[return-value]

    def weights(self) -> dict[str, float]:
        return {k: 1.0 / v for k, v in self.sigma2().items()}

    def sigma2(self) -> dict[str, float]:
        vals = torch.exp(self.log_var.detach().float()).cpu().tolist()
        return dict(zip(TASKS, vals, strict=True))


class FixedWeighting(Weighting):
    name = "fixed"

    def __init__(self, weights: dict[str, float]) -> None:
        super().__init__()
        self.register_buffer("w", torch.tensor([float(weights[k]) for k in TASKS]))


class DWAWeighting(Weighting):
    name = "dwa"

    def __init__(self, temperature: float = 2.0) -> None:
        super().__init__()
        self.temperature = temperature
        # epoch-mean losses of the last two epochs (row 0 = t-2, row 1 = t-1) and how many
        # epochs have been seen; buffers, so they travel in the state_dict.
        self.register_buffer("history", torch.zeros(2, len(TASKS), dtype=torch.float64))
        self.register_buffer("seen", torch.zeros((), dtype=torch.int64))
        self.register_buffer("w", torch.ones(len(TASKS), dtype=torch.float64))

    def end_epoch(self, mean_losses: dict[str, float]) -> None:
        new = torch.tensor([mean_losses[k] for k in TASKS], dtype=torch.float64).to(self.w.device)
        self.history[0] = self.history[1].clone()
        self.history[1] = new
        self.seen += 1
        if int(self.seen) >= 2:
            ratio = self.history[1] / self.history[0].clamp_min(1e-12)
            e = torch.exp(ratio / self.temperature)
            self.w.copy_(len(TASKS) * e / e.sum())


def make_weighting(scheme: str, weights: dict[str, float] | None = None) -> Weighting:
    if scheme == "uncertainty":
        return UncertaintyWeighting()
    if scheme == "fixed":
        return FixedWeighting(weights or {"mod": 1.0, "snr": 1.0})
    if scheme == "equal":
        w = FixedWeighting({"mod": 1.0, "snr": 1.0})
        w.name = "equal"
        return w
    if scheme == "dwa":
        return DWAWeighting()
    raise ValueError(f"unknown loss weighting {scheme!r}")
