"""One evaluation pass over a split (val after each epoch, test at the end).

Eval mode and no grad, otherwise the training step's own rendering, autocast and losses
(`Built`), so validation numbers are computed exactly as the training ones are; frames in
file order, metrics accumulated on the device and copied to the host once at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from amc_tui.train.build import Built
from amc_tui.train.dist import Dist
from amc_tui.train.feed import Feed, plan_batches
from amc_tui.train.metrics import Accumulator, Summary


@torch.no_grad()
def evaluate(
    built: Built, source: Any, n_mod: int, n_snr: int, batch_size: int,
    stop: Callable[[], bool] = lambda: False, dist: Dist | None = None,
) -> Summary | None:  # fmt: skip
    """The split's Summary, or None when `stop()` turned true between batches (the caller
    decides whether to checkpoint first). The model is left in train mode.

    With several processes (`dist`) each rank evaluates its stride of the split, the stop is
    agreed by all of them and the counters are summed: the Summary of one process."""
    dist = dist or Dist()
    acc = Accumulator(n_mod, n_snr, built.device)
    if len(source) == 0:
        return acc.summary()
    built.model.eval()
    dist.sync_buffers(built.model)
    order = dist.shard(np.arange(len(source), dtype=np.int64))
    batches = plan_batches(order, batch_size, drop_last=False)
    feed = Feed(source, batches, built.device)
    try:
        for iq, mod, snr in feed:
            if dist.agree(stop()):
                feed.close()
                return None
            with built.autocast():
                mod_logits, snr_logits = built.forward(built.images(iq))
            lm, ls = built.losses(mod_logits, snr_logits, mod, snr)
            acc.update(mod_logits, snr_logits, mod, snr, lm, ls)
        # a shorter shard: as many stop agreements as the longest one makes
        for _ in range(dist.eval_steps(len(source), batch_size) - len(batches)):
            if dist.agree(stop()):
                return None
    finally:
        built.model.train()
    return dist.summary(acc)
