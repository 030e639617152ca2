"""What the trainer reports about an epoch and the final test pass, laid out in one place:
the epoch event (DESIGN section 4), the final export's fields, and their train.log lines.

Pure functions of the numbers, so the layout reads without the loop's control flow and the
key order of events.jsonl and summary.json stays where it is written.
"""

from __future__ import annotations

from typing import Any

from amc_tui.train.losses import Weighting


def rounded(d: dict[str, float], nd: int = 6) -> dict[str, float]:
    return {k: round(float(v), nd) for k, v in d.items()}


def weighting_fields(weighting: Weighting) -> dict[str, dict[str, float]]:
    """The task shares in force and their sigma^2 (the equivalent one for fixed schemes)."""
    return {"weights": rounded(weighting.shares()), "uncertainty": rounded(weighting.sigma2())}


def epoch_event(
    epoch_no: int, train: dict[str, float], val: dict[str, float], samples: int,
    train_s: float, lr: float, weighting: Weighting,
) -> dict[str, Any]:  # fmt: skip
    """The epoch event before the loop decides `is_best` and times the epoch's exports
    (`epoch_time_s`); samples/s counts training time only."""
    return {
        "epoch": epoch_no,
        "epoch_time_s": 0.0,
        "samples_per_s": round(samples / max(train_s, 1e-9), 2),
        "lr": lr,
        "train": rounded(train),
        "val": rounded(val),
        **weighting_fields(weighting),
        "is_best": False,
    }


def epoch_line(event: dict[str, Any], epochs: int) -> str:
    tr, v = event["train"], event["val"]
    return (
        f"epoch {event['epoch']}/{epochs}: train loss {tr['loss']:.4f} acc_mod "
        f"{tr['acc_mod']:.3f} | val loss {v['loss']:.4f} acc_mod {v['acc_mod']:.3f} acc_snr "
        f"{v['acc_snr']:.3f} acc_combined {v['acc_combined']:.3f} | "
        f"{event['samples_per_s']:.0f} samples/s, {event['epoch_time_s']:.1f} s"
        + (" *best*" if event["is_best"] else "")
    )


def final_fields(
    best_epoch: int, best: dict[str, Any] | None, test: dict[str, float], weighting: Weighting,
    epochs_trained: int, stopped_early: bool, best_epoch_summary: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """export/final's fields: the test metrics of the best weights, beside that epoch's train
    and val numbers (`best_epoch_summary`: its epoch event or its export's summary.json)."""
    return {
        "epoch": best_epoch,
        "best": best,
        "test": test,
        **weighting_fields(weighting),
        "epochs_trained": epochs_trained,
        "stopped_early": stopped_early,
        "train": best_epoch_summary.get("train"),
        "val": best_epoch_summary.get("val"),
    }


def final_line(best_epoch: int, test: dict[str, float]) -> str:
    return (
        f"final (test split, best epoch {best_epoch}): acc_mod {test['acc_mod']:.3f} "
        f"acc_snr {test['acc_snr']:.3f} acc_combined {test['acc_combined']:.3f}"
    )
