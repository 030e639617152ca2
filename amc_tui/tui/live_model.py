"""What the Live screen plots, accumulated from events as they arrive.

The worker thread feeds each batch from `EventTailer.poll()` into a `LiveModel` and posts a
`LiveView` copy to the UI; memory stays bounded on a 100 MB event file because step points
are decimated (every other point dropped, stride doubled) once they pass a cap.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from amc_tui.tui.fmt import is_num

MAX_STEP_POINTS = 2000
GPU_HISTORY = 120
GPU_FIELDS = ("util", "mem_used_mb", "temp_c", "power_w")


@dataclass
class LiveView:
    """An immutable-by-convention snapshot for the UI thread."""

    epochs: list[int] = field(default_factory=list)
    series: dict[str, list[float | None]] = field(default_factory=dict)
    step_x: list[float] = field(default_factory=list)
    step_loss: list[float] = field(default_factory=list)
    last_step: dict[str, Any] | None = None
    last_epoch: dict[str, Any] | None = None
    start: dict[str, Any] | None = None
    end: dict[str, Any] | None = None
    gpus: dict[int, dict[str, list[float]]] = field(default_factory=dict)
    gpu_last: dict[int, dict[str, Any]] = field(default_factory=dict)
    n_events: int = 0
    last_t: float | None = None


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
    return float(v) if is_num(v) else None


class LiveModel:
    """Folds events into plot series. Resumed runs repeat epochs: a repeated epoch replaces
    the earlier point, so curves continue instead of doubling back."""

    def __init__(self, max_step_points: int = MAX_STEP_POINTS) -> None:
        self.max_step_points = max_step_points
        self.epoch_rows: dict[int, dict[str, Any]] = {}
        self.step_x: list[float] = []
        self.step_loss: list[float] = []
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

    def feed(self, events: Iterable[dict[str, Any]]) -> None:
        for ev in events:
            self.n_events += 1
            t = ev.get("t")
            if is_num(t):
                self.last_t = float(t)
            kind = ev.get("kind")
            if kind == "step":
                self._step(ev)
            elif kind == "epoch" and isinstance(ev.get("epoch"), int):
                self.epoch_rows[ev["epoch"]] = ev
            elif kind == "gpu":
                self._gpu(ev)
                if ev.get("source") != "nvml" and is_num(t):
                    self.last_gpu_t = float(t)
            elif kind == "start":
                self.start, self.end = ev, None
            elif kind == "end":
                self.end = ev

    def _step(self, ev: dict[str, Any]) -> None:
        self.last_step = ev
        loss = ev.get("loss")
        if not is_num(loss):
            return
        self._step_seen += 1
        if (self._step_seen - 1) % self._stride:
            return
        # the trainer's step is global; a per-epoch counter (it goes back) is made monotonic
        x = ev.get("step")
        last = self.step_x[-1] if self.step_x else 0.0
        self.step_x.append(float(x) if is_num(x) and x > last else last + self._stride)
        self.step_loss.append(float(loss))
        if len(self.step_x) > self.max_step_points:
            self.step_x = self.step_x[::2]
            self.step_loss = self.step_loss[::2]
            self._stride *= 2

    def _gpu(self, ev: dict[str, Any]) -> None:
        idx = ev.get("index", 0)
        if not isinstance(idx, int):
            return
        hist = self.gpus.setdefault(idx, {f: deque(maxlen=GPU_HISTORY) for f in GPU_FIELDS})
        for f in GPU_FIELDS:
            v = ev.get(f)
            if is_num(v):
                hist[f].append(float(v))
        self.gpu_last[idx] = ev

    def view(self) -> LiveView:
        epochs = sorted(self.epoch_rows)
        rows = [self.epoch_rows[e] for e in epochs]
        series = {
            name: [_pick(r, split, metric) for r in rows]
            for name, (split, metric) in EPOCH_SERIES.items()
        }
        return LiveView(
            epochs=epochs,
            series=series,
            step_x=list(self.step_x),
            step_loss=list(self.step_loss),
            last_step=self.last_step,
            last_epoch=rows[-1] if rows else None,
            start=self.start,
            end=self.end,
            gpus={i: {f: list(d) for f, d in h.items()} for i, h in self.gpus.items()},
            gpu_last=dict(self.gpu_last),
            n_events=self.n_events,
            last_t=self.last_t,
        )


def throughput(view: LiveView) -> float | None:
    """Latest samples/s: the step event's when recent, else the epoch's."""
    for ev in (view.last_step, view.last_epoch):
        if ev and is_num(ev.get("samples_per_s")):
            return float(ev["samples_per_s"])
    return None


def tail_lines(data: bytes, n: int) -> list[str]:
    """The last `n` complete-or-not lines of a log chunk, decoded leniently."""
    text = data.decode("utf-8", errors="replace").replace("\r\n", "\n")
    lines = [ln.rsplit("\r", 1)[-1] for ln in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    return lines[-n:]
