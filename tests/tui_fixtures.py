"""Workspaces for the TUI tests: real run directories (helper C's fake-run generator, in the
DESIGN formats), deterministic ones for snapshots, a fake NVML, and Pilot helpers.

Plain module, imported explicitly by tests/test_tui_*.py.
"""

from __future__ import annotations

import json
import os
import types
from collections import namedtuple
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runs_fixtures import fake_config, make_fake_run, make_fake_runs

from amc_tui.run.rundir import RunDir, append_event, write_status
from amc_tui.workspace import Workspace

T0 = 1_750_000_000.0  # fixed timestamps: snapshots carry no wall clock
NOW = T0 + 100_000.0
FUTURE = 4_000_000_000.0  # a heartbeat "from the future" never goes stale in a test


def fixed_clock() -> float:
    return NOW


def new_workspace(root: Path) -> Workspace:
    for sub in ("configs", "runs", "data"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    return Workspace(root)


def demo_workspace(root: Path) -> Workspace:
    """A small deterministic workspace: every state, exports, a live run, two runs that differ
    in exactly two config keys, a RUNLOG and a config in configs/."""
    ws = new_workspace(root)
    make_fake_run(ws, "amber-wave-1", run_id="a1a1a1a1", seed=1, epochs=4, created_at=T0 + 10,
                  tags=["baseline"], phase="sweep")  # fmt: skip
    make_fake_run(
        ws, "bold-river-2", run_id="b2b2b2b2", seed=2, epochs=4, created_at=T0 + 20,
        config=fake_config(train={"epochs": 4, "lr": 3e-4}, model={"arch": "resnet18",
                                                                   "dropout": 0.1},
                           tags=["baseline"], phase="sweep"),
    )  # fmt: skip
    make_fake_run(ws, "calm-sky-3", run_id="c3c3c3c3", seed=3, state="failed", epochs=6,
                  created_at=T0 + 30, arch="swin_tiny")  # fmt: skip
    make_fake_run(ws, "dark-moon-4", run_id="d4d4d4d4", seed=4, state="stopped", epochs=6,
                  created_at=T0 + 40)  # fmt: skip
    make_fake_run(ws, "eager-fog-5", run_id="e5e5e5e5", seed=5, state="queued", epochs=6,
                  created_at=T0 + 50, exports=False)  # fmt: skip
    live = make_fake_run(ws, "fresh-dew-6", run_id="f6f6f6f6", seed=6, state="running",
                         epochs=10, epoch=3, created_at=T0 + 60, pid=os.getpid(),
                         heartbeat_at=FUTURE)  # fmt: skip
    with open(live.log, "w") as f:
        f.write("".join(f"epoch {e}: val combined 0.{e}0\n" for e in (1, 2, 3)))
    (root / "configs" / "demo.toml").write_text(
        '[data]\npath = "data/demo.h5"\nframes_per_cell = 8\n\n[model]\narch = "resnet18"\n\n'
        "[image]\nsize = 32\n\n[train]\nepochs = 2\nbatch_size = 16\n"
    )
    from amc_tui.runlog.sync import sync_all

    sync_all(ws)
    return ws


def scale_workspace(root: Path, n: int = 1000) -> Workspace:
    """n finished runs in the DESIGN layout (config.toml, meta.json, status.json, events.jsonl
    with start and epoch events), written plainly (no fsync) so 1,000 take about a second."""
    import random

    from runs_fixtures import epoch_event

    ws = new_workspace(root)
    template = make_fake_runs(ws, 1)[0]
    config = template.config.read_text()
    states = ("completed", "completed", "stopped", "failed")
    for i in range(1, n):
        rd = ws.runs / f"fake-run-{i}"
        rd.mkdir()
        t0 = T0 + i * 1000
        state = states[i % len(states)]
        rng = random.Random(i)
        evs = [epoch_event(e, 4, rng, e == 4) for e in range(1, 5 if state == "completed" else 3)]
        last = evs[-1]
        best = {"metric": "val.acc_combined", "value": last["val"]["acc_combined"],
                "epoch": last["epoch"]}  # fmt: skip
        (rd / "config.toml").write_text(config)
        (rd / "meta.json").write_text(json.dumps({
            "id": f"s{i:07d}", "name": rd.name, "created_at": t0, "host": "testhost",
            "arch": "resnet18", "epochs": 4, "tags": [], "phase": "", "notes": "",
        }))  # fmt: skip
        (rd / "status.json").write_text(json.dumps({
            "state": state, "pid": None, "device": "cpu", "gpus": [], "epoch": last["epoch"],
            "epochs": 4, "step": 3 * last["epoch"], "started_at": t0 + 1,
            "ended_at": t0 + 300, "heartbeat_at": t0 + 300, "exit_code": 0, "best": best,
        }))  # fmt: skip
        start = {"t": t0 + 1, "kind": "start", "run_id": f"s{i:07d}", "name": rd.name}
        (rd / "events.jsonl").write_text(
            "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in [start, *evs])
        )
    return ws


def run_dir(ws: Workspace, name: str) -> Path:
    return ws.runs / name


def add_epoch(ws: Workspace, name: str, epoch: int, acc: float, t: float | None = None) -> None:
    """What the trainer does after an epoch: append the event, then update status.json."""
    rd = RunDir(run_dir(ws, name))
    val = {"loss": 1.0, "acc_mod": acc + 0.3, "acc_snr": acc + 0.2, "acc_combined": acc,
           "snr_mae_db": 2.0, "snr_within_1": 0.8}  # fmt: skip
    ev = {
        "epoch": epoch,
        "epoch_time_s": 60.0,
        "samples_per_s": 800.0,
        "lr": 1e-4,
        "train": dict(val, loss=1.1),
        "val": val,
        "weights": {"mod": 0.6, "snr": 0.4},
        "uncertainty": {"mod": 1.5, "snr": 2.4},
        "is_best": True,
    }
    if t is not None:
        ev["t"] = t
    append_event(rd, "epoch", **ev)
    write_status(rd, epoch=epoch, best={"metric": "val.acc_combined", "value": acc,
                                        "epoch": epoch})  # fmt: skip


def big_event_file(path: Path, n_steps: int) -> int:
    """Append n_steps step events (about 160 bytes each); returns the file size."""
    line = {"t": T0, "kind": "step", "epoch": 1, "step": 0, "loss": 2.0, "loss_mod": 1.0,
            "loss_snr": 1.0, "lr": 1e-4, "samples_per_s": 700.0}  # fmt: skip
    with open(path, "a") as f:
        chunk = []
        for i in range(n_steps):
            line["step"] = i + 1
            line["loss"] = 2.0 - i / (n_steps * 2)
            chunk.append(json.dumps(line, separators=(",", ":")))
            if len(chunk) == 10_000:
                f.write("\n".join(chunk) + "\n")
                chunk = []
        if chunk:
            f.write("\n".join(chunk) + "\n")
    return path.stat().st_size


# --------------------------------------------------------------------------- fake NVML

Util = namedtuple("Util", "gpu memory")
Mem = namedtuple("Mem", "used total free", defaults=(0,))
Proc = namedtuple("Proc", "pid usedGpuMemory")


class NVMLError(Exception):
    pass


class NVMLError_DriverNotLoaded(NVMLError):  # noqa: N801 - pynvml's own name
    pass


NoDriver = NVMLError_DriverNotLoaded


class FakeNVML(types.SimpleNamespace):
    """`count` H100s; `init_error` makes nvmlInit fail (no driver); `pids` maps a GPU index to
    the pids running on it."""

    NVMLError = NVMLError
    NVMLError_DriverNotLoaded = NoDriver
    NVML_TEMPERATURE_GPU = 0

    def __init__(self, count: int = 2, init_error: type | None = None,
                 pids: dict[int, list[int]] | None = None) -> None:  # fmt: skip
        super().__init__()
        self.count, self.init_error, self.pids = count, init_error, pids or {}

    def nvmlInit(self) -> None:
        if self.init_error:
            raise self.init_error()

    def nvmlShutdown(self) -> None:
        pass

    def nvmlDeviceGetCount(self) -> int:
        return self.count

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetName(self, h: int) -> str:
        return "NVIDIA H100 80GB HBM3"

    def nvmlDeviceGetUtilizationRates(self, h: int) -> Util:
        return Util(37 + 10 * h, 5)

    def nvmlDeviceGetMemoryInfo(self, h: int) -> Mem:
        return Mem(used=(h * 40_000 + 100) << 20, total=81_559 << 20)

    def nvmlDeviceGetTemperature(self, h: int, sensor: int) -> int:
        return 41 + h

    def nvmlDeviceGetPowerUsage(self, h: int) -> int:
        return 123_456

    def nvmlDeviceGetPowerManagementLimit(self, h: int) -> int:
        return 700_000

    def nvmlDeviceGetComputeRunningProcesses(self, h: int) -> list[Proc]:
        return [Proc(p, 512 << 20) for p in self.pids.get(h, [])]


def sampler(nvml: Any) -> Any:
    from amc_tui.gpu import GpuSampler

    return GpuSampler(nvml=nvml, min_interval_s=0.0)


def no_gpu_sampler() -> Any:
    return sampler(FakeNVML(init_error=NoDriver))


# --------------------------------------------------------------------------- Pilot helpers


async def wait_for(pilot: Any, cond: Callable[[], bool], timeout: float = 15.0,
                   step: float = 0.05) -> None:  # fmt: skip
    """Pause until `cond()` holds (a functional wait, not a timing assertion). A widget the
    condition queries that is not mounted yet counts as "not yet": on a loaded machine a
    container can be in the DOM a few frames before its children are composed."""
    from textual.css.query import NoMatches

    def holds() -> bool:
        try:
            return bool(cond())
        except NoMatches:
            return False

    waited = 0.0
    while not holds():
        if waited >= timeout:
            raise AssertionError(f"condition not met within {timeout}s: {cond}")
        await pilot.pause(step)
        waited += step


def make_app(ws: Workspace, **kw: Any) -> Any:
    from amc_tui.tui.app import AmcApp

    kw.setdefault("clock", fixed_clock)
    kw.setdefault("gpu_sampler", no_gpu_sampler())
    return AmcApp(ws, **kw)


def screen_lines(app: Any) -> list[str]:
    """The screen as drawn, one string per terminal row (the compositor's own strips)."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


async def runs_loaded(pilot: Any) -> Any:
    """The Runs screen after its first full scan."""
    screen = pilot.app.screen
    await wait_for(pilot, lambda: getattr(pilot.app.screen, "loaded", False))
    return screen


async def screen_ready(pilot: Any, screen_type: type) -> Any:
    """The active screen once it is of `screen_type` and composed and mounted."""
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, screen_type) and app.screen.is_mounted)
    await pilot.pause()
    return app.screen


# --------------------------------------------------------------------------- Runs table cases


def table_lines(table: Any) -> list[str]:
    """The table's visible lines as drawn (its render cache included)."""
    return [table.render_line(y).text for y in range(table.size.height)]


def fresh_table_lines(table: Any) -> list[str]:
    """The same lines drawn from scratch: what the table should show."""
    table._clear_caches()
    table._update_count += 1
    return table_lines(table)


def long_run(ws: Workspace, name: str = "long-haul-7", epoch: int = 9, epochs: int = 20,
             created_at: float = T0 + 70) -> RunDir:  # fmt: skip
    """A running 20-epoch run (heartbeat from the future: never stale)."""
    return make_fake_run(ws, name, run_id="l7l7l7l7", seed=7, state="running", epochs=epochs,
                         epoch=epoch, created_at=created_at, pid=os.getpid(),
                         heartbeat_at=FUTURE)  # fmt: skip


def add_plain_epoch(ws: Workspace, name: str, epoch: int, val: dict[str, float],
                    best: dict[str, Any] | None) -> None:  # fmt: skip
    """An epoch event with these val metrics; status.json's best becomes `best` (None keeps
    the run's best: this epoch is not the best)."""
    rd = RunDir(run_dir(ws, name))
    append_event(rd, "epoch", epoch=epoch, epoch_time_s=60.0, samples_per_s=800.0, lr=1e-4,
                 train=dict(val), val=dict(val), is_best=best is not None)  # fmt: skip
    updates: dict[str, Any] = {"epoch": epoch}
    if best is not None:
        updates["best"] = best
    write_status(rd, **updates)


def resumed_run(ws: Workspace, name: str = "second-go-8") -> RunDir:
    """A stopped run trained in two attempts: 209 s, then (after an hour's pause) 13 s."""
    rd = make_fake_run(ws, name, run_id="r8r8r8r8", seed=8, state="stopped", epochs=6,
                       epoch=3, created_at=T0 + 80)  # fmt: skip
    t1 = T0 + 4000
    with open(rd.events, "a") as f:
        for ev in ({"t": t1, "kind": "start", "run_id": "r8r8r8r8", "resumed": True},
                   {"t": t1 + 12, "kind": "end", "state": "stopped", "exit_code": 0}):  # fmt: skip
            f.write(json.dumps(ev, separators=(",", ":")) + "\n")
    status = json.loads(rd.status.read_text())
    status.update(first_started_at=T0 + 81, started_at=t1 - 1, ended_at=t1 + 12)
    rd.status.write_text(json.dumps(status))
    return rd


def unknown_run(ws: Workspace, name: str = "torn-status-9") -> RunDir:
    """A run whose status.json cannot be read."""
    rd = make_fake_run(ws, name, run_id="u9u9u9u9", seed=9, state="stopped", epochs=6,
                       created_at=T0 + 90)  # fmt: skip
    rd.status.write_text('{"state": "runn')
    return rd
