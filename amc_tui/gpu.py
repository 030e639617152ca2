"""NVML sampling (nvidia-ml-py, `import pynvml`) with a clean no-GPU fallback.

Every NVML failure becomes data, never an exception into a caller: no library, no driver or a
failing init -> `GpuSnapshot(ok=False, reason="no NVIDIA GPU: ...")`; NotSupported (or any error)
on one call -> that field is None (N/A) and the rest of the GPU still shows; a lost GPU keeps
its index with every field None.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

# A GPU counts as free for the queue when no amc-tui run uses it and NVML reports less than
# this much memory in use (a desktop session or a stray process may hold a little).
FREE_MEM_MB = 2048


@dataclass
class GpuStat:
    index: int
    name: str | None = None
    util: float | None = None
    mem_used_mb: float | None = None
    mem_total_mb: float | None = None
    temp_c: float | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    processes: list[tuple[int, float | None]] = field(default_factory=list)
    lost: bool = False

    @property
    def mem_frac(self) -> float | None:
        if self.mem_used_mb is None or not self.mem_total_mb:
            return None
        return self.mem_used_mb / self.mem_total_mb


@dataclass
class GpuSnapshot:
    ok: bool
    reason: str = ""
    gpus: list[GpuStat] = field(default_factory=list)
    t: float = 0.0


class _Lost(Exception):
    """Internal: the GPU fell off the bus mid-sample."""


def _err_name(exc: BaseException) -> str:
    return type(exc).__name__.removeprefix("NVMLError_")


def _reason(exc: BaseException) -> str:
    name = _err_name(exc)
    if name == "LibraryNotFound":
        return "no NVIDIA GPU: NVML library not found (no NVIDIA driver installed)"
    if name == "DriverNotLoaded":
        return "no NVIDIA GPU: driver not loaded"
    if name == "NoPermission":
        return "no NVIDIA GPU: no permission to query NVML"
    return f"no NVIDIA GPU: NVML error: {exc or name}"


def _mb(nbytes: Any) -> float | None:
    return None if nbytes is None else round(float(nbytes) / (1 << 20), 1)


class GpuSampler:
    """Rate-limited NVML sampler: `sample()` returns the cached snapshot when called sooner
    than `min_interval_s` after the last one. Thread-safe; never raises."""

    def __init__(
        self,
        nvml: ModuleType | Any | None = None,
        min_interval_s: float = 1.0,
        retry_init_s: float = 30.0,
    ) -> None:
        self._nvml = nvml
        self.min_interval_s = min_interval_s
        self.retry_init_s = retry_init_s
        self._lock = threading.Lock()
        self._inited = False
        self._init_failed_at: float | None = None
        self._init_reason = ""
        self._last: GpuSnapshot | None = None

    # ------------------------------------------------------------------ init

    def _module(self) -> Any:
        if self._nvml is None:
            import pynvml  # nvidia-ml-py: optional at run time (no driver, no library: N/A)

            self._nvml = pynvml
        return self._nvml

    def _ensure_init(self, now: float) -> str | None:
        """None when NVML is usable, else the no-GPU reason (init retried after a while)."""
        if self._inited:
            return None
        if self._init_failed_at is not None and now - self._init_failed_at < self.retry_init_s:
            return self._init_reason
        try:
            nvml = self._module()
        except ImportError:
            reason = "no NVIDIA GPU: nvidia-ml-py (pynvml) is not installed"
        except Exception as e:  # noqa: BLE001 - a broken install must not reach callers
            reason = f"no NVIDIA GPU: cannot load pynvml: {e}"
        else:
            try:
                nvml.nvmlInit()
                self._inited = True
                return None
            except Exception as e:  # noqa: BLE001
                reason = _reason(e)
        self._init_failed_at = now
        self._init_reason = reason
        return reason

    # ------------------------------------------------------------------ sampling

    def sample(self, force: bool = False) -> GpuSnapshot:
        now = time.time()
        with self._lock:
            if not force and self._last is not None and now - self._last.t < self.min_interval_s:
                return self._last
            self._last = self._sample(now)
            return self._last

    def _sample(self, now: float) -> GpuSnapshot:
        reason = self._ensure_init(now)
        if reason is not None:
            return GpuSnapshot(ok=False, reason=reason, t=now)
        nvml = self._nvml
        try:
            count = int(nvml.nvmlDeviceGetCount())
        except Exception as e:  # noqa: BLE001
            self._inited = False
            self._init_failed_at, self._init_reason = now, _reason(e)
            return GpuSnapshot(ok=False, reason=self._init_reason, t=now)
        if count <= 0:
            return GpuSnapshot(ok=False, reason="no NVIDIA GPU: the driver reports none", t=now)
        return GpuSnapshot(ok=True, gpus=[self._gpu(nvml, i) for i in range(count)], t=now)

    @staticmethod
    def _gpu(nvml: Any, index: int) -> GpuStat:
        stat = GpuStat(index=index)

        def call(fn_name: str, *args: Any) -> Any:
            try:
                return getattr(nvml, fn_name)(*args)
            except Exception as e:  # noqa: BLE001 - NotSupported & co: N/A for this field
                if _err_name(e) == "GpuIsLost":
                    raise _Lost from None
                return None

        try:
            handle = call("nvmlDeviceGetHandleByIndex", index)
            if handle is None:
                stat.lost = True
                return stat
            name = call("nvmlDeviceGetName", handle)
            stat.name = name.decode() if isinstance(name, bytes) else name
            util = call("nvmlDeviceGetUtilizationRates", handle)
            stat.util = None if util is None else float(getattr(util, "gpu", util))
            mem = call("nvmlDeviceGetMemoryInfo", handle)
            if mem is not None:
                stat.mem_used_mb, stat.mem_total_mb = _mb(mem.used), _mb(mem.total)
            temp = call(
                "nvmlDeviceGetTemperature", handle, getattr(nvml, "NVML_TEMPERATURE_GPU", 0)
            )
            stat.temp_c = None if temp is None else float(temp)
            power = call("nvmlDeviceGetPowerUsage", handle)
            stat.power_w = None if power is None else float(power) / 1000.0
            limit = call("nvmlDeviceGetPowerManagementLimit", handle)
            stat.power_limit_w = None if limit is None else float(limit) / 1000.0
            procs = call("nvmlDeviceGetComputeRunningProcesses", handle) or []
            stat.processes = [(int(p.pid), _mb(getattr(p, "usedGpuMemory", None))) for p in procs]
        except _Lost:
            return GpuStat(index=index, lost=True)
        except Exception:  # noqa: BLE001 - odd values from a driver: keep what we have
            pass
        return stat

    def close(self) -> None:
        with self._lock:
            if self._inited:
                with contextlib.suppress(Exception):
                    self._nvml.nvmlShutdown()
                self._inited = False


_default: GpuSampler | None = None


def default_sampler() -> GpuSampler:
    """One process-wide sampler (the launcher and CLI share it)."""
    global _default
    if _default is None:
        _default = GpuSampler()
    return _default


def free_gpus(snap: GpuSnapshot, busy: set[int], free_mem_mb: float = FREE_MEM_MB) -> list[int]:
    """Indices with no amc-tui run on them and little memory in use, in index order."""
    if not snap.ok:
        return []
    return [
        g.index
        for g in snap.gpus
        if not g.lost
        and g.index not in busy
        and (g.mem_used_mb is None or g.mem_used_mb < free_mem_mb)
    ]


def _fmt(value: float | None, spec: str, unit: str = "") -> str:
    return "N/A" if value is None else f"{value:{spec}}{unit}"


def format_snapshot(snap: GpuSnapshot) -> str:
    """The `amc-tui gpus` text: one line per GPU, or the no-GPU reason."""
    if not snap.ok:
        return snap.reason
    lines = []
    for g in snap.gpus:
        if g.lost:
            lines.append(f"GPU {g.index}: lost (fell off the bus)")
            continue
        mem = f"{_fmt(g.mem_used_mb, '.0f')}/{_fmt(g.mem_total_mb, '.0f')} MiB"
        power = f"{_fmt(g.power_w, '.0f')}/{_fmt(g.power_limit_w, '.0f')} W"
        procs = (
            ", ".join(f"{pid} ({_fmt(mb, '.0f', ' MiB')})" for pid, mb in g.processes)
            or "no processes"
        )
        lines.append(
            f"GPU {g.index}: {g.name or 'N/A'}  util {_fmt(g.util, '.0f', '%')}  mem {mem}  "
            f"temp {_fmt(g.temp_c, '.0f', ' C')}  power {power}  {procs}"
        )
    return "\n".join(lines)


def snapshot_dict(snap: GpuSnapshot) -> dict[str, Any]:
    """JSON form for `amc-tui gpus --json`."""

    return dataclasses.asdict(snap)
