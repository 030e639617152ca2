"""Asking for GPUs: a run that names GPUs this machine does not have, or more processes than
it has GPUs, is refused at creation (exit 2, nothing made); one that must wait says why, in
status.json, `show`, `ls --json` and the followed `run`, until it starts.

NVML is faked (no driver here): the process-wide sampler answers with a fixed snapshot.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from runs_fixtures import amc, fake_trainer_workspace, kill_running, wait_for

from amc_tui import gpu
from amc_tui.config import from_dict
from amc_tui.errors import UserError
from amc_tui.gpu import GpuSnapshot, GpuStat
from amc_tui.launch.create import create_run
from amc_tui.launch.queue import _place, _Slots, launch, work_queue
from amc_tui.launch.stop import stop_run
from amc_tui.run.rundir import read_run, read_status
from amc_tui.workspace import Workspace


class FixedSampler:
    def __init__(self, snap: GpuSnapshot) -> None:
        self.snap = snap

    def sample(self, force: bool = False) -> GpuSnapshot:
        return self.snap


def gpus(n: int, busy_mb: float = 10.0) -> GpuSnapshot:
    return GpuSnapshot(ok=True, gpus=[GpuStat(i, mem_used_mb=busy_mb) for i in range(n)])


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    ws = fake_trainer_workspace(tmp_path / "ws", monkeypatch, epoch_s=30, epochs=3,
                                stop_grace_s=5)  # fmt: skip
    yield ws
    kill_running(ws)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["run.gpus=[1, 5]"], "run.gpus names GPU 5 but this machine has 4 GPUs (0, 1, 2, 3)"),
        (
            ["run.device='cuda:4'"],
            "run.device names GPU 4 but this machine has 4 GPUs (0, 1, 2, 3)",
        ),
        (["run.nproc=8"], "run.nproc = 8 but this machine has 4 GPUs (0, 1, 2, 3)"),
    ],
)
def test_gpus_the_machine_does_not_have_are_refused_before_a_run_exists(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch, overrides: list[str], message: str
) -> None:
    monkeypatch.setattr(gpu, "_default", FixedSampler(gpus(4)))
    cfg = ws.root / "configs" / "fake.toml"
    cfg.write_text(cfg.read_text().replace('device = "cpu"', 'device = "cuda"'))
    with pytest.raises(UserError) as e:
        create_run(ws, cfg, overrides)
    assert str(e.value) == message
    assert [p.name for p in ws.runs.iterdir() if not p.name.startswith(".")] == []


def test_without_nvml_nothing_is_known_and_nothing_is_refused(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    down = GpuSnapshot(ok=False, reason="no NVIDIA GPU: driver not loaded")
    monkeypatch.setattr(gpu, "_default", FixedSampler(down))
    info = create_run(ws, "configs/fake.toml", ["run.device='cuda'", "run.gpus=[7]"])
    assert info.state == "queued"


def test_the_reason_a_run_waits_follows_the_gpus_it_needs() -> None:
    cfg = from_dict({"run": {"device": "cuda", "nproc": 2}})
    slots = _Slots(cpu_busy=False, gpu_busy={0, 1, 2}, unknown_gpu_busy=False)
    assert _place(cfg, slots, lambda: gpus(4)) == "waiting for 2 free GPUs (1 free now)"
    slots.gpu_busy = {0}
    assert _place(cfg, slots, lambda: gpus(4)) == ("cuda", [1, 2])
    listed = from_dict({"run": {"device": "cuda", "gpus": [1, 3]}})
    assert _place(listed, _Slots(False, {3}, False), lambda: gpus(4)) == (
        "waiting for GPU 3: another run holds it"
    )
    assert _place(listed, _Slots(False, set(), False), lambda: gpus(2)) == (
        "GPU 3 is not on this machine (it has 2)"
    )
    full = gpus(1, busy_mb=40_000.0)  # memory in use by a process amc-tui did not start
    assert _place(from_dict({"run": {"device": "cuda"}}), _Slots(False, set(), False),
                  lambda: full) == "waiting for 1 free GPU (0 free now)"  # fmt: skip


def test_a_queued_run_says_what_it_waits_for_until_it_starts(ws: Workspace, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_HOLD_AFTER", "1")  # `first` still runs when stopped, however late
    first = launch(ws, "configs/fake.toml", detach=False)
    second = launch(ws, "configs/fake.toml", detach=False)
    assert first.state == "running" and second.state == "queued"
    why = "waiting for the CPU: another run uses it (run.share_device = true shares it)"
    assert read_status(second.rundir)["waiting"] == why
    assert f"  queued: {why}" in amc(ws, "show", second.name).stdout.splitlines()
    rows = {r["name"]: r for r in json.loads(amc(ws, "ls", "--json").stdout)}
    assert rows[second.name]["waiting"] == why and rows[first.name]["waiting"] is None
    before = second.rundir.status.stat().st_mtime_ns
    work_queue(ws)  # the same reason is not written again
    assert second.rundir.status.stat().st_mtime_ns == before
    stop_run(ws, first.name)
    wait_for(lambda: work_queue(ws) is not None and read_run(second.dir).state == "running")
    assert read_status(second.rundir).get("waiting") is None
