"""The trainer's heartbeat thread and its gpu events (NVML faked: the only mock here)."""

from __future__ import annotations

import json
import time

import pytest

from amc_tui import contract
from amc_tui.gpu import GpuSnapshot, GpuStat
from amc_tui.run.rundir import RunDir, read_events, read_status
from amc_tui.train import loop


class FakeSampler:
    def __init__(self) -> None:
        self.calls = 0

    def sample(self, force: bool = False) -> GpuSnapshot:
        self.calls += 1
        gpus = [
            GpuStat(index=0, util=97.0, mem_used_mb=40_000.0, mem_total_mb=81_559.0, temp_c=61.0,
                    power_w=610.0),
            GpuStat(index=1, util=0.0, mem_used_mb=1.0, mem_total_mb=81_559.0),
        ]  # fmt: skip
        return GpuSnapshot(ok=True, gpus=gpus, t=time.time())


@pytest.fixture
def trainer(tmp_path) -> loop.Trainer:
    run = RunDir(tmp_path / "runs" / "hb-1")
    run.path.mkdir(parents=True)
    run.meta.write_text(json.dumps({"id": "hb000001", "name": "hb-1"}))
    return loop.Trainer(run.path)


def test_heartbeat_refreshes_status_between_steps(trainer, monkeypatch) -> None:
    monkeypatch.setattr(contract, "HEARTBEAT_S", 0.05)
    trainer.status(state="running", heartbeat_at=0.0)
    trainer.step, trainer.epoch = 17, 3
    trainer._hb_thread = loop.threading.Thread(target=trainer._heartbeat, daemon=True)
    trainer._hb_thread.start()
    deadline = time.monotonic() + 30
    while read_status(trainer.run).get("heartbeat_at", 0.0) == 0.0 and time.monotonic() < deadline:
        time.sleep(0.02)
    trainer._hb_stop.set()
    trainer._hb_thread.join(5)
    st = read_status(trainer.run)
    assert st["heartbeat_at"] > 0 and st["step"] == 17 and st["epoch"] == 3
    assert st["state"] == "running"  # a heartbeat merges, never replaces the status


def test_gpu_event_reports_this_processes_gpu(trainer, monkeypatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    monkeypatch.setattr(loop, "visible_gpus", lambda: [1])
    trainer._gpu_event(FakeSampler())
    (ev,) = read_events(trainer.run.events)
    assert ev["kind"] == "gpu" and ev["index"] == 1 and ev["util"] == 0.0
    monkeypatch.setattr(loop, "visible_gpus", lambda: [0])
    trainer._gpu_event(FakeSampler())
    ev = read_events(trainer.run.events)[-1]
    assert {k: ev[k] for k in ("index", "util", "mem_used_mb", "mem_total_mb", "temp_c", "power_w")} == {
        "index": 0, "util": 97.0, "mem_used_mb": 40_000.0, "mem_total_mb": 81_559.0,
        "temp_c": 61.0, "power_w": 610.0,
    }  # fmt: skip


def test_gpu_event_skipped_without_nvml(trainer) -> None:
    class NoGpu:
        def sample(self, force: bool = False) -> GpuSnapshot:
            return GpuSnapshot(ok=False, reason="no NVIDIA GPU: NVML library not found")

    trainer._gpu_event(NoGpu())
    assert not trainer.run.events.exists()


def test_trainer_import_path_needs_neither_textual_nor_tomli_w() -> None:
    """A GPU box has torch, timm, h5py, numpy, pandas and nvidia-ml-py, but not these two."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import amc_tui.train.loop, amc_tui.train.bench, amc_tui.runlog.sync\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'tomli_w')]\n"
        "assert not bad, bad\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
