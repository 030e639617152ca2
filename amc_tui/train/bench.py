"""`amc-tui bench [CONFIG] [--json]`: throughput of a config on this machine's device.

Runs `python -m amc_tui.train.bench [CONFIG] --workspace WS [--json] [--gpu]` (the CLI
spawns it, so only this process imports torch). It measures, in one run:

- training samples/s of the config's model: feed + on-device rendering + the trainer's own
  step (`build.build` and `Built.train_step`: the same device settings, parameter groups,
  AMP and GradScaler, gradient clipping and compile), and the time split between feed,
  rendering and forward/backward/step measured separately;
- inference samples/s (eval mode, no grad, batch 2x);
- rendering frames/s of `constellation.Renderer` against a per-frame `np.histogram2d` loop at
  the same size (the config's size, and 64 and 224 px), with the number of samples whose bin
  differs (0 = identical counts).

The data is the config's file when it exists, else a synthetic file made in a temp folder.
`--gpu` is the preset of issue 6 for a lent GPU box: Swin-T at 224 and 64 px, batch 256, bf16,
~200 steps each, GPU utilisation from NVML, peak memory.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from amc_tui.config import Config, from_dict, load_config, resolve_arch
from amc_tui.data.source import load_dataset
from amc_tui.data.synth import make_cell, synthesize
from amc_tui.errors import UserError
from amc_tui.gpu import GpuSampler
from amc_tui.train.build import build, pick_device, visible_gpus
from amc_tui.train.constellation import (
    Renderer,
    bin_counts,
    channel_ranges,
    reference_counts,
    unit_power,
)
from amc_tui.train.feed import Feed, plan_batches
from amc_tui.train.model import count_params

RENDER_BATCH = 256


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
    }
    with contextlib.suppress(OSError):
        info["load_avg"] = [round(x, 2) for x in os.getloadavg()]
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


# --------------------------------------------------------------------------- rendering


def measure_render(
    size: int, frames: np.ndarray, channels: int = 1, range_: float = 3.0, min_s: float = 1.0
) -> dict[str, Any]:
    """Renderer (CPU, batches of 256) vs a per-frame np.histogram2d loop on the same frames;
    best of repeats until `min_s`. `mismatched_samples` counts bins that differ."""
    x = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32))
    renderer = Renderer(size, range_, "log1p", channels)

    def run_renderer() -> None:
        for a in range(0, len(x), RENDER_BATCH):
            renderer(x[a : a + RENDER_BATCH])

    unit = unit_power(x).numpy()

    def run_loop() -> None:
        reference_counts(unit, size, range_)

    fast = _best_rate(run_renderer, len(x), min_s)
    slow = _best_rate(run_loop, len(x), min_s)
    counts = bin_counts(unit_power(x), size, channel_ranges(range_, 1))[:, 0].numpy()
    diff = int(np.abs(counts - reference_counts(unit, size, range_)).sum())
    return {
        "size": size,
        "frames_per_s": round(fast, 1),
        "histogram2d_loop_frames_per_s": round(slow, 1),
        "speedup": round(fast / slow, 2) if slow else None,
        "mismatched_samples": diff,
        "frames": len(x),
    }


def _best_rate(fn: Any, items: int, min_s: float, repeats: int = 2) -> float:
    best, spent, k = float("inf"), 0.0, 0
    while k < repeats or spent < min_s:
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        best, spent, k = min(best, dt), spent + dt, k + 1
    return items / best


# --------------------------------------------------------------------------- training


class _UtilSampler:
    """Mean GPU utilisation from NVML over a phase (None where NVML is missing)."""

    def __init__(self, index: int = 0) -> None:
        self.index, self.samples = index, []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        try:
            self._sampler: Any = GpuSampler()
        except Exception:  # noqa: BLE001
            self._sampler = None

    def __enter__(self) -> _UtilSampler:
        if self._sampler is not None:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            with contextlib.suppress(Exception):
                snap = self._sampler.sample(force=True)
                for g in snap.gpus if snap.ok else []:
                    if g.index == self.index and g.util is not None:
                        self.samples.append(float(g.util))

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    @property
    def mean(self) -> float | None:
        return round(sum(self.samples) / len(self.samples), 1) if self.samples else None


def measure_model(
    cfg: Config,
    source: Any,
    n_mod: int,
    n_snr: int,
    device: torch.device,
    steps: int = 0,
    min_s: float = 5.0,
    warmup: int = 3,
) -> dict[str, Any]:
    """Training and inference samples/s through the trainer's code path, and the split.

    `steps` > 0 times exactly that many steps; else as many as fit in `min_s` (at least 3).
    """
    im, m, t = cfg.image, cfg.model, cfg.train
    torch.manual_seed(0)
    net = build(cfg, device, n_mod, n_snr)
    cuda = device.type == "cuda"
    bs = t.batch_size

    def train_step(
        iq: torch.Tensor, mod: torch.Tensor, snr: torch.Tensor, x: torch.Tensor | None = None
    ) -> None:
        net.train_step(net.images(iq) if x is None else x, mod, snr)

    def batches(n: int, size: int, epoch: int = 0) -> list[np.ndarray]:
        order = source.order(epoch, 0, True)
        reps = math.ceil(n * size / max(1, len(order)))
        order = (
            np.concatenate([source.order(epoch + r, 0, True) for r in range(reps)])
            if reps > 1
            else order
        )
        return plan_batches(order, size, drop_last=True, limit=n)

    def timed(fn: Any, n_max: int) -> tuple[int, float]:
        """Run fn(i) until n_max calls or min_s (steps=0); returns (calls, seconds)."""
        _sync(device)
        t0 = time.perf_counter()
        k = 0
        while k < n_max:
            fn(k)
            k += 1
            if not steps and k >= 3 and time.perf_counter() - t0 >= min_s:
                break
        _sync(device)
        return k, time.perf_counter() - t0

    n_max = steps or 10_000
    out: dict[str, Any] = {
        "arch": resolve_arch(m.arch), "params": count_params(net.model), "size": im.size,
        "channels": im.channels, "batch_size": bs, "amp": net.amp, "device": str(device),
        "channels_last": net.channels_last, "compile": t.compile, "grad_clip": net.grad_clip,
        "grad_scaler": net.scaler.is_enabled(), "torch_threads": torch.get_num_threads(),
    }  # fmt: skip

    # full pipeline: Feed (prefetch thread) -> render -> forward/backward -> step
    net.model.train()
    plan = batches(warmup + n_max if steps else warmup + 400, bs)
    feed_iter = iter(Feed(source, plan, device))
    for _ in range(warmup):
        train_step(*next(feed_iter))
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    gpus, idx = visible_gpus(), device.index or 0
    with _UtilSampler(gpus[idx] if idx < len(gpus) else idx) as util:  # NVML's numbering
        k, dt = timed(lambda i: train_step(*next(feed_iter)), min(n_max, len(plan) - warmup))
    with contextlib.suppress(Exception):
        feed_iter.close()  # type: ignore[attr-defined]
    out["train_samples_per_s"] = round(k * bs / dt, 1)
    out["train_steps"] = k
    out["gpu_util_mean"] = util.mean
    if cuda:
        out["peak_mem_gb"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)

    # the split: each part alone on the same batches (per batch, milliseconds)
    n_part = max(3, min(k, 20))
    part = batches(n_part, bs, epoch=7)
    t0 = time.perf_counter()
    held = []
    for iq, mod, snr in Feed(source, part, device):
        held.append((iq, mod, snr))
    _sync(device)
    tf = time.perf_counter() - t0
    kr, tr = timed(lambda i: net.images(held[i % len(held)][0]), n_part)
    imgs = [net.images(h[0]).clone() for h in held[: min(len(held), 8)]]
    kb, tb = timed(lambda i: train_step(*held[i % len(held)], x=imgs[i % len(imgs)]), n_part)
    out["split_ms_per_batch"] = {
        "feed": round(1000 * tf / len(held), 2),
        "render": round(1000 * tr / kr, 2),
        "forward_backward_step": round(1000 * tb / kb, 2),
    }

    # inference: eval mode, no grad, batch 2x
    net.model.eval()
    ibs = 2 * bs
    iplan = batches(n_max if steps else 200, ibs, epoch=3)
    it = iter(Feed(source, iplan, device))

    def infer(i: int) -> None:
        iq, _, _ = next(it)
        with torch.no_grad(), net.autocast():
            net.forward(net.images(iq))

    for _ in range(min(2, len(iplan) - 1)):
        infer(0)
    ki, ti = timed(infer, len(iplan) - min(2, len(iplan) - 1))
    with contextlib.suppress(Exception):
        it.close()  # type: ignore[attr-defined]
    out["infer_samples_per_s"] = round(ki * ibs / ti, 1)
    out["infer_batch_size"] = ibs
    return out


# --------------------------------------------------------------------------- data


def open_data(cfg: Config, tmp: Path, frames_per_cell: int = 64) -> tuple[Any, str]:
    """The config's dataset, or a synthetic one in `tmp` when its file is missing."""

    path = Path(cfg.data.path)
    note = str(path)
    if not path.is_file():
        path = tmp / f"bench-{frames_per_cell}.h5"
        if not path.is_file():  # one synthetic file per bench run, shared by its configs
            synthesize(path, classes=cfg.data.classes, frames_per_cell=frames_per_cell,
                       snr_min=cfg.data.snr_min, snr_max=cfg.data.snr_max, seed=0)  # fmt: skip
        note = f"synthetic ({frames_per_cell} frames per cell; {cfg.data.path} not found)"
    cfg.data.path = str(path)
    cfg.data.frames_per_cell = 0
    cfg.data.split = [1.0, 0.0, 0.0]
    return load_dataset(cfg.data), note


def gpu_configs() -> list[Config]:
    """Issue 6's GPU preset: Swin-T, batch 256, bf16, at 224 and 64 px."""
    out = []
    for size, window in ((224, 7), (64, 8)):
        raw = {
            "data": {"path": "/nonexistent/bench-gpu.h5", "classes": "digital"},
            "image": {"size": size},
            "model": {
                "arch": "swin_tiny",
                "backbone_kwargs": {} if size == 224 else {"window_size": window},
            },
            "train": {"batch_size": 256, "amp": "bf16", "lr": 1e-4},
        }
        out.append(from_dict(raw))
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    ws = Path(args.workspace or ".").resolve()
    device = pick_device(args.device or "auto")
    if args.threads:
        torch.set_num_threads(args.threads)  # the rendering comparison too
    report: dict[str, Any] = {"machine": machine(), "device": str(device), "runs": [], "render": []}
    if args.gpu:
        cfgs = [("swin_tiny-gpu-preset", c) for c in gpu_configs()]
    else:
        path = Path(args.config) if args.config else ws / "configs" / "demo.toml"
        if not path.is_file():
            raise UserError(f"config not found: {path} (give a config file)")
        cfg = load_config(path)
        p = Path(cfg.data.path).expanduser()
        cfg.data.path = str(p if p.is_absolute() else ws / p)
        cfgs = [(str(path), cfg)]
    for _, c in cfgs:
        c.train.batch_size = args.batch_size or c.train.batch_size
        c.train.threads = args.threads or c.train.threads
    with tempfile.TemporaryDirectory(prefix="amc-bench-") as tmp:
        for name, cfg in cfgs:
            ds, note = open_data(cfg, Path(tmp), frames_per_cell=args.frames_per_cell)
            try:
                res = measure_model(
                    cfg,
                    ds.train,
                    len(ds.classes),
                    len(ds.snrs),
                    device,
                    steps=args.steps,
                    min_s=args.min_s,
                )
            finally:
                ds.close()
            res.update(config=name, data=note)
            report["runs"].append(res)
        sizes = sorted({64, 224, *(c.image.size for _, c in cfgs)})
        rng = np.random.default_rng(0)

        frames = np.concatenate(
            [
                make_cell(c, s, 4, seed=1)
                for c in ("QPSK", "16QAM", "64APSK")
                for s in (0, 10, 20, 30)
            ]
        )
        n = max(1, args.render_frames)
        frames = np.concatenate([frames] * math.ceil(n / len(frames)))[:n]
        frames = frames[rng.permutation(len(frames))]
        for size in sizes:
            report["render"].append(measure_render(size, frames, min_s=args.render_min_s))
    report["figures"] = figures(report)
    return report


def figures(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue 6 figure records: {name, value, unit, baseline, baseline_value, ratio}."""
    out = []
    for r in report["render"]:
        out.append({
            "name": f"render_cpu_{r['size']}", "value": r["frames_per_s"], "unit": "frames/s",
            "baseline": "histogram2d_loop", "baseline_value": r["histogram2d_loop_frames_per_s"],
            "ratio": r["speedup"], "mismatched_samples": r["mismatched_samples"],
        })  # fmt: skip
    for r in report["runs"]:
        tag = f"{r['arch']}_{r['size']}px_b{r['batch_size']}_{r['amp']}"
        for key in ("train_samples_per_s", "infer_samples_per_s"):
            out.append({"name": f"{key}[{tag}]", "value": r[key], "unit": "samples/s",
                        "baseline": None, "baseline_value": None, "ratio": None})  # fmt: skip
    return out


def format_report(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"device {report['device']}  torch {m['torch']}  {m['cores']} cores, {m['torch_threads']} threads"
        + (f"  load {m['load_avg']}" if "load_avg" in m else "")
    ]
    for r in report["runs"]:
        lines.append(
            f"{r['arch']} {r['channels']}x{r['size']}px batch {r['batch_size']} amp {r['amp']} "
            f"({r['params']:,} params; data {r['data']})"
        )
        split = r["split_ms_per_batch"]
        lines.append(
            f"  train {r['train_samples_per_s']:,.1f} samples/s ({r['train_steps']} steps)   "
            f"infer {r['infer_samples_per_s']:,.1f} samples/s"
            + (f"   GPU util {r['gpu_util_mean']}%" if r.get("gpu_util_mean") is not None else "")
            + (f"   peak {r['peak_mem_gb']} GB" if "peak_mem_gb" in r else "")
        )
        lines.append(
            f"  per batch: feed {split['feed']} ms, render {split['render']} ms, "
            f"forward+backward+step {split['forward_backward_step']} ms"
        )
    for r in report["render"]:
        lines.append(
            f"render {r['size']:>3} px: {r['frames_per_s']:>9,.0f} frames/s vs histogram2d loop "
            f"{r['histogram2d_loop_frames_per_s']:>7,.0f} = {r['speedup']}x, "
            f"{r['mismatched_samples']} samples in a different bin"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="amc-tui bench", description=__doc__.splitlines()[0])
    p.add_argument("config", nargs="?", help="config file (default: WORKSPACE/configs/demo.toml)")
    p.add_argument("--workspace", default=None)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--gpu", action="store_true", help="issue 6 GPU preset (Swin-T 224/64 px, batch 256, bf16)"
    )
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda if present)")
    p.add_argument("--steps", type=int, default=0, help="timed steps (default: time-boxed)")
    p.add_argument(
        "--min-s", type=float, default=5.0, help="seconds per timed phase when --steps is 0"
    )
    p.add_argument("--render-min-s", type=float, default=1.0)
    p.add_argument("--render-frames", type=int, default=512, help="frames per rendering pass")
    p.add_argument(
        "--frames-per-cell", type=int, default=64, help="synthetic file size when needed"
    )
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=0, help="override train.batch_size")
    p.add_argument("--out", default=None, help="also write the JSON report here")
    args = p.parse_args(argv)
    if args.gpu and not args.steps:
        args.steps = 200
    try:
        report = run(args)
    except UserError as e:
        print(f"amc-tui: error: {e}", file=sys.stderr)
        return 2
    text = json.dumps(report, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text if args.json else format_report(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
