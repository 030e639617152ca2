"""One variant of benchmarks/gpu.py, measured in its own process (or one per GPU under
torchrun for the `ddp` variants): the trainer's own build and step, timed in phases.

Phases: build + first step (the time to first step: model, optimizer and compile), the
remaining warm-up steps (CUDA graphs are recorded there), the timed steps under an NVML
sampler, then feed, rendering and the step alone on the same batches, which say how much of
a pipelined step the feed and rendering still cost. The JSON is rewritten after the first
step, so a variant killed by its time limit still reports how long compiling took.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
import traceback
from pathlib import Path
from typing import Any

WINDOW = {224: 7, 64: 8, 32: 4}  # Swin window per image size (64 px: 16x16 patches)


def variant_config(spec: dict[str, Any], args: argparse.Namespace) -> Any:
    from amc_tui.config import from_dict

    size, mode = spec["size"], spec["mode"]
    swin = args.arch.startswith("swin")
    return from_dict({
        "data": {"path": args.data, "classes": "digital", "split": [1.0, 0.0, 0.0]},
        "image": {"size": size},
        "model": {"arch": args.arch,
                  "backbone_kwargs": {"window_size": WINDOW.get(size, 4)}
                  if swin and size != 224 else {}},
        "train": {"batch_size": spec["batch"], "amp": args.amp, "lr": 1e-4,
                  "compile": mode != "eager",
                  "compile_mode": "default" if mode == "eager" else mode,
                  "drop_last": spec["drop_last"]},
    })  # fmt: skip


def _plan(source: Any, batch: int, n: int, rank: int) -> list[Any]:
    """n full batches of shuffled positions, epochs repeated as needed (seed = rank)."""
    from amc_tui.train.feed import plan_batches

    per_epoch = max(1, len(source) // batch)
    out: list[Any] = []
    for epoch in range(math.ceil(n / per_epoch)):
        out += plan_batches(source.order(epoch, rank, True), batch, drop_last=True)
    return out[:n]


def measure(spec: dict[str, Any], args: argparse.Namespace, save: Any) -> dict[str, Any]:
    import torch
    from timm.layers import set_fused_attn, use_fused_attn

    from amc_tui.config import resolve_arch
    from amc_tui.data.source import load_dataset
    from amc_tui.train.bench import _UtilSampler
    from amc_tui.train.build import build, pick_device, visible_gpus
    from amc_tui.train.feed import Feed
    from amc_tui.train.model import count_params

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda_ddp = world > 1 and args.device.startswith("cuda")
    device = pick_device(f"cuda:{local}" if cuda_ddp else args.device)
    cuda = device.type == "cuda"
    if world > 1:
        torch.distributed.init_process_group("nccl" if cuda else "gloo")

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    set_fused_attn(spec["fused_attn"], experimental=True)  # Swin's is "experimental" in timm
    cfg = variant_config(spec, args)
    ds = load_dataset(cfg.data)
    bs = spec["batch"]
    res: dict[str, Any] = {**spec, "arch": resolve_arch(args.arch), "amp": args.amp,
                           "device": str(device), "world_size": world,
                           "data_mode": ds.mode}  # fmt: skip
    try:
        cap = args.warmup + max(args.steps, 1) * 20
        plan = _plan(ds.train, bs, cap, rank)
        t0 = time.perf_counter()
        net = build(cfg, device, len(ds.classes), len(ds.snrs))
        if world > 1:
            from torch.nn.parallel import DistributedDataParallel

            ddp = DistributedDataParallel(net.model, device_ids=[device.index] if cuda else None)
            net.forward = torch.compile(ddp, mode=cfg.train.compile_mode) if cfg.train.compile \
                else ddp  # fmt: skip
        res.update(params=count_params(net.model), channels_last=net.channels_last,
                   cudagraphs=net.cudagraphs, amp=net.amp,
                   timm_fused_attn=use_fused_attn(experimental=True),
                   fused_attn_modules=sum(getattr(m, "fused_attn", False) is True
                                          for m in net.model.modules()))  # fmt: skip

        def step(iq: Any, mod: Any, snr: Any) -> None:
            net.train_step(net.images(iq), mod, snr)

        net.model.train()
        feed = Feed(ds.train, plan, device)
        it = iter(feed)
        step(*next(it))
        sync()
        res["first_step_s"] = round(time.perf_counter() - t0, 2)
        save(res)
        t1 = time.perf_counter()
        for _ in range(max(0, args.warmup - 1)):
            step(*next(it))
        sync()
        res["warmup_s"] = round(time.perf_counter() - t1, 2)
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        gpus = visible_gpus()
        feed.wait_s = 0.0
        k, limit = 0, len(plan) - max(1, args.warmup)
        min_s = args.min_s if world == 1 else 0.0  # every rank must take the same steps
        with _UtilSampler(gpus[device.index or 0] if cuda and gpus else 0) as util:
            sync()
            t1 = time.perf_counter()
            while k < limit and (k < args.steps or time.perf_counter() - t1 < min_s):
                step(*next(it))
                k += 1
            sync()
            dt = time.perf_counter() - t1
        feed.close()
        res.update(timed_steps=k, timed_s=round(dt, 2), samples_per_s=round(k * bs / dt, 1),
                   pipeline_ms=round(1000 * dt / k, 2), gpu_busy_pct=util.mean,
                   feed_wait_share=round(feed.wait_s / dt, 3))  # fmt: skip
        if cuda:
            res["peak_mem_gb"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        res["split_ms"] = split(net, ds.train, bs, device, sync, n=max(2, min(8, args.steps)))
        share = 1 - res["split_ms"]["step_only"] / res["pipeline_ms"]
        res["feed_render_share"] = round(max(0.0, share), 3)
        if world > 1:
            rates: list[Any] = [None] * world
            torch.distributed.all_gather_object(rates, res["samples_per_s"])
            res["per_gpu_samples_per_s"] = round(sum(rates) / world, 1)
            res["samples_per_s"] = round(sum(rates), 1)
            res["rank_samples_per_s"] = rates
            torch.distributed.destroy_process_group()
    finally:
        ds.close()
    return res


def split(net: Any, source: Any, bs: int, device: Any, sync: Any, n: int) -> dict[str, float]:
    """Per batch (ms): the feed alone, rendering alone, the training step alone on images
    rendered beforehand."""
    from amc_tui.train.feed import Feed

    part = _plan(source, bs, n, rank=97)
    t0 = time.perf_counter()
    held = list(Feed(source, part, device))
    sync()
    feed_ms = 1000 * (time.perf_counter() - t0) / len(held)

    def timed(fn: Any) -> float:
        sync()
        t = time.perf_counter()
        for i in range(len(held)):
            fn(i)
        sync()
        return 1000 * (time.perf_counter() - t) / len(held)

    render_ms = timed(lambda i: net.images(held[i][0]))
    imgs = [net.images(h[0]).clone() for h in held]
    step_ms = timed(lambda i: net.train_step(imgs[i], held[i][1], held[i][2]))
    return {"feed": round(feed_ms, 2), "render": round(render_ms, 2),
            "step_only": round(step_ms, 2)}  # fmt: skip


def child(spec: dict[str, Any], args: argparse.Namespace) -> int:
    """Measure one variant; rank 0 writes `--child-out` (also on failure, with the error)."""
    out = Path(args.child_out)
    rank = int(os.environ.get("RANK", "0"))

    def save(res: dict[str, Any]) -> None:
        if rank == 0:
            tmp = out.with_suffix(".tmp")
            tmp.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
            tmp.replace(out)

    try:
        res = measure(spec, args, save)
    except Exception as e:  # noqa: BLE001 - the parent records it and goes on
        traceback.print_exc()
        prev = json.loads(out.read_text()) if out.is_file() else dict(spec)
        save({**prev, "error": f"{type(e).__name__}: {e}"[:800]})
        return 1
    save(res)
    keys = ("name", "samples_per_s", "first_step_s", "gpu_busy_pct", "peak_mem_gb")
    print(json.dumps({k: res.get(k) for k in keys}), flush=True)
    return 0
