"""Training and inference samples/s of configs/demo.toml on this machine's CPU.

Calls `amc_tui.train.bench.measure_model` in-process: the trainer's code path
(Feed prefetch thread -> on-device rendering -> forward/backward -> AdamW step), time-boxed,
plus its per-batch split (feed, render, forward+backward+step, each alone).

Baselines, measured in the same run on the same batches: for training, the model's
forward+backward+step alone on images rendered beforehand (that split), so the ratio is the
share of the model's own speed the whole pipeline reaches (1.0 = feed and rendering cost
nothing); for inference, the model's forward alone on pre-rendered images.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import torch

from amc_tui.config import Config, from_dict, load_config
from benchmarks.common import Figure, rate_figure

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "configs" / "demo.toml"
# used only when configs/demo.toml is missing (then said in the figure's note)
STAND_IN = {
    "model": {"arch": "resnet18"},
    "image": {"size": 32},
    "train": {"batch_size": 32},
}


QUICK_ARCH = "test_efficientnet"  # timm's tiny test model


def demo_config() -> tuple[Config, str]:
    if DEMO.is_file():
        return load_config(DEMO), "configs/demo.toml"
    return from_dict(STAND_IN), "stand-in (configs/demo.toml missing): resnet18, 32 px, batch 32"


def forward_only_rate(cfg: Config, source: Any, n_mod: int, n_snr: int, batches: int) -> float:
    """Samples/s of model forward (eval, no grad) on images rendered beforehand, batch 2x;
    the model as the trainer builds it (memory format, autocast, compile)."""
    from amc_tui.train.build import build

    net = build(cfg, torch.device("cpu"), n_mod, n_snr)
    net.model.eval()
    bs = 2 * cfg.train.batch_size
    iq, _, _ = source.get(source.order(0, 0, True)[:bs])
    x = net.images(torch.from_numpy(iq)).clone()
    with torch.no_grad(), net.autocast():
        net.forward(x)  # warm-up
        t0 = time.perf_counter()
        for _ in range(batches):
            net.forward(x)
        dt = time.perf_counter() - t0
    return batches * len(x) / dt


def run(files: Any, quick: bool) -> tuple[list[Figure], dict[str, Any]]:
    from amc_tui.train import bench as tb

    cfg, origin = demo_config()
    data = Path(cfg.data.path)
    if not data.is_absolute():
        data = REPO / data
    if not data.is_file():  # the demo file is made by `make demo-data`; use ours instead
        cfg.data.path = str(files.contiguous())
        data_note = f"benchmark synthetic file ({files.fpc} frames per cell)"
    else:
        cfg.data.path = str(data)
        data_note = str(data)
    if quick:  # the smoke test checks the plumbing, not the speed: a 0.1 M-parameter model
        cfg.model.arch, cfg.model.backbone_kwargs = QUICK_ARCH, {}
        cfg.image.size, cfg.train.batch_size = 32, 4
        origin += f" (--quick: {QUICK_ARCH}, 32 px, batch 4)"
    device = torch.device("cpu")
    with contextlib.ExitStack() as stack:
        ds, _ = tb.open_data(cfg, files.root)
        stack.callback(ds.close)
        res = tb.measure_model(cfg, ds.train, len(ds.classes), len(ds.snrs), device,
                               steps=2 if quick else 0, min_s=1.0 if quick else 8.0,
                               warmup=1 if quick else 3)  # fmt: skip
        fwd = forward_only_rate(cfg, ds.train, len(ds.classes), len(ds.snrs), 2 if quick else 10)
    bs = res["batch_size"]
    split = res["split_ms_per_batch"]
    model_only = bs / (split["forward_backward_step"] / 1000.0)
    what = (
        f"{origin}: {res['arch']} {res['channels']}x{res['size']} px, batch {bs}, amp "
        f"{res['amp']}, torch threads {torch.get_num_threads()}, data: {data_note}"
    )
    figs = [
        rate_figure(
            "train_samples_per_s", res["train_samples_per_s"], "samples/s",
            "forward+backward+step alone on pre-rendered images", model_only,
            note=f"whole training step through the trainer's feed and renderer; {what}",
            extra={"split_ms_per_batch": split, "steps": res["train_steps"],
                   "params": res["params"]},
        ),
        rate_figure(
            "infer_samples_per_s", res["infer_samples_per_s"], "samples/s",
            "forward alone on pre-rendered images (eval, no grad)", fwd,
            note=f"feed + render + forward, eval mode, batch {res['infer_batch_size']}; {what}",
        ),
    ]  # fmt: skip
    return figs, {"config": origin, "measure_model": res}
