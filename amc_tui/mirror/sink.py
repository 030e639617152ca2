"""The live mirror: the trainer's events go to the dashboards from a daemon thread.

Never at the run's expense: `put` never blocks (a bounded queue; when it is full the event is
dropped and counted), the thread catches every error, and a target that fails (its package
missing, W&B down, a full disk) is dropped and recorded once through `record` as a `mirror`
event {target, error, ...}; the other target and the run go on. `close` waits a bounded
time for the queue to drain, so a hung service cannot hold the trainer's exit.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from amc_tui.config import Config
from amc_tui.mirror.records import Close, Record, Translator
from amc_tui.mirror.targets import install_hint, tb_dir, wanted
from amc_tui.mirror.tb import TensorBoardBackend
from amc_tui.mirror.wb import WandbBackend
from amc_tui.run.rundir import RunDir

QUEUE_SIZE = 1000
CLOSE_WAIT_S = 30.0
# what a dashboard shows; step, gpu and checkpoint events never enter the queue
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


class MirrorSink:
    def __init__(self, run: RunDir, targets: list[str], factory: Callable[[str], Any],
                 record: Recorder, queue_size: int = QUEUE_SIZE) -> None:  # fmt: skip
        self.run = run
        self.targets = list(targets)
        self.factory = factory  # target -> backend (called in the thread: imports are slow)
        self.record = record
        self.queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=queue_size)
        self.dropped = 0
        self.failed: dict[str, str] = {}
        self.backends: dict[str, Any] = {}
        self.translator = Translator(run)
        self._thread = threading.Thread(target=self._work, name="amc-mirror", daemon=True)
        self._thread.start()

    def put(self, event: dict[str, Any]) -> None:
        """Hand an event over; never blocks (full queue: dropped and counted)."""
        if event.get("kind") not in MIRRORED_KINDS:
            return
        try:
            self.queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1

    def close(self, state: str | None = None, wait_s: float = CLOSE_WAIT_S) -> None:
        """Close every target (with the run's final state) after the queue has drained,
        waiting at most `wait_s`; a drop count or a time-out is recorded."""
        deadline = time.monotonic() + wait_s
        if state is not None:
            self.put({"kind": "end", "state": state})
        with contextlib.suppress(queue.Full):
            self.queue.put(None, timeout=wait_s)
            self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            self._fail_all(f"not finished after {wait_s:g} s; the run ended without it")
        if self.dropped:
            self._safe_record("mirror", target="all", error=None, dropped=self.dropped,
                              message=f"{self.dropped} events not mirrored (queue full)")  # fmt: skip

    # ----------------------------------------------------------------- the thread

    def _work(self) -> None:
        while True:
            event = self.queue.get()
            if event is None:
                break
            try:
                records = self.translator.feed(event)
            except Exception as e:  # noqa: BLE001 - a bad export must not end the mirror
                self._fail_all(error_line(e, "all"))
                continue
            for rec in records:
                for target in self._live():
                    self._write(target, rec)
        for target in self._live():  # an end event never came (the trainer's close did)
            self._write(target, Close("completed"), closing=True)

    def _live(self) -> list[str]:
        return [t for t in self.targets if t not in self.failed]

    def _write(self, target: str, rec: Record, closing: bool = False) -> None:
        try:
            backend = self.backends.get(target)
            if backend is None:
                if closing:
                    return
                backend = self.backends[target] = self.factory(target)
            backend.write(rec)
            if isinstance(rec, Close):
                self.targets.remove(target)  # closed: nothing more to write
        except BaseException as e:  # noqa: BLE001 - a mirror never fails the run
            self._fail(target, error_line(e, target))
            with contextlib.suppress(BaseException):
                if target in self.backends:
                    self.backends.pop(target).close()

    def _fail(self, target: str, error: str) -> None:
        if target in self.failed:
            return
        self.failed[target] = error
        self._safe_record("mirror", target=target, error=error,
                          message=f"{target} mirror failed: {error}; the run goes on without it")  # fmt: skip

    def _fail_all(self, error: str) -> None:
        for target in self._live():
            self._fail(target, error)

    def _safe_record(self, kind: str, **fields: Any) -> None:
        with contextlib.suppress(Exception):
            self.record(kind, **fields)


def open_sink(run: RunDir, cfg: Config, record: Recorder) -> MirrorSink | None:
    """The trainer's sink, or None when the config mirrors nothing."""
    targets = wanted(cfg)
    if not targets:
        return None
    return MirrorSink(run, targets, lambda t: make_backend(t, run, cfg), record)
