"""The trainer: the only package that imports torch or timm.

`python -m amc_tui.train --run-dir DIR [--resume]` takes the run's lock (owner.py), then
loop.py trains the dual-head model of model.py on constellation images rendered on the device
(constellation.py) from the frames the data layer supplies (feed.py), with the losses and
weighting of losses.py, metrics of metrics.py, checkpoints of checkpoint.py (their content and
the resume choice in trainstate.py), CPU thread shares of threads.py and the analysis export of
export.py. `python -m amc_tui.train.bench` measures throughput (bench.py).
"""
