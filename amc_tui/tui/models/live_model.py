"""What the Live screen plots, accumulated from events as they arrive.

The worker thread feeds each batch from `EventTailer.poll()` into a `LiveModel` and posts a
`LiveView` copy to the UI; memory stays bounded on a 100 MB event file because step points
are decimated (every other point dropped, stride doubled) once they pass a cap.

Every point carries three x positions (epoch, global step, training time) so a chart can
switch axis without a re-read. Training time is summed over the run's attempts (each from its
`start` event's `started_at`, status.json's clock of that attempt, to its `end`, or to its
last event when the trainer died), so a resumed run's clock continues instead of restarting,
and the time it sat stopped does not count: the clock of `RunInfo.elapsed_s`, which the
header shows.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from amc_tui import contract

MAX_STEP_POINTS = 2000
GPU_HISTORY = 120
GPU_FIELDS = ("util", "mem_used_mb", "temp_c", "power_w")
# events the launcher writes while no trainer runs: they open no training attempt
NOT_TRAINING = frozenset({"end", "submitted", "restart"})


@dataclass
class LiveView:
    """An immutable-by-convention snapshot for the UI thread."""

    epochs: list[int] = field(default_factory=list)
    series: dict[str, list[float | None]] = field(default_factory=dict)
    epoch_step: list[float | None] = field(default_factory=list)  # global step at epoch end
    epoch_time: list[float | None] = field(default_factory=list)  # training seconds
    step_x: list[float] = field(default_factory=list)
    step_loss: list[float] = field(default_factory=list)
    step_epoch: list[float] = field(default_factory=list)  # fractional epoch of a step point
    step_time: list[float] = field(default_factory=list)
    closed_s: float = 0.0  # training seconds of the attempts that ended
    attempt_start: float | None = None  # t of the open attempt's start (None: ended)
    no_val: bool = False  # the start event says the validation split is empty
    last_step: dict[str, Any] | None = None
    last_epoch: dict[str, Any] | None = None
    start: dict[str, Any] | None = None
    end: dict[str, Any] | None = None
    gpus: dict[int, dict[str, list[float]]] = field(default_factory=dict)
    gpu_last: dict[int, dict[str, Any]] = field(default_factory=dict)
    n_events: int = 0
    last_t: float | None = None
    mirror_failures: list[str] = field(default_factory=list)  # `mirror` events, one line each


# series name -> (split, metric) path into an epoch event; weights are the task shares
EPOCH_SERIES: dict[str, tuple[str, str]] = {
    "train_loss": ("train", "loss"),
    "val_loss": ("val", "loss"),
    "val_acc_mod": ("val", "acc_mod"),
    "val_acc_snr": ("val", "acc_snr"),
    "val_acc_combined": ("val", "acc_combined"),
    "train_acc_combined": ("train", "acc_combined"),
    "w_mod": ("weights", "mod"),
    "w_snr": ("weights", "snr"),
}


def _pick(ev: dict[str, Any], split: str, metric: str) -> float | None:
    sub = ev.get(split)
    v = sub.get(metric) if isinstance(sub, dict) else None
    return float(v) if contract.is_number(v) else None


class LiveModel:
    """Folds events into plot series. Resumed runs repeat epochs: a repeated epoch replaces
    the earlier point, so curves continue instead of doubling back."""

    def __init__(self, max_step_points: int = MAX_STEP_POINTS) -> None:
        self.max_step_points = max_step_points
        self.epoch_rows: dict[int, dict[str, Any]] = {}
        self.step_x: list[float] = []
        self.step_loss: list[float] = []
        self.step_epoch: list[float] = []
        self.step_time: list[float] = []
        self.epoch_at: dict[int, tuple[float | None, float | None]] = {}  # epoch -> (step, s)
        self.batches: int | None = None
        self.closed_s = 0.0  # training seconds of ended attempts
        self.attempt_start: float | None = None
        self.no_val = False
        self._stride = 1
        self._step_seen = 0
        self.last_step: dict[str, Any] | None = None
        self.start: dict[str, Any] | None = None
        self.end: dict[str, Any] | None = None
        self.gpus: dict[int, dict[str, deque[float]]] = {}
        self.gpu_last: dict[int, dict[str, Any]] = {}
        self.n_events = 0
        self.last_t: float | None = None
        self.last_gpu_t: float | None = None  # of the trainer's own gpu events
        self.mirror_failures: list[str] = []

    def feed(self, events: Iterable[dict[str, Any]]) -> None:
        for ev in events:
            self.n_events += 1
            t = ev.get("t")
            kind = ev.get("kind")
            if kind == "start":
                self._attempt(float(t) if contract.is_number(t) else self.last_t)
            if contract.is_number(t) and kind != "gpu":
                if self.attempt_start is None and kind not in NOT_TRAINING:
                    self.attempt_start = float(t)  # events before any start: count from here
                    began = ev.get("started_at") if kind == "start" else None
                    if contract.is_number(began) and began <= t:  # the attempt's own clock
                        self.attempt_start = float(began)
                self.last_t = float(t)
            if kind == "step":
                self._step(ev)
            elif kind == "epoch" and isinstance(ev.get("epoch"), int):
                self.epoch_rows[ev["epoch"]] = ev
                step = self.step_x[-1] if self.step_x else None
                if self.batches:
                    step = float(ev["epoch"] * self.batches)
                self.epoch_at[ev["epoch"]] = (step, self.train_s())
            elif kind == "gpu":
                self._gpu(ev)
                if ev.get("source") != "nvml" and contract.is_number(t):
                    self.last_gpu_t = float(t)
            elif kind == "start":
                self.start, self.end = ev, None
                self.no_val = ev.get("n_val") == 0
            elif kind == "end":
                self.end = ev
                self._attempt(float(t) if contract.is_number(t) else self.last_t)
            elif kind == "mirror":  # a TensorBoard / W&B mirror that failed; the run goes on
                self.mirror_failures.append(str(ev.get("message") or ev.get("error")))

    def _attempt(self, t: float | None) -> None:
        """Close the open attempt at `t` (a start after a crash closes the dead one at its
        last event)."""
        if self.attempt_start is not None:
            end = self.last_t if self.last_t is not None else t
            if t is not None and (end is None or t < end):
                end = t
            self.closed_s += max(0.0, (end or self.attempt_start) - self.attempt_start)
        self.attempt_start = None

    def train_s(self, now: float | None = None) -> float:
        """Training seconds through the last event, or through `now` for an open attempt."""
        if self.attempt_start is None:
            return self.closed_s
        end = now if now is not None else (self.last_t or self.attempt_start)
        return self.closed_s + max(0.0, end - self.attempt_start)

    def _step(self, ev: dict[str, Any]) -> None:
        self.last_step = ev
        if isinstance(ev.get("batches"), int) and ev["batches"] > 0:
            self.batches = ev["batches"]
        loss = ev.get("loss")
        if not contract.is_number(loss):
            return
        self._step_seen += 1
        if (self._step_seen - 1) % self._stride:
            return
        # the trainer's step is global; a per-epoch counter (it goes back) is made monotonic
        x = ev.get("step")
        last = self.step_x[-1] if self.step_x else 0.0
        self.step_x.append(float(x) if contract.is_number(x) and x > last else last + self._stride)
        self.step_loss.append(float(loss))
        epoch, batch, batches = ev.get("epoch"), ev.get("batch"), ev.get("batches")
        frac = (
            float(epoch)
            if contract.is_number(epoch)
            else (self.step_epoch[-1] if self.step_epoch else 0.0)
        )
        if (
            contract.is_number(epoch)
            and contract.is_number(batch)
            and contract.is_number(batches)
            and batches
        ):
            frac = epoch - 1 + batch / batches
        self.step_epoch.append(frac)
        self.step_time.append(self.train_s())
        if len(self.step_x) > self.max_step_points:
            for name in ("step_x", "step_loss", "step_epoch", "step_time"):
                setattr(self, name, getattr(self, name)[::2])
            self._stride *= 2

    def _gpu(self, ev: dict[str, Any]) -> None:
        idx = ev.get("index", 0)
        if not isinstance(idx, int):
            return
        hist = self.gpus.setdefault(idx, {f: deque(maxlen=GPU_HISTORY) for f in GPU_FIELDS})
        for f in GPU_FIELDS:
            v = ev.get(f)
            if contract.is_number(v):
                hist[f].append(float(v))
        self.gpu_last[idx] = ev

    def view(self) -> LiveView:
        epochs = sorted(self.epoch_rows)
        rows = [self.epoch_rows[e] for e in epochs]
        series = {
            name: [None if self.no_val and split == "val" else _pick(r, split, metric)
                   for r in rows]
            for name, (split, metric) in EPOCH_SERIES.items()
        }  # fmt: skip
        at = [self.epoch_at.get(e, (None, None)) for e in epochs]
        return LiveView(
            epochs=epochs,
            series=series,
            epoch_step=[a[0] for a in at],
            epoch_time=[a[1] for a in at],
            step_x=list(self.step_x),
            step_loss=list(self.step_loss),
            step_epoch=list(self.step_epoch),
            step_time=list(self.step_time),
            closed_s=self.closed_s,
            attempt_start=self.attempt_start,
            no_val=self.no_val,
            last_step=self.last_step,
            last_epoch=rows[-1] if rows else None,
            start=self.start,
            end=self.end,
            gpus={i: {f: list(d) for f, d in h.items()} for i, h in self.gpus.items()},
            gpu_last=dict(self.gpu_last),
            n_events=self.n_events,
            last_t=self.last_t,
            mirror_failures=list(self.mirror_failures),
        )


def throughput(view: LiveView) -> float | None:
    """Latest samples/s: the step event's when recent, else the epoch's."""
    for ev in (view.last_step, view.last_epoch):
        if ev and contract.is_number(ev.get("samples_per_s")):
            return float(ev["samples_per_s"])
    return None


def tail_lines(data: bytes, n: int) -> list[str]:
    """The last `n` complete-or-not lines of a log chunk, decoded leniently."""
    text = data.decode("utf-8", errors="replace").replace("\r\n", "\n")
    lines = [ln.rsplit("\r", 1)[-1] for ln in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    return lines[-n:]
