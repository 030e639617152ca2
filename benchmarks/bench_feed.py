"""Shuffled batches of frames from the data layer (amc_tui.data.source), against sequential reads.

Each figure draws one epoch's permutation of the train split (`FrameSource.order`) and gathers
it batch by batch with `FrameSource.get`, the call the trainer's feed makes; the baseline reads
the same number of frames of the same file in file order through h5py, batch by batch. The
page cache is warm (the file was just written or read), as on a box that trains for hours.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from amc_tui.config import from_dict
from amc_tui.data.source import Dataset, FrameSource, load_dataset
from benchmarks.common import Figure, rate_figure

SEED = 0


def open_dataset(path: Path, mode: str, ram_dtype: str = "float32") -> tuple[Dataset, float]:
    """The full digital selection of `path` in store `mode`; (dataset, seconds to load)."""
    # every frame in the train part: the feed is measured, not the model (and a quick run's 2
    # frames per cell would leave validation empty, which load_dataset refuses)
    cfg = from_dict(
        {"data": {"path": str(path), "ram_dtype": ram_dtype, "split": [1.0, 0.0, 0.0]}}
    ).data
    t0 = time.perf_counter()
    ds = load_dataset(cfg, mode=mode)  # type: ignore[arg-type]
    return ds, time.perf_counter() - t0


def shuffled_batches(source: FrameSource, batch: int, max_frames: int) -> list[np.ndarray]:
    order = source.order(epoch=0, seed=SEED, shuffle=True)[:max_frames]
    return [order[a : a + batch] for a in range(0, len(order) - batch + 1, batch)]


def timed_rate(fn_batches: list[Any], call: Any, repeats: int, budget_s: float) -> float:
    """Best frames/s over `repeats` passes; a pass stops early after `budget_s` seconds."""
    best = 0.0
    for _ in range(repeats):
        done, t0 = 0, time.perf_counter()
        for b in fn_batches:
            done += call(b)
            if time.perf_counter() - t0 > budget_s:
                break
        best = max(best, done / (time.perf_counter() - t0))
    return best


def gather_rate(
    source: FrameSource, batches: list[np.ndarray], repeats: int, budget_s: float
) -> float:
    def call(idx: np.ndarray) -> int:
        iq, _, _ = source.get(idx)
        return len(iq)

    return timed_rate(batches, call, repeats, budget_s)


def prototype_direct_rate(ds: Dataset, batches: list[np.ndarray], repeats: int,
                          budget_s: float) -> float | None:  # fmt: skip
    """Prototype of a proposed FrameStore.get fix for memmap mode: gather the permuted rows
    straight from the memmap (no np.unique / inverse re-gather). None if the store's private
    layout changed (the fix applied)."""
    store, src = ds.store, ds.train
    mm = getattr(store, "_mm", None)
    if mm is None:
        return None

    def call(idx: np.ndarray) -> int:
        return len(np.asarray(mm[store.rows[src._pos[idx]]], dtype=np.float32))

    return timed_rate(batches, call, repeats, budget_s)


def prototype_torch_half_rate(ds: Dataset, batches: list[np.ndarray], repeats: int,
                              budget_s: float) -> float | None:  # fmt: skip
    """Prototype of a proposed float16 path: gather float16 rows, convert with torch (what the
    trainer's feed could do, on the GPU after a half-size copy, or on the CPU)."""
    import torch

    store, src = ds.store, ds.train
    ram = getattr(store, "_ram", None)
    if ram is None or ram.dtype != np.float16:
        return None

    def call(idx: np.ndarray) -> int:
        return len(torch.from_numpy(ram[src._pos[idx]]).float())

    return timed_rate(batches, call, repeats, budget_s)


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _set_torch_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


def feed_thread_rate(source: FrameSource, batches: list[np.ndarray], repeats: int) -> float:
    """amc_tui.train.feed.Feed on the CPU: the prefetch thread the trainer iterates."""
    import torch

    from amc_tui.train.feed import Feed

    best = 0.0
    for _ in range(repeats):
        t0, done = time.perf_counter(), 0
        for iq, _mod, _snr in Feed(source, batches, torch.device("cpu")):
            done += len(iq)
        best = max(best, done / (time.perf_counter() - t0))
    return best


def sequential_rate(path: Path, batch: int, n: int, repeats: int, budget_s: float) -> float:
    """h5py reads of consecutive `batch`-row slabs of X from the start of the file."""
    with h5py.File(path, "r") as f:
        x = f["X"]
        n = min(n, x.shape[0])
        out = np.empty((batch, *x.shape[1:]), dtype=np.float32)

        def call(a: int) -> int:
            x.read_direct(out, np.s_[a : a + batch], np.s_[0:batch])
            return batch

        return timed_rate(list(range(0, n - batch + 1, batch)), call, repeats, budget_s)


def h5py_fancy_rate(path: Path, batches: list[np.ndarray], rows: np.ndarray, repeats: int,
                    budget_s: float) -> float:  # fmt: skip
    """The naive way: h5py fancy indexing with each batch's sorted file rows."""
    with h5py.File(path, "r") as f:
        x = f["X"]

        def call(idx: np.ndarray) -> int:
            return len(x[np.sort(rows[idx])])

        return timed_rate(batches, call, repeats, budget_s)


def run(files: Any, quick: bool) -> tuple[list[Figure], dict[str, Any]]:
    repeats = 2 if quick else 3
    budget = 0.3 if quick else 2.0
    max_frames = 2048 if quick else 32768
    figs: list[Figure] = []
    contiguous = files.contiguous()
    extra: dict[str, Any] = {}

    # --- contiguous file, memmap store (what "auto" picks when the selection exceeds RAM)
    ds, load_s = open_dataset(contiguous, "memmap")
    extra["frames_in_file"] = ds.n_frames
    extra["train_frames"] = len(ds.train)
    extra["auto_mode_here"] = load_dataset(
        from_dict({"data": {"path": str(contiguous), "split": [1.0, 0.0, 0.0]}}).data
    ).mode  # what the trainer would pick on this machine
    with ds:
        for batch in (32, 256):
            batches = shuffled_batches(ds.train, batch, max_frames)
            n = len(batches) * batch
            rate = gather_rate(ds.train, batches, repeats, budget)
            seq = sequential_rate(contiguous, batch, n, repeats, budget)
            fancy = h5py_fancy_rate(contiguous, batches, ds.train.rows, max(1, repeats - 1), budget)
            proto = prototype_direct_rate(ds, batches, repeats, budget)
            figs.append(
                rate_figure(
                    "feed_shuffled_contiguous" + ("" if batch == 32 else f"_b{batch}"),
                    rate, "frames/s", f"sequential h5py read, batches of {batch}", seq,
                    note=f"FrameStore memmap mode, random batches of {batch} from one epoch's "
                    "permutation of the train split; goal >= 100 k frames/s on one core",
                    extra={"batch": batch, "h5py_fancy_indexing_frames_per_s": round(fancy, 1),
                           "memmap_vs_h5py_fancy": round(rate / fancy, 2),
                           "prototype_direct_memmap_gather_frames_per_s":
                               None if proto is None else round(proto, 1)},
                )
            )  # fmt: skip

    # --- chunked file (256-row chunks, as `synth --chunked` writes)
    chunked = files.chunked(256)
    ds, _ = open_dataset(chunked, "blocks")
    with ds:
        batches = shuffled_batches(ds.train, 32, max_frames)
        rate = gather_rate(ds.train, batches, max(1, repeats - 1), budget)
        seq = sequential_rate(chunked, 32, len(batches) * 32, repeats, budget)
    mem, mem_load_s = open_dataset(chunked, "memory")
    with mem:
        mem_rate = gather_rate(mem.train, batches, repeats, budget)
        figs.append(
            rate_figure(
                "feed_shuffled_chunked", rate, "frames/s",
                "sequential h5py read of the chunked file, batches of 32", seq,
                note="FrameStore blocks mode (sorted rows, one read per chunk span), random "
                "batches of 32; chunks (256, 1024, 2). data.in_memory = auto loads such a "
                "file into RAM when it fits: see feed_shuffled_chunked_memory",
                extra={"batch": 32},
            )
        )  # fmt: skip
        figs.append(
            rate_figure(
                "feed_shuffled_chunked_memory", mem_rate, "frames/s",
                "sequential h5py read of the chunked file, batches of 32", seq,
                note="FrameStore memory mode (float32 RAM copy of the selection) from the "
                "chunked file, random batches of 32",
                extra={"batch": 32, "load_s": round(mem_load_s, 2),
                       "load_frames_per_s": round(mem.store.nbytes / 8192 / mem_load_s, 1),
                       "ram_bytes": mem.store.nbytes},
            )
        )  # fmt: skip
        f32_rate = mem_rate
        f32_bytes = mem.store.nbytes

    # --- float16 RAM store vs float32 RAM store
    half, half_load_s = open_dataset(chunked, "memory", "float16")
    with half:
        half_rate = gather_rate(half.train, batches, repeats, budget)
        torch_threads = _torch_threads()
        _set_torch_threads(1)  # one thread: intra-op threads only add contention for this size
        try:
            proto = prototype_torch_half_rate(half, batches, repeats, budget)
        finally:
            _set_torch_threads(torch_threads)
        figs.append(
            rate_figure(
                "feed_float16_store", half_rate, "frames/s", "float32 RAM store", f32_rate,
                note="FrameStore memory mode with ram_dtype float16 (half the RAM; get() "
                "converts to float32), random batches of 32",
                extra={"batch": 32, "ram_bytes": half.store.nbytes, "float32_ram_bytes": f32_bytes,
                       "load_s": round(half_load_s, 2),
                       "prototype_torch_conversion_1thread_frames_per_s":
                           None if proto is None else round(proto, 1)},
            )
        )  # fmt: skip

    # --- the trainer's prefetch thread (CPU) over the memmap store
    ds, _ = open_dataset(contiguous, "memmap")
    with ds:
        batches = shuffled_batches(ds.train, 32, max_frames)
        direct = gather_rate(ds.train, batches, repeats, budget * 10)
        thread = feed_thread_rate(ds.train, batches, repeats)
        figs.append(
            rate_figure(
                "feed_thread_cpu", thread, "frames/s", "FrameSource.get loop (no thread)", direct,
                note="amc_tui.train.feed.Feed on device cpu (prefetch thread, queue depth 3), "
                "memmap store, batches of 32, whole pass; the consumer does no work, so this is "
                "the hand-over overhead",
                extra={"batch": 32},
            )
        )  # fmt: skip
    extra["memmap_open_s"] = round(load_s, 3)
    return figs, extra
