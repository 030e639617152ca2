"""Pausing Python's cyclic garbage collector while a batch of many small objects is made.

Listing 10,000 runs makes hundreds of thousands of small acyclic objects (rows, RunInfo,
cells). Each allocation burst triggers collector passes whose cost grows with everything
already alive (a Textual app holds a large heap): in the app's Runs table they were 40 % of
the time to fill 10,000 rows, in the run index scan as much as the listing itself. Nothing
here is cyclic garbage, so the passes are put off until the batch is made; the collector then
runs as it would have, once.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0  # blocks open, on any thread: the collector is one switch for the process
_was_enabled = False


@contextmanager
def paused_gc(keep: bool = False) -> Iterator[None]:
    """No cyclic collection inside the block, while any thread is in one (the app's poll
    worker and its UI thread both make batches: the last block to end turns the collector
    back on, if it was on). `keep`: what the block made lives as long as its owner (the app's
    table of every run), so everything alive is moved out of the collector's sight
    (`gc.freeze`) instead of being walked by the passes put off, and by every full pass
    after: 0.15-0.2 s each with 10,000 rows. Reference counting still frees what is frozen;
    a reference cycle that was already garbage then waits for `release`."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            if keep:
                gc.freeze()
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()


def release() -> None:
    """Hand what `keep` froze back to the collector (its owner is going away: an app that
    closes, in a process that goes on, as tests run one app after another)."""
    gc.unfreeze()
