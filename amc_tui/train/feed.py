"""The training feed: index batches -> frames on the device, prepared ahead in a thread.

Why a thread and not DataLoader workers: a batch is one batched gather from the frame store
(memmap fancy indexing or an in-RAM array, no per-sample Python), which numpy does mostly
outside the GIL, and the frames are rendered to images on the device afterwards. Worker
processes would add a pickle round trip per batch and a copy of the store per process for no
gain. The thread:

1. gathers batch i + 1, i + 2, ... (`FrameSource.get` on one epoch's permutation) while the
   main thread trains on batch i;
2. on CUDA, copies them into pinned host buffers (a small ring reused across batches) and
   issues `non_blocking` host-to-device copies on a side stream, recording an event;
3. hands (iq, mod, snr) device tensors over a bounded queue.

The main thread makes its stream wait on the event (a device-side wait, no host sync) and
marks the tensors as used on its stream so the caching allocator does not recycle them early.
Batches are positions `start..` of the epoch's order, so a resumed run continues mid-epoch with
exactly the batches it would have seen.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

_DONE = object()


def plan_batches(
    order: np.ndarray, batch_size: int, drop_last: bool, limit: int = 0
) -> list[np.ndarray]:
    """The epoch's batches of positions (the last partial one dropped when asked and there is
    at least one full batch); `limit` > 0 caps their number."""
    n = len(order)
    if drop_last and n >= batch_size:
        n = n - n % batch_size
    out = [order[a : min(a + batch_size, n)] for a in range(0, n, batch_size)]
    return out[:limit] if limit > 0 else out


class Feed:
    """Iterates (iq (B,N,2) float32, mod (B,) int64, snr (B,) int64) on `device`."""

    def __init__(
        self,
        source: Any,
        batches: list[np.ndarray],
        device: torch.device,
        start: int = 0,
        depth: int = 3,
    ) -> None:
        self.source = source
        self.batches = batches
        self.device = device
        self.start = start
        self.depth = max(1, depth)
        self.cuda = device.type == "cuda"
        self._stop = threading.Event()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=self.depth)
        self._thread: threading.Thread | None = None
        self.wait_s = 0.0  # time the consumer spent waiting for data (feed-bound if large)

    def __len__(self) -> int:
        return max(0, len(self.batches) - self.start)

    # ----------------------------------------------------------------- producer

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            if self.cuda:
                self._produce_cuda()
            else:
                for idx in self.batches[self.start :]:
                    if self._stop.is_set():
                        return
                    iq, mod, snr = self.source.get(idx)
                    item = (torch.from_numpy(iq), torch.from_numpy(mod), torch.from_numpy(snr))
                    if not self._put(item):
                        return
            self._put(_DONE)
        except BaseException as e:  # handed to the consumer, which re-raises
            self._put(e)

    def _produce_cuda(self) -> None:
        stream = torch.cuda.Stream(device=self.device)
        slots: list[dict[str, Any]] = []
        n_slots = self.depth + 2  # > queue depth: a slot is never refilled while still queued
        for k, idx in enumerate(self.batches[self.start :]):
            if self._stop.is_set():
                return
            iq, mod, snr = self.source.get(idx)
            b = len(idx)
            if len(slots) < n_slots:
                slots.append({"event": None})
            slot = slots[k % n_slots]
            if slot["event"] is not None:
                slot["event"].synchronize()  # this thread waits; the trainer does not
            if "iq" not in slot or slot["iq"].shape[0] < b:
                slot["iq"] = torch.empty(iq.shape, dtype=torch.float32).pin_memory()
                slot["mod"] = torch.empty(b, dtype=torch.int64).pin_memory()
                slot["snr"] = torch.empty(b, dtype=torch.int64).pin_memory()
            h_iq, h_mod, h_snr = slot["iq"][:b], slot["mod"][:b], slot["snr"][:b]
            h_iq.numpy()[...] = iq
            h_mod.numpy()[...] = mod
            h_snr.numpy()[...] = snr
            with torch.cuda.stream(stream):
                d = tuple(t.to(self.device, non_blocking=True) for t in (h_iq, h_mod, h_snr))
                event = torch.cuda.Event()
                event.record(stream)
            slot["event"] = event
            if not self._put((d, event)):
                return

    # ----------------------------------------------------------------- consumer

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        self._thread = threading.Thread(target=self._produce, name="amc-feed", daemon=True)
        self._thread.start()
        try:
            while True:
                t0 = time.perf_counter()
                item = self._queue.get()
                self.wait_s += time.perf_counter() - t0
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                if self.cuda:
                    tensors, event = item
                    current = torch.cuda.current_stream(self.device)
                    current.wait_event(event)  # device-side wait
                    for t in tensors:
                        t.record_stream(current)
                    yield tensors
                else:
                    yield item
        finally:
            self.close()

    def close(self) -> None:
        self._stop.set()
        while True:  # unblock a producer waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        self._thread = None
