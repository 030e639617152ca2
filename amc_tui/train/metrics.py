"""Metrics of DESIGN section 4, accumulated on the device without a host sync per step.

`Accumulator.update` adds a batch's predictions to per-cell counters and two confusion
matrices that live on the training device; `.summary()` (at log points only) copies them to
the host once and derives every number from them, so the epoch event, per_cell.csv and the
confusion matrices agree by construction.

Per (modulation, SNR) cell the counters are: n, mod correct, SNR correct, both correct, sum of
|SNR error| in bins, SNR within one bin. The modulation confusion is also kept per true SNR
(`conf_mod_snr`), so a reader can say which modulations are confused at which SNR.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

CELL_FIELDS = ("n", "mod_ok", "snr_ok", "both_ok", "abs_err_bins", "within_1")
SNR_STEP_DB = 2.0


class Accumulator:
    """Counters for one split over one pass; `state()` / `load()` for mid-epoch resume."""

    def __init__(self, n_mod: int, n_snr: int, device: torch.device | str = "cpu") -> None:
        self.n_mod, self.n_snr = n_mod, n_snr
        self.device = torch.device(device)
        self.reset()

    def reset(self) -> None:
        d = self.device
        self.cells = torch.zeros(
            self.n_mod * self.n_snr, len(CELL_FIELDS), dtype=torch.float64, device=d
        )
        self.conf_mod = torch.zeros(self.n_mod * self.n_mod, dtype=torch.float64, device=d)
        self.conf_snr = torch.zeros(self.n_snr * self.n_snr, dtype=torch.float64, device=d)
        self.conf_mod_snr = torch.zeros(
            self.n_snr * self.n_mod * self.n_mod, dtype=torch.float64, device=d
        )
        self.loss_sum = torch.zeros(2, dtype=torch.float64, device=d)  # mod, snr (x batch size)

    @torch.no_grad()
    def update(
        self,
        mod_logits: torch.Tensor,
        snr_logits: torch.Tensor,
        mod: torch.Tensor,
        snr: torch.Tensor,
        loss_mod: torch.Tensor | None = None,
        loss_snr: torch.Tensor | None = None,
    ) -> None:
        pm = mod_logits.argmax(dim=1)
        ps = snr_logits.argmax(dim=1)
        mod_ok = pm == mod
        snr_ok = ps == snr
        err = (ps - snr).abs()
        vals = torch.stack(
            [torch.ones_like(err), mod_ok, snr_ok, mod_ok & snr_ok, err, err <= 1], dim=1
        ).to(torch.float64)
        self.cells.index_add_(0, mod * self.n_snr + snr, vals)
        ones = torch.ones_like(pm, dtype=torch.float64)
        self.conf_mod.index_add_(0, mod * self.n_mod + pm, ones)
        self.conf_snr.index_add_(0, snr * self.n_snr + ps, ones)
        self.conf_mod_snr.index_add_(0, (snr * self.n_mod + mod) * self.n_mod + pm, ones)
        if loss_mod is not None and loss_snr is not None:
            b = float(mod.shape[0])
            self.loss_sum += torch.stack([loss_mod.detach(), loss_snr.detach()]).double() * b

    def state(self) -> dict[str, torch.Tensor]:
        return {
            "cells": self.cells.cpu(),
            "conf_mod": self.conf_mod.cpu(),
            "conf_snr": self.conf_snr.cpu(),
            "conf_mod_snr": self.conf_mod_snr.cpu(),
            "loss_sum": self.loss_sum.cpu(),
        }

    def load(self, state: dict[str, torch.Tensor]) -> None:
        """A checkpoint written before `conf_mod_snr` existed leaves it at zero (only the
        training counters are resumed, and no export reads theirs)."""
        for key in ("cells", "conf_mod", "conf_snr", "conf_mod_snr", "loss_sum"):
            if key in state:
                getattr(self, key).copy_(state[key])

    def summary(self) -> Summary:
        """One host copy of everything (the only sync point)."""
        return Summary(
            cells=self.cells.cpu().numpy().reshape(self.n_mod, self.n_snr, len(CELL_FIELDS)),
            conf_mod=self.conf_mod.cpu().numpy().reshape(self.n_mod, self.n_mod).astype(np.int64),
            conf_snr=self.conf_snr.cpu().numpy().reshape(self.n_snr, self.n_snr).astype(np.int64),
            conf_mod_snr=self.conf_mod_snr.cpu()
            .numpy()
            .reshape(self.n_snr, self.n_mod, self.n_mod)
            .astype(np.int64),
            loss_sum=self.loss_sum.cpu().numpy(),
        )


def _ratio(a: float, b: float) -> float:
    return float(a) / float(b) if b else 0.0


def f1_scores(conf: np.ndarray) -> np.ndarray:
    """Per-class F1 from a confusion matrix (rows true, columns predicted); 0 where undefined."""
    tp = np.diag(conf).astype(np.float64)
    pred = conf.sum(axis=0).astype(np.float64)
    true = conf.sum(axis=1).astype(np.float64)
    denom = pred + true
    return np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)


@dataclass
class Summary:
    cells: np.ndarray  # (n_mod, n_snr, len(CELL_FIELDS))
    conf_mod: np.ndarray
    conf_snr: np.ndarray
    conf_mod_snr: np.ndarray  # (n_snr, n_mod true, n_mod predicted)
    loss_sum: np.ndarray  # (2,) sum over frames of the mod and snr losses

    @property
    def n(self) -> int:
        return int(self.cells[..., 0].sum())

    def metrics(self) -> dict[str, float]:
        """{loss, acc_mod, acc_snr, acc_combined, snr_mae_db, snr_within_1, loss_mod,
        loss_snr}; loss = loss_mod + loss_snr (unweighted, comparable across schemes)."""
        tot = self.cells.sum(axis=(0, 1))
        n = tot[0]
        loss_mod = _ratio(self.loss_sum[0], n)
        loss_snr = _ratio(self.loss_sum[1], n)
        return {
            "loss": loss_mod + loss_snr,
            "acc_mod": _ratio(tot[1], n),
            "acc_snr": _ratio(tot[2], n),
            "acc_combined": _ratio(tot[3], n),
            "snr_mae_db": _ratio(tot[4], n) * SNR_STEP_DB,
            "snr_within_1": _ratio(tot[5], n),
            "loss_mod": loss_mod,
            "loss_snr": loss_snr,
        }

    def per_cell(self, classes: list[str], snrs: list[int]) -> list[dict[str, object]]:
        """Rows for per_cell.csv in DESIGN order (0 where a cell is empty)."""
        rows = []
        for i, name in enumerate(classes):
            for j, snr in enumerate(snrs):
                n, mod_ok, snr_ok, both_ok, err, _ = self.cells[i, j]
                rows.append(
                    {
                        "modulation": name,
                        "snr_db": int(snr),
                        "n": int(n),
                        "acc_mod": _ratio(mod_ok, n),
                        "acc_snr": _ratio(snr_ok, n),
                        "acc_combined": _ratio(both_ok, n),
                        "snr_mae_db": _ratio(err, n) * SNR_STEP_DB,
                    }
                )
        return rows
