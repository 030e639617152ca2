"""The live mirror: the trainer's events go to the dashboards from daemon threads.

Never at the run's expense: `put` never blocks (a bounded queue per target; when one is full
the event is dropped there and counted), each target has its own thread (a W&B that hangs in
its start-up cannot starve TensorBoard), every error is caught, and a target that fails (its
package missing, W&B down, a full disk) is dropped and recorded once through `record` as a
`mirror` event {target, error, message}; the other target and the run go on. `close` waits a
bounded time for the queues to drain, so a hung service cannot hold the trainer's exit.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from amc_tui.config import Config
from amc_tui.mirror.records import Close, Translator
from amc_tui.mirror.targets import install_hint, tb_dir, wanted
from amc_tui.mirror.tb import TensorBoardBackend
from amc_tui.mirror.wb import WandbBackend
from amc_tui.run.rundir import RunDir

QUEUE_SIZE = 1000
# how long the trainer's finish waits for the mirrors (AMC_TUI_MIRROR_WAIT_S overrides it)
CLOSE_WAIT_S = 30.0
# what a dashboard shows; step, gpu and checkpoint events never enter the queues
MIRRORED_KINDS = frozenset({"start", "epoch", "export", "end"})

Recorder = Callable[..., Any]  # record(kind, **fields): the trainer's event writer


def error_line(exc: BaseException, target: str) -> str:
    """One line: what failed, with the install command for a missing package."""
    if isinstance(exc, ImportError):
        return f"{type(exc).__name__}: {exc} ({install_hint(target)})"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")[:300]


def make_backend(target: str, run: RunDir, cfg: Config) -> Any:
    """The target's writer; imports its package (ImportError when it is missing)."""
    if target == "tensorboard":
        return TensorBoardBackend(tb_dir(run))
    m = cfg.mirror
    return WandbBackend(run.path, m.wandb, m.wandb_project, m.wandb_entity)


class Lane:
    """One target: its queue, its thread, its own translator (reads the exports itself)."""

    def __init__(self, sink: MirrorSink, target: str, queue_size: int) -> None:
        self.sink, self.target = sink, target
        self.queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=queue_size)
        self.dropped = 0
        self.translator = Translator(sink.run)
        self.backend: Any = None
        self.done = False  # closed, or failed
        self._fail_lock = threading.Lock()
        self.thread = threading.Thread(target=self._work, name=f"amc-mirror-{target}", daemon=True)
        self.thread.start()

    def put(self, event: dict[str, Any] | None) -> None:
        try:
            self.queue.put_nowait(event)
        except queue.Full:
            self.dropped += event is not None

    def _work(self) -> None:
        while (event := self.queue.get()) is not None:
            if self.done:
                continue
            try:
                for rec in self.translator.feed(event):
                    self.done = isinstance(rec, Close)
                    if self.backend is None and self.done:  # ended before it started
                        break
                    if self.backend is None:
                        self.backend = self.sink.factory(self.target)
                    self.backend.write(rec)
            except BaseException as e:  # noqa: BLE001 - a mirror never fails the run
                self.fail(error_line(e, self.target))
        if not self.done and self.backend is not None:  # no end event came: close anyway
            try:
                self.backend.write(Close("completed"))
                self.done = True
            except BaseException as e:  # noqa: BLE001
                self.fail(error_line(e, self.target))

    def fail(self, error: str, close: bool = True) -> None:
        """Record the failure once and drop the target; `close`: from its own thread only
        (another thread must not close a backend the lane's thread is inside)."""
        with self._fail_lock:
            if self.done:
                return
            self.done = True
        self.sink.failed[self.target] = error
        self.sink.safe_record(
            "mirror", target=self.target, error=error,
            message=f"{self.target} mirror failed: {error}",
        )  # fmt: skip
        with contextlib.suppress(BaseException):
            if close and self.backend is not None:
                self.backend.close()


class MirrorSink:
    def __init__(self, run: RunDir, targets: list[str], factory: Callable[[str], Any],
                 record: Recorder, queue_size: int = QUEUE_SIZE) -> None:  # fmt: skip
        self.run = run
        self.factory = factory  # target -> backend (called in its thread: imports are slow)
        self.record = record
        self.failed: dict[str, str] = {}
        self.lanes = [Lane(self, t, queue_size) for t in targets]

    @property
    def dropped(self) -> int:
        return sum(lane.dropped for lane in self.lanes)

    @property
    def abandoned(self) -> bool:
        """A target's thread was still busy when `close` gave up on it (a hung service):
        the process should then exit without running exit hooks, which would wait for it
        (W&B's waits for its service process)."""
        return any(lane.thread.is_alive() for lane in self.lanes)

    def put(self, event: dict[str, Any]) -> None:
        """Hand an event over; never blocks (a full queue: dropped there and counted)."""
        if event.get("kind") in MIRRORED_KINDS:
            for lane in self.lanes:
                lane.put(event)

    def close(self, state: str | None = None, wait_s: float | None = None) -> None:
        """Close every target (with the run's final state) once its queue has drained,
        waiting at most `wait_s` in all; a target still busy then, or events dropped, are
        recorded."""
        if wait_s is None:
            wait_s = float(os.environ.get("AMC_TUI_MIRROR_WAIT_S") or CLOSE_WAIT_S)
        deadline = time.monotonic() + wait_s
        if state is not None:
            self.put({"kind": "end", "state": state})
        for lane in self.lanes:
            with contextlib.suppress(queue.Full):
                lane.queue.put(None, timeout=max(0.0, deadline - time.monotonic()))
        for lane in self.lanes:
            lane.thread.join(max(0.0, deadline - time.monotonic()))
            if lane.thread.is_alive():
                lane.fail(f"still busy {wait_s:g} s after the run ended", close=False)
            if lane.dropped:
                self.safe_record(
                    "mirror", target=lane.target, error=None, dropped=lane.dropped,
                    message=f"{lane.target} mirror: {lane.dropped} events dropped (queue full)",
                )  # fmt: skip

    def safe_record(self, kind: str, **fields: Any) -> None:
        with contextlib.suppress(Exception):
            self.record(kind, **fields)


def open_sink(run: RunDir, cfg: Config, record: Recorder) -> MirrorSink | None:
    """The trainer's sink, or None when the config mirrors nothing."""
    targets = wanted(cfg)
    if not targets:
        return None
    return MirrorSink(run, targets, lambda t: make_backend(t, run, cfg), record)
