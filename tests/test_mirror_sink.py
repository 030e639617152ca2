"""The live mirror's thread (amc_tui.mirror.sink): a hung dashboard never blocks the trainer's
`put`, and a target that raises on every call is dropped and recorded once while the other
target gets every record. The targets here are stand-ins for TensorBoard and W&B (a service
that hangs or raises cannot be made to on demand); the sink, its queue, its thread and the
translation of real events are the real ones."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from amc_tui.mirror.records import Close, Open, Scalars
from amc_tui.mirror.sink import QUEUE_SIZE, MirrorSink
from amc_tui.run.rundir import RunDir


def run_dir(tmp_path: Path) -> RunDir:
    run = RunDir(tmp_path / "runs" / "brisk-otter-1")
    run.path.mkdir(parents=True)
    run.config.write_text('name = "brisk-otter-1"\n[train]\nlr = 0.01\n')
    run.meta.write_text(json.dumps({"id": "ab12cd34", "name": "brisk-otter-1", "tags": ["x"]}))
    return run


def epoch(n: int) -> dict[str, Any]:
    return {"t": 1.0 + n, "kind": "epoch", "epoch": n, "lr": 0.01, "samples_per_s": 100.0,
            "train": {"loss": 2.0 / n}, "val": {"acc_mod": 0.1 * n}}  # fmt: skip


class Recorder:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, kind: str, **fields: Any) -> None:
        self.events.append({"kind": kind, **fields})


class Collect:
    def __init__(self) -> None:
        self.records: list[Any] = []

    def write(self, rec: Any) -> None:
        self.records.append(rec)

    def close(self) -> None:
        pass


class Raising:
    calls = 0

    def write(self, rec: Any) -> None:
        Raising.calls += 1
        raise ConnectionError("service down\nsecond line")

    def close(self) -> None:
        raise ConnectionError("still down")


def test_a_target_that_always_raises_is_recorded_once(tmp_path: Path) -> None:
    good, rec = Collect(), Recorder()
    backends = {"tensorboard": good, "wandb": Raising()}
    sink = MirrorSink(run_dir(tmp_path), ["tensorboard", "wandb"], backends.__getitem__, rec)
    sink.put({"t": 1.0, "kind": "start", "resumed": False})
    for n in (1, 2, 3):
        sink.put(epoch(n))
        sink.put({"t": 2.0, "kind": "step", "step": n})  # never mirrored
    sink.close("completed")
    assert rec.events == [{
        "kind": "mirror", "target": "wandb", "error": "ConnectionError: service down",
        "message": "wandb mirror failed: ConnectionError: service down",
    }]  # fmt: skip
    assert Raising.calls == 1  # dropped after its first failure
    kinds = [type(r) for r in good.records]
    assert kinds == [Open, Scalars, Scalars, Scalars, Close]
    assert good.records[0].run.name == "brisk-otter-1" and good.records[0].run.tags == ["x"]
    assert [r.step for r in good.records[1:4]] == [1, 2, 3]
    assert good.records[2].values["val/acc_mod"] == 0.2 and good.records[-1].state == "completed"


def test_a_hung_target_never_blocks_put(tmp_path: Path) -> None:
    gate = threading.Event()
    entered = threading.Event()

    class Hung(Collect):
        def write(self, rec: Any) -> None:
            entered.set()
            gate.wait()
            super().write(rec)

    hung, rec = Hung(), Recorder()
    sink = MirrorSink(run_dir(tmp_path), ["wandb"], lambda t: hung, rec, queue_size=10)
    sink.put({"t": 1.0, "kind": "start"})
    assert entered.wait(30)  # the thread is stuck inside the target
    for n in range(1, 1 + 3 * QUEUE_SIZE):
        sink.put(epoch(n))  # returns at once although nothing drains the queue
    assert sink.dropped == 3 * QUEUE_SIZE - 10
    sink.close("completed", wait_s=0.2)  # the trainer's exit waits only this long
    gate.set()
    assert [e["target"] for e in rec.events] == ["wandb", "wandb"]
    assert rec.events[0]["error"] == "still busy 0.2 s after the run ended"
    assert rec.events[1]["dropped"] == 3 * QUEUE_SIZE - 10 + 1  # and the end close() adds


def test_a_hung_wandb_does_not_starve_tensorboard(tmp_path: Path) -> None:
    """Each target has its own thread: W&B stuck in its start-up (a network outage) while
    TensorBoard gets every epoch and its close."""
    gate, closed = threading.Event(), threading.Event()

    class Hung(Collect):
        def write(self, rec: Any) -> None:
            gate.wait()

    class Tb(Collect):
        def write(self, rec: Any) -> None:
            super().write(rec)
            if isinstance(rec, Close):
                closed.set()

    tb, rec = Tb(), Recorder()
    backends = {"tensorboard": tb, "wandb": Hung()}
    sink = MirrorSink(run_dir(tmp_path), ["tensorboard", "wandb"], backends.__getitem__, rec)
    for ev in ({"t": 1.0, "kind": "start"}, epoch(1), epoch(2), epoch(3)):
        sink.put(ev)
    sink.put({"t": 5.0, "kind": "end", "state": "completed"})
    assert closed.wait(30)
    sink.close(wait_s=0.2)
    gate.set()
    assert [type(r) for r in tb.records] == [Open, Scalars, Scalars, Scalars, Close]
    assert [(e["target"], e["error"]) for e in rec.events] == [
        ("wandb", "still busy 0.2 s after the run ended")
    ]


def test_a_run_that_ends_before_its_start_event_opens_no_target(tmp_path: Path) -> None:
    made: list[str] = []

    def factory(target: str) -> Collect:
        made.append(target)
        return Collect()

    rec = Recorder()
    sink = MirrorSink(run_dir(tmp_path), ["tensorboard", "wandb"], factory, rec)
    sink.close("failed")  # e.g. the data file failed to load, before the start event
    assert made == [] and rec.events == [] and not sink.abandoned
