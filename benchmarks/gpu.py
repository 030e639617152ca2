"""Issue 6's GPU measurement: Swin-T at 224 and 64 px, batch 256, bf16, ~200 steps each.

For a lent GPU box with no network, whose Python has torch, timm, h5py, numpy, pandas and
nvidia-ml-py but not textual or tomli-w. Run from the source tree:

    PYTHONPATH=. python benchmarks/gpu.py --out gpu_results.json     (or benchmarks/gpu.sh)

It makes its own synthetic file, then for each image size runs
`amc_tui.train.bench.measure_model` (the trainer's code path: Feed prefetch thread with pinned
buffers -> rendering on the GPU -> bf16 forward/backward -> fused AdamW) and reports training
and inference samples/s, mean GPU utilisation from NVML during the timed steps, peak memory,
and the per-batch split between feed, rendering and forward/backward/step (each timed alone).

textual and tomli_w are blocked at import (a meta-path finder), so a run here proves the
script would not import them on the box. `--device cpu --size 32 --steps 3` is the CPU
dry run. The whole run stops starting new sizes after `--budget-s` seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.abc
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BLOCKED = ("textual", "tomli_w")
GOAL_SAMPLES_PER_S = 5000.0  # Swin-T 224 px, issue 6
GOAL_UTIL = 90.0
SEED_SAMPLES_PER_S = 780.0  # the seed: 24.4 it/s at batch 32 from PNG files
WINDOW = {224: 7, 64: 8, 32: 4}  # Swin window per image size (64 px: 16x16 patches)


class _Block(importlib.abc.MetaPathFinder):
    """Makes `import textual` / `import tomli_w` fail here as they would on the GPU box."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> None:
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is not installed on the GPU box (blocked by gpu.py)")
        return None


def block_imports() -> None:
    for name in BLOCKED:
        if name in sys.modules:
            raise SystemExit(f"gpu.py: {name} was imported before the blocker")
    sys.meta_path.insert(0, _Block())


def gpu_info() -> dict[str, Any]:
    """Name, driver, memory and power limit from NVML (empty where NVML is missing)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        h = pynvml.nvmlDeviceGetHandleByIndex(0)
        name = pynvml.nvmlDeviceGetName(h)
        info = {
            "gpu": name.decode() if isinstance(name, bytes) else name,
            "driver": pynvml.nvmlSystemGetDriverVersion(),
            "gpu_mem_gb": round(pynvml.nvmlDeviceGetMemoryInfo(h).total / 2**30, 1),
        }
        with contextlib.suppress(pynvml.NVMLError):
            info["power_limit_w"] = round(pynvml.nvmlDeviceGetPowerManagementLimit(h) / 1000)
        return info
    except Exception as e:  # noqa: BLE001 - report, do not fail
        return {"nvml": f"unavailable: {type(e).__name__}"}


def size_config(size: int, args: argparse.Namespace, data: Path) -> Any:
    from amc_tui.config import from_dict

    kwargs = (
        {"window_size": WINDOW.get(size, 4)} if args.arch == "swin_tiny" and size != 224 else {}
    )
    return from_dict(
        {
            "data": {"path": str(data), "classes": "digital", "split": [1.0, 0.0, 0.0]},
            "image": {"size": size},
            "model": {"arch": args.arch, "backbone_kwargs": kwargs},
            "train": {"batch_size": args.batch, "amp": args.amp, "lr": 1e-4,
                      "compile": args.compile},
        }
    )  # fmt: skip


def figures_for(res: dict[str, Any]) -> list[dict[str, Any]]:
    tag = f"{res['arch']}_{res['size']}px_b{res['batch_size']}_{res['amp']}"
    train = float(res["train_samples_per_s"])
    out = [
        {"name": f"gpu_train_samples_per_s[{tag}]", "value": train, "unit": "samples/s",
         "baseline": f"goal {GOAL_SAMPLES_PER_S:g} samples/s (Swin-T 224 px)",
         "baseline_value": GOAL_SAMPLES_PER_S, "ratio": round(train / GOAL_SAMPLES_PER_S, 3),
         "extra": {"seed_samples_per_s": SEED_SAMPLES_PER_S,
                   "vs_seed": round(train / SEED_SAMPLES_PER_S, 2),
                   "split_ms_per_batch": res["split_ms_per_batch"],
                   "peak_mem_gb": res.get("peak_mem_gb"), "steps": res["train_steps"]}},
        {"name": f"gpu_infer_samples_per_s[{tag}]", "value": float(res["infer_samples_per_s"]),
         "unit": "samples/s", "baseline": "training samples/s of the same run",
         "baseline_value": train, "ratio": round(float(res["infer_samples_per_s"]) / train, 3)},
    ]  # fmt: skip
    util = res.get("gpu_util_mean")
    if util is not None:
        out.append({"name": f"gpu_util_percent[{tag}]", "value": util, "unit": "% (NVML mean)",
                    "baseline": f"goal {GOAL_UTIL:g} %", "baseline_value": GOAL_UTIL,
                    "ratio": round(util / GOAL_UTIL, 3)})  # fmt: skip
    return out


def write(result: dict[str, Any], out: str, t_start: float) -> None:
    result["seconds"] = round(time.perf_counter() - t_start, 1)
    Path(out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def versions() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mod in ("numpy", "h5py", "timm"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - report what is there
            out[mod] = None
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="gpu_results.json")
    p.add_argument("--sizes", default="224,64", help="comma-separated image sizes")
    p.add_argument("--size", type=int, default=0, help="one size (overrides --sizes)")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--arch", default="swin_tiny")
    p.add_argument("--amp", default="bf16", choices=("bf16", "fp16", "off"))
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--device", default="cuda")
    p.add_argument("--frames-per-cell", type=int, default=64, help="synthetic file size")
    p.add_argument("--budget-s", type=float, default=270.0, help="start no size after this")
    args = p.parse_args(argv)
    t_start = time.perf_counter()
    block_imports()
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))

    import torch

    from amc_tui.data.source import load_dataset
    from amc_tui.data.synth import synthesize
    from amc_tui.train import bench as tb

    device = torch.device(args.device)  # measure_model applies the trainer's device settings
    sizes = [args.size] if args.size else [int(s) for s in args.sizes.split(",") if s]
    result: dict[str, Any] = {
        "machine": {
            "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__,
            "cuda": torch.version.cuda, "device": str(device),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **gpu_info(),
            **versions(),
        },
        "figures": [], "runs": [], "skipped": [], "errors": [],
    }  # fmt: skip
    if device.type == "cuda":
        result["machine"]["device_name"] = torch.cuda.get_device_name(device)
    with tempfile.TemporaryDirectory(prefix="amc-gpu-bench-") as tmp:
        path = Path(tmp) / "synth.h5"
        t0 = time.perf_counter()
        n = synthesize(path, "digital", args.frames_per_cell, seed=0)
        result["data"] = {"frames": n, "synthesize_s": round(time.perf_counter() - t0, 1)}
        for size in sizes:
            if time.perf_counter() - t_start > args.budget_s:
                result["skipped"].append({"size": size, "why": f"budget {args.budget_s} s spent"})
                continue
            cfg = size_config(size, args, path)
            try:
                ds = load_dataset(cfg.data)
                try:
                    t0 = time.perf_counter()
                    res = tb.measure_model(cfg, ds.train, len(ds.classes), len(ds.snrs), device,
                                           steps=args.steps)  # fmt: skip
                    res["wall_s"] = round(time.perf_counter() - t0, 1)
                    res["data_mode"] = ds.mode
                finally:
                    ds.close()
            except Exception as e:  # noqa: BLE001 - keep the other sizes' results
                import traceback

                result["errors"].append({"size": size, "error": f"{type(e).__name__}: {e}",
                                         "traceback": traceback.format_exc(limit=12)})  # fmt: skip
                print(traceback.format_exc(), file=sys.stderr, flush=True)
                continue
            finally:
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            result["runs"].append(res)
            result["figures"] += figures_for(res)
            print(json.dumps(res), flush=True)
            write(result, args.out, t_start)  # partial results survive a later failure
    leaked = [m for m in BLOCKED if m in sys.modules]
    result["imports_blocked"] = list(BLOCKED)
    result["blocked_modules_imported"] = leaked
    write(result, args.out, t_start)
    print(
        "\n".join(
            f"{f['name']}: {f['value']:,} {f['unit']} (x{f['ratio']} vs {f['baseline']})"
            for f in result["figures"]
        )
    )
    print(f"wrote {args.out} in {result['seconds']} s", flush=True)
    return 1 if leaked or result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
