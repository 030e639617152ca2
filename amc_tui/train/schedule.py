"""Learning-rate schedule: linear warmup, then cosine to zero, plateau reduction, or constant.

One small class instead of chained torch schedulers, so its whole state is three numbers in
the checkpoint and a resumed run continues on exactly the same curve. The factor applies to
every parameter group's base lr.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from amc_tui import contract
from amc_tui.config import TrainConfig

PLATEAU_FACTOR = 0.5
PLATEAU_PATIENCE = 3  # epochs without improvement of the select metric before halving


class Schedule:
    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        kind: str,
        total_steps: int,
        warmup_steps: int = 0,
        metric: str = TrainConfig.select_metric,
    ) -> None:
        if kind not in ("cosine", "plateau", "none"):
            raise ValueError(f"unknown scheduler {kind!r}")
        self.optimizer = optimizer
        self.kind = kind
        self.total = max(1, total_steps)
        self.warmup = max(0, warmup_steps)
        self.metric = metric  # the select metric: plateau uses the trainer's better-than rule
        self.base = [g["lr"] for g in optimizer.param_groups]
        self.t = 0  # optimizer steps taken
        self.plateau_scale = 1.0
        self.plateau_best: float | None = None
        self.plateau_bad = 0
        self._apply()

    def factor(self) -> float:
        f = 1.0
        if self.warmup and self.t < self.warmup:
            f = (self.t + 1) / self.warmup
        elif self.kind == "cosine":
            span = max(1, self.total - self.warmup)
            progress = min(1.0, (self.t - self.warmup) / span)
            f = 0.5 * (1.0 + math.cos(math.pi * progress))
        if self.kind == "plateau":
            f *= self.plateau_scale
        return f

    def lr(self) -> float:
        return self.base[0] * self.factor()

    def _apply(self) -> None:
        f = self.factor()
        for g, base in zip(self.optimizer.param_groups, self.base, strict=True):
            g["lr"] = base * f

    def step(self) -> None:
        """After each optimizer step."""
        self.t += 1
        self._apply()

    def end_epoch(self, value: float | None) -> None:
        """Plateau: halve the lr after PLATEAU_PATIENCE epochs without improvement."""
        if self.kind != "plateau" or not contract.is_number(value):
            return
        if contract.is_better(value, self.plateau_best, self.metric):
            self.plateau_best, self.plateau_bad = value, 0
        else:
            self.plateau_bad += 1
            if self.plateau_bad >= PLATEAU_PATIENCE:
                self.plateau_scale *= PLATEAU_FACTOR
                self.plateau_bad = 0
        self._apply()

    def state_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "t": self.t,
            "total": self.total,
            "warmup": self.warmup,
            "base": list(self.base),
            "plateau_scale": self.plateau_scale,
            "plateau_best": self.plateau_best,
            "plateau_bad": self.plateau_bad,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.t = int(state["t"])
        self.plateau_scale = float(state["plateau_scale"])
        self.plateau_best = state["plateau_best"]
        self.plateau_bad = int(state["plateau_bad"])
        self._apply()
