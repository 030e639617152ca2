"""gpu.py against a fake NVML module (the only mock in the suite: there is no GPU here)."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass

import pytest

from amc_tui.gpu import GpuSampler, GpuSnapshot, format_snapshot, free_gpus, snapshot_dict


class NVMLError(Exception):
    pass


def _err(name: str) -> type[NVMLError]:
    return type(f"NVMLError_{name}", (NVMLError,), {})


NotSupported, GpuIsLost = _err("NotSupported"), _err("GpuIsLost")
DriverNotLoaded, LibraryNotFound = _err("DriverNotLoaded"), _err("LibraryNotFound")


@dataclass
class Mem:
    used: int
    total: int


@dataclass
class Util:
    gpu: int
    memory: int


@dataclass
class Proc:
    pid: int
    usedGpuMemory: int | None


class FakeNVML(types.SimpleNamespace):
    """Two H100s; `fail` maps a function name to the error it raises (per GPU index or all)."""

    NVMLError = NVMLError
    NVML_TEMPERATURE_GPU = 0

    def __init__(self, count=2, init_error=None, fail=None, lost=()):
        super().__init__()
        self.count, self.init_error, self.fail, self.lost = count, init_error, fail or {}, set(lost)
        self.calls = 0

    def _check(self, fn, idx):
        self.calls += 1
        if idx in self.lost:
            raise GpuIsLost()
        err = self.fail.get(fn)
        if err is not None and (not isinstance(err, tuple) or err[1] == idx):
            raise err[0]() if isinstance(err, tuple) else err()

    def nvmlInit(self):
        if self.init_error:
            raise self.init_error()

    def nvmlShutdown(self):
        pass

    def nvmlDeviceGetCount(self):
        return self.count

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetName(self, h):
        self._check("name", h)
        return b"NVIDIA H100 80GB HBM3"

    def nvmlDeviceGetUtilizationRates(self, h):
        self._check("util", h)
        return Util(37 + h, 5)

    def nvmlDeviceGetMemoryInfo(self, h):
        self._check("mem", h)
        return Mem(used=(h * 40_000 + 100) << 20, total=81_559 << 20)

    def nvmlDeviceGetTemperature(self, h, sensor):
        self._check("temp", h)
        return 41

    def nvmlDeviceGetPowerUsage(self, h):
        self._check("power", h)
        return 123_456

    def nvmlDeviceGetPowerManagementLimit(self, h):
        self._check("limit", h)
        return 700_000

    def nvmlDeviceGetComputeRunningProcesses(self, h):
        self._check("procs", h)
        return [Proc(4242, 512 << 20), Proc(4243, None)] if h == 1 else []


def test_full_sample():
    snap = GpuSampler(nvml=FakeNVML()).sample()
    assert snap.ok and len(snap.gpus) == 2
    g0, g1 = snap.gpus
    assert g0.name == "NVIDIA H100 80GB HBM3" and g0.util == 37 and g0.temp_c == 41
    assert g0.mem_used_mb == 100 and g0.mem_total_mb == 81_559
    assert g0.power_w == pytest.approx(123.456) and g0.power_limit_w == 700
    assert g1.processes == [(4242, 512.0), (4243, None)]
    text = format_snapshot(snap)
    assert "GPU 1: NVIDIA H100" in text and "4242 (512 MiB)" in text and "4243 (N/A)" in text
    assert snapshot_dict(snap)["gpus"][0]["index"] == 0


def test_not_supported_blanks_only_that_field():
    snap = GpuSampler(
        nvml=FakeNVML(fail={"power": (NotSupported, 1), "temp": NotSupported})
    ).sample()
    g0, g1 = snap.gpus
    assert g0.power_w == pytest.approx(123.456) and g1.power_w is None
    assert g0.temp_c is None and g1.temp_c is None
    assert g1.util == 38 and g1.mem_used_mb is not None and g1.power_limit_w == 700
    assert "temp N/A" in format_snapshot(snap)


def test_gpu_lost_keeps_the_others():
    snap = GpuSampler(nvml=FakeNVML(lost={0})).sample()
    assert snap.ok and snap.gpus[0].lost and snap.gpus[0].util is None
    assert not snap.gpus[1].lost and snap.gpus[1].util == 38
    assert "GPU 0: lost" in format_snapshot(snap)
    assert free_gpus(snap, busy=set(), free_mem_mb=1e9) == [1]


@pytest.mark.parametrize(
    "err, words", [(DriverNotLoaded, "driver not loaded"), (LibraryNotFound, "library not found")]
)
def test_no_driver_or_library(err, words):
    snap = GpuSampler(nvml=FakeNVML(init_error=err)).sample()
    assert not snap.ok and snap.reason.startswith("no NVIDIA GPU") and words in snap.reason
    assert snap.gpus == [] and free_gpus(snap, set()) == []
    assert format_snapshot(snap) == snap.reason


def test_pynvml_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import raises ImportError
    snap = GpuSampler().sample()
    assert not snap.ok and "not installed" in snap.reason


def test_zero_gpus_and_count_error():
    assert "reports none" in GpuSampler(nvml=FakeNVML(count=0)).sample().reason
    fake = FakeNVML()
    fake.nvmlDeviceGetCount = lambda: (_ for _ in ()).throw(GpuIsLost())
    snap = GpuSampler(nvml=fake).sample()
    assert not snap.ok and snap.reason.startswith("no NVIDIA GPU")


def test_rate_limited_and_force():
    fake = FakeNVML()
    sampler = GpuSampler(nvml=fake, min_interval_s=60)
    first = sampler.sample()
    calls = fake.calls
    assert sampler.sample() is first and fake.calls == calls
    assert sampler.sample(force=True) is not first and fake.calls > calls


def test_free_gpus_threshold_and_busy():
    snap = GpuSampler(nvml=FakeNVML()).sample()  # GPU 0 uses 100 MB, GPU 1 40,100 MB
    assert free_gpus(snap, busy=set()) == [0]
    assert free_gpus(snap, busy={0}) == []
    assert free_gpus(snap, busy=set(), free_mem_mb=50_000) == [0, 1]
    assert free_gpus(GpuSnapshot(ok=False, reason="x"), set()) == []


def test_real_pynvml_on_this_machine_does_not_raise():
    snap = GpuSampler().sample()  # no driver on CI: an explicit no-GPU state
    assert snap.ok or snap.reason.startswith("no NVIDIA GPU")
