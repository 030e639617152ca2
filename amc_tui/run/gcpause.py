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
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc(keep: bool = False) -> Iterator[None]:
    """No cyclic collection inside the block (nested blocks are fine: the outermost one that
    paused it turns it back on). `keep`: what the block made lives as long as the process
    (the app's table of every run), so everything alive is moved out of the collector's sight
    for good (`gc.freeze`) instead of being walked by the passes put off, and by every full
    pass after: 0.15-0.2 s each with 10,000 rows. Reference counting still frees it."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if keep:
            gc.freeze()
        if collecting:
            gc.enable()


def release() -> None:
    """Hand what `keep` froze back to the collector (its owner is going away: an app that
    closes, in a process that goes on, as tests run one app after another)."""
    gc.unfreeze()
