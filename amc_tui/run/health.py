"""Run health: rules over a run's epochs that name a wasted or wasting run while it trains.

The trainer (rank 0) feeds a `Monitor` each epoch event with the validation split's counts
and the GPU's busy samples; what changes (a rule fires or clears) becomes a `health` event
and status.json's `health` list (docs/ARCHITECTURE.md section 5), so the verdict holds under
the queue, Slurm and DDP alike and every reader shows the same words. Pure: no torch, no
files; scipy's binomial tail is imported where the test runs (only the trainer runs it).

The rules, each with its `[health]` thresholds (config.HealthConfig):
- learned-nothing: from `min_epochs` on, validation accuracy of either head not above chance
  (one-sided binomial test at `alpha`, chance = the split's most frequent class share), or the
  training loss not below its first epoch's;
- diverged: an epoch's training loss NaN/inf or above `explode_factor` x the first epoch's;
- plateau: `patience` epochs without a better select metric;
- overfitting: the val-minus-train loss gap grew in each of the last `overfit_epochs` epochs
  while the validation loss is above its best;
- data-bound: the GPU busy under `data_bound_util` % on average over `data_bound_minutes`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from amc_tui import contract, report
from amc_tui.config import HealthConfig as Limits  # the [health] thresholds
from amc_tui.contract import HEALTH_RULES, SEVERE_HEALTH

HEADS = {"mod": "modulation", "snr": "SNR"}
# short words for a table cell (ls, the app's Runs row, sweep lines)
SHORT = {
    "learned-nothing": "no-learn",
    "diverged": "diverged",
    "plateau": "plateau",
    "overfitting": "overfit",
    "data-bound": "data-bound",
}


@dataclass(frozen=True)
class Counts:
    """A split's frames per class and the frames each head got right (summed over ranks)."""

    n: int
    correct: dict[str, int]  # head -> frames right
    per_class: dict[str, list[int]]  # head -> frames of each class

    def chance(self, head: str) -> float | None:
        """The accuracy of always answering the split's most frequent class: 1/K for a
        balanced split of K classes (classes absent from the split do not count)."""
        counts = [c for c in self.per_class.get(head, []) if c > 0]
        return max(counts) / sum(counts) if counts else None


@dataclass(frozen=True)
class Finding:
    """A rule's verdict: it fired (`active`) or cleared, at which epoch, with its numbers."""

    rule: str
    active: bool
    epoch: int
    message: str
    values: dict[str, Any] = field(default_factory=dict)
    step: int | None = None

    @property
    def severe(self) -> bool:
        return self.rule in SEVERE_HEALTH


def p_above_chance(k: int, n: int, p0: float) -> float:
    """One-sided binomial p-value of k or more right out of n when each is right with
    probability p0: small = above chance."""
    if n <= 0:
        return 1.0
    if k <= 0:
        return 1.0
    if p0 <= 0:
        return 0.0
    if p0 >= 1:
        return 1.0
    from scipy.stats import binom  # heavy (~0.3 s); only the trainer runs the test

    return float(binom.sf(k - 1, n, p0))


# --------------------------------------------------------------------------- the rules
# Each takes the epoch events so far (oldest first, the newest last) and returns the values
# of a firing rule with its message, or None.


def _loss(ev: dict[str, Any], split: str) -> float | None:
    v = (ev.get(split) or {}).get("loss")
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def learned_nothing(
    history: Sequence[dict[str, Any]], counts: Counts | None, lim: Limits
) -> tuple[str, dict[str, Any]] | None:
    if len(history) < lim.min_epochs:
        return None
    parts, values = [], {}
    if counts is not None and counts.n > 0:
        for head, word in HEADS.items():
            chance = counts.chance(head)
            if chance is None:
                continue
            k = counts.correct.get(head, 0)
            p = p_above_chance(k, counts.n, chance)
            values[head] = {"acc": k / counts.n, "chance": chance, "p": p, "n": counts.n}
            if p > lim.alpha:
                parts.append(
                    f"val {word} {report.pct(k / counts.n, 1, unit=' %')} vs chance "
                    f"{report.pct(chance, 1, unit=' %')} (p = {p:.2g})"
                )
    first, last = _loss(history[0], "train"), _loss(history[-1], "train")
    if first is not None and last is not None and math.isfinite(last) and last >= first:
        values["train_loss"] = {"first": first, "last": last}
        parts.append(
            f"training loss {report.num(last, '.4g')} not below epoch "
            f"{history[0].get('epoch', 1)}'s {report.num(first, '.4g')}"
        )
    if not parts:
        return None
    n_ep = len(history)
    return f"learned nothing: {'; '.join(parts)} after {n_ep} epochs", values


def diverged(history: Sequence[dict[str, Any]], lim: Limits) -> tuple[str, dict[str, Any]] | None:
    first, last = _loss(history[0], "train"), _loss(history[-1], "train")
    if last is None:
        return None
    if not math.isfinite(last):
        return f"diverged: training loss {last} at epoch {history[-1].get('epoch')}", {
            "train_loss": str(last)  # JSON has no NaN
        }
    if first is None or first <= 0 or len(history) < 2:
        return None
    ratio = last / first
    if ratio > lim.explode_factor:
        return (
            f"diverged: training loss {report.num(last, '.4g')} is {ratio:.0f}x epoch "
            f"{history[0].get('epoch', 1)}'s {report.num(first, '.4g')} (> {lim.explode_factor:g}x)",
            {"train_loss": last, "first": first, "ratio": ratio},
        )
    return None


def plateau(
    history: Sequence[dict[str, Any]], lim: Limits, select: str
) -> tuple[str, dict[str, Any]] | None:
    if lim.patience <= 0 or not history:
        return None
    best_at, best = None, None
    for ev in history:
        v = contract.metric_value(ev, select)
        if contract.is_better(v, best, select):
            best_at, best = ev.get("epoch"), v
    if best_at is None:
        return None
    since = int(history[-1].get("epoch", 0)) - int(best_at)
    if since < lim.patience:
        return None
    return (
        f"plateau: no gain in {select} for {since} epochs (best "
        f"{report.metric(select, best)} at epoch {best_at})",
        {"since": since, "best": best, "best_epoch": best_at},
    )


def overfitting(
    history: Sequence[dict[str, Any]], lim: Limits
) -> tuple[str, dict[str, Any]] | None:
    n = lim.overfit_epochs
    if n <= 0 or len(history) < n + 1:
        return None
    gaps = []
    for ev in history[-(n + 1) :]:
        tr, va = _loss(ev, "train"), _loss(ev, "val")
        if tr is None or va is None or not (math.isfinite(tr) and math.isfinite(va)):
            return None
        gaps.append(va - tr)
    if not all(b > a for a, b in zip(gaps, gaps[1:], strict=False)):
        return None
    vals = [(v, ev.get("epoch")) for ev in history if (v := _loss(ev, "val")) is not None]
    best_v, best_ep = min(vals, key=lambda x: x[0])
    last_v = _loss(history[-1], "val")
    if last_v is None or last_v <= best_v:
        return None
    return (
        f"overfitting: the val-train loss gap grew for {n} epochs "
        f"({report.num(gaps[0], '.3g')} -> {report.num(gaps[-1], '.3g')}); val loss "
        f"{report.num(last_v, '.4g')} vs its best {report.num(best_v, '.4g')} at epoch {best_ep}",
        {"gap_from": gaps[0], "gap_to": gaps[-1], "val_loss": last_v, "best_val_loss": best_v},
    )


def data_bound(
    samples: Sequence[tuple[float, float]], now: float, lim: Limits
) -> tuple[str, dict[str, Any]] | None:
    """`samples`: (time, GPU busy %) while the trainer trained, oldest first. Judged only once
    they cover the whole window (a run's first minutes, compiling, say nothing)."""
    window = lim.data_bound_minutes * 60.0
    if window <= 0 or not samples or samples[0][0] > now - window * 0.9:
        return None
    recent = [u for t, u in samples if t >= now - window]
    if len(recent) < 3:
        return None
    mean = sum(recent) / len(recent)
    if mean >= lim.data_bound_util:
        return None
    return (
        f"data-bound: GPU busy {mean:.0f} % on average over {lim.data_bound_minutes:g} min "
        f"(< {lim.data_bound_util:g} %): the data feed is the bottleneck",
        {"util_mean": mean, "minutes": lim.data_bound_minutes, "samples": len(recent)},
    )


# --------------------------------------------------------------------------- the monitor


class Monitor:
    """The rules' memory for one run: its epoch events and which rules are active now.

    `epoch_end` returns what changed; a resumed trainer `restore`s from events.jsonl first,
    so a rule that fired before the restart is not reported again."""

    def __init__(self, limits: Limits, select: str = contract.DEFAULT_SELECT) -> None:
        self.limits = limits
        self.select = select
        self.history: list[dict[str, Any]] = []
        self.active: dict[str, Finding] = {}

    def restore(self, events: Iterable[dict[str, Any]], upto_epoch: int) -> None:
        """Replay a run's earlier events: epoch events up to `upto_epoch` (a resume from an
        earlier checkpoint trains later epochs again) and the health verdicts."""
        by_epoch: dict[int, dict[str, Any]] = {}
        for ev in events:
            kind = ev.get("kind")
            if kind == "epoch" and isinstance(ev.get("epoch"), int) and ev["epoch"] <= upto_epoch:
                by_epoch[ev["epoch"]] = ev
            elif kind == "health" and ev.get("rule") in HEALTH_RULES:
                f = from_event(ev)
                if f.active:
                    self.active[f.rule] = f
                else:
                    self.active.pop(f.rule, None)
        self.history = [by_epoch[k] for k in sorted(by_epoch)]

    def epoch_end(
        self,
        event: dict[str, Any],
        counts: Counts | None = None,
        gpu_util: Sequence[tuple[float, float]] = (),
        now: float = 0.0,
        step: int | None = None,
    ) -> list[Finding]:
        self.history.append(event)
        epoch = int(event.get("epoch", len(self.history)))
        verdicts = {
            "learned-nothing": learned_nothing(self.history, counts, self.limits),
            "diverged": diverged(self.history, self.limits),
            "plateau": plateau(self.history, self.limits, self.select),
            "overfitting": overfitting(self.history, self.limits),
            "data-bound": data_bound(gpu_util, now, self.limits),
        }
        changes = []
        for rule, verdict in verdicts.items():
            was = self.active.get(rule)
            if verdict is not None:
                message, values = verdict
                f = Finding(rule, True, epoch, message, values, step)
                if was is None:
                    changes.append(f)
                self.active[rule] = f  # the numbers stay current; an event only on a change
            elif was is not None:
                del self.active[rule]
                changes.append(
                    Finding(rule, False, epoch, f"{rule} cleared at epoch {epoch}", {}, step)
                )
        return changes

    def non_finite(self, message: str, epoch: int, step: int) -> Finding:
        f = Finding("diverged", True, epoch, f"diverged: {message}", {"non_finite": True}, step)
        self.active["diverged"] = f
        return f

    def status(self) -> list[dict[str, Any]]:
        """status.json's `health`: the rules active now, severe first."""
        return [
            {"rule": f.rule, "epoch": f.epoch, "message": f.message}
            for f in sorted(self.active.values(), key=order)
        ]


def order(f: Finding | dict[str, Any]) -> tuple[int, int]:
    rule = f.rule if isinstance(f, Finding) else str(f.get("rule"))
    return (
        0 if rule in SEVERE_HEALTH else 1,
        HEALTH_RULES.index(rule) if rule in HEALTH_RULES else 9,
    )


def stop_reason(rule: str) -> str:
    """status.json's `stop_reason` (and the end event's `reason`) when `rule` stopped a run."""
    return f"health: {rule}"


def stopped_by(reason: str | None) -> str | None:
    """The rule a `stop_reason` names (None: the run was not stopped by a rule)."""
    return reason.removeprefix("health: ") if reason and reason.startswith("health: ") else None


def from_event(ev: dict[str, Any]) -> Finding:
    step = ev.get("step")
    return Finding(
        rule=str(ev.get("rule")),
        active=bool(ev.get("active", True)),
        epoch=int(ev.get("epoch") or 0),
        message=str(ev.get("message") or ev.get("rule")),
        values=ev.get("values") if isinstance(ev.get("values"), dict) else {},
        step=step if isinstance(step, int) else None,
    )


# --------------------------------------------------------------------------- readers


def active_of(status_health: Any) -> list[dict[str, Any]]:
    """status.json's `health` as a clean list (an older or damaged file: [])."""
    if not isinstance(status_health, list):
        return []
    out = [
        h
        for h in status_health
        if isinstance(h, dict)
        and h.get("rule") in HEALTH_RULES
        and isinstance(h.get("message"), str)
    ]
    return sorted(out, key=order)


def mark(active: Sequence[dict[str, Any]]) -> str:
    """A run's health in a table cell: the rules active now, severe first ("" = healthy)."""
    return ",".join(SHORT.get(str(h.get("rule")), str(h.get("rule"))) for h in active)


def wasted(active: Sequence[dict[str, Any]]) -> bool:
    """A run a severe rule marks (learned nothing, diverged): its numbers rank nothing."""
    return any(h.get("rule") in SEVERE_HEALTH for h in active)
