"""Swin-T training throughput on one GPU, lever by lever: bf16, 224 and 64 px, batch 256.

For a lent GPU box with no network, whose Python has torch, timm, h5py, numpy, pandas and
nvidia-ml-py but not textual or tomli-w. Run from the source tree:

    PYTHONPATH=. python benchmarks/gpu.py --out gpu_results.json     (or benchmarks/gpu.sh)

It makes its own synthetic file, then measures the named variants of `VARIANTS` in order,
each in its own process (its own compile and CUDA memory, the on-disk kernel cache shared;
a variant that hangs or crashes is killed or recorded and the next one runs). Every variant
goes through the trainer's code path (`build.build`, `Feed` prefetch with pinned buffers,
rendering on the device, `Built.train_step`) and reports samples/s, time to the first step
(model build and compile), GPU busy % from NVML, peak memory, the feed's wait share, and
feed, rendering and the step alone per batch. Variants that pick "best" take what helped
before them: the fastest compile mode at their size, fused attention only where it beat
the plain one.

The run starts no variant whose estimated cost (H200 seconds, `est_s`) no longer fits in
`--budget-s`, writes the JSON after each variant, and ends with rc 1 when a variant failed.
textual and tomli_w are blocked at import (a meta-path finder), as the box lacks them.
CPU dry run: `--device cpu --size 32 --batch 4 --steps 2 --amp off` (the CUDA-only variants
are then recorded as skipped).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.abc
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BLOCKED = ("textual", "tomli_w")
GOALS = {224: 6000.0, 64: 30000.0}  # samples/s on one H100/H200, bf16
BEST = "best"  # a variant field chosen from the variants measured before it
EAGER = "eager"
CUDAGRAPH_MODES = ("reduce-overhead", "max-autotune")


@dataclass(frozen=True)
class Variant:
    name: str
    size: int  # the size group: 224 or 64 (`--size` overrides the pixels, not the group)
    mode: str  # "eager", a torch.compile mode, or BEST
    fused_attn: bool | str = BEST  # timm's F.scaled_dot_product_attention in Swin
    batch_mult: int = 1  # x --batch
    est_s: float = 60.0  # H200 seconds incl. process start and compile (skip when short)
    ddp: bool = False  # all GPUs, torchrun; figure = samples/s per GPU vs one GPU
    note: str = ""


# In priority order: what the budget leaves out comes last.
VARIANTS = (
    Variant("eager_224", 224, EAGER, False, est_s=35, note="the reference"),
    Variant("eager-fused-attn_224", 224, EAGER, True, est_s=35, note="fused attention on"),
    Variant("eager_64", 64, EAGER, False, est_s=25),
    Variant("reduce-overhead_64", 64, "reduce-overhead", est_s=110, note="CUDA graphs"),
    Variant("b1024_64", 64, BEST, batch_mult=4, est_s=100),
    Variant("compile_224", 224, "default", est_s=110),
    Variant("compile_64", 64, "default", est_s=70),
    Variant("reduce-overhead_224", 224, "reduce-overhead", est_s=80, note="CUDA graphs"),
    Variant("b512_64", 64, BEST, batch_mult=2, est_s=80),
    Variant("eager-fused-attn_64", 64, EAGER, True, est_s=25, note="fused attention on"),
    Variant("ddp_224", 224, BEST, est_s=150, ddp=True),
    Variant("ddp_64", 64, BEST, est_s=120, ddp=True),
    Variant("max-autotune_64", 64, "max-autotune", est_s=300),
    Variant("max-autotune_224", 224, "max-autotune", est_s=420),
)
NAMES = tuple(v.name for v in VARIANTS)


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
    """Name, driver, memory, power limit and GPU count from NVML (empty where it is missing)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        h = pynvml.nvmlDeviceGetHandleByIndex(0)
        name = pynvml.nvmlDeviceGetName(h)
        info = {
            "gpu": name.decode() if isinstance(name, bytes) else name,
            "gpu_count": pynvml.nvmlDeviceGetCount(),
            "driver": pynvml.nvmlSystemGetDriverVersion(),
            "gpu_mem_gb": round(pynvml.nvmlDeviceGetMemoryInfo(h).total / 2**30, 1),
        }
        with contextlib.suppress(pynvml.NVMLError):
            info["power_limit_w"] = round(pynvml.nvmlDeviceGetPowerManagementLimit(h) / 1000)
        return info
    except Exception as e:  # noqa: BLE001 - report, do not fail
        return {"nvml": f"unavailable: {type(e).__name__}"}


def versions() -> dict[str, Any]:
    """Installed versions, read from the package metadata (importing torch here would cost
    the parent seconds for nothing)."""
    from importlib import metadata

    out: dict[str, Any] = {}
    for dist in ("torch", "numpy", "h5py", "timm"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


# --------------------------------------------------------------------------- choices


def _measured(results: dict[str, Any], size: int, batch_mult: int = 1) -> list[dict]:
    return [
        r for r in results.values()
        if r.get("group") == size and r.get("batch_mult") == batch_mult and not r.get("ddp")
        and r.get("samples_per_s")
    ]  # fmt: skip


def best_fused(results: dict[str, Any], size: int) -> tuple[bool, str]:
    """Fused attention when its eager figure beat the plain one by 3 % (at this size, else at
    the other); off when neither pair was measured."""
    for s in (size, *(g for g in GOALS if g != size)):
        on, off = results.get(f"eager-fused-attn_{s}", {}), results.get(f"eager_{s}", {})
        if on.get("samples_per_s") and off.get("samples_per_s"):
            gain = on["samples_per_s"] / off["samples_per_s"]
            return gain > 1.03, f"fused attention x{gain:.2f} in eager at {s} px"
    return False, "fused attention not measured: off"


def best_mode(results: dict[str, Any], size: int, graphs: bool = True) -> tuple[str, str]:
    """The fastest mode measured at this size with the base batch (CUDA-graph modes only
    when `graphs`); eager when nothing was."""
    runs = [r for r in _measured(results, size) if graphs or r["mode"] not in CUDAGRAPH_MODES]
    if not runs:
        return EAGER, "no mode measured at this size: eager"
    top = max(runs, key=lambda r: r["samples_per_s"])
    return top["mode"], f"fastest at {size} px: {top['name']} ({top['samples_per_s']:,.0f}/s)"


def resolve(v: Variant, results: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The concrete spec a child measures: pixels, batch, mode and attention decided."""
    why = []
    mode = v.mode
    if mode == BEST:
        mode, reason = best_mode(results, v.size, graphs=not v.ddp)
        why.append(reason)
    fused = v.fused_attn
    if fused == BEST:
        fused, reason = best_fused(results, v.size)
        why.append(reason)
    spec = {
        "name": v.name, "group": v.size, "size": args.size or v.size, "mode": mode,
        "fused_attn": bool(fused), "batch": args.batch * v.batch_mult,
        "batch_mult": v.batch_mult, "ddp": v.ddp, "drop_last": True, "why": why,
    }  # fmt: skip
    if v.ddp:  # the one-GPU figure of the same mode and batch is its baseline
        same = [r for r in _measured(results, v.size) if r["mode"] == mode]
        same = [r for r in same if r["fused_attn"] == spec["fused_attn"]] or same
        if same:
            spec["one_gpu_samples_per_s"] = max(r["samples_per_s"] for r in same)
    return spec


# --------------------------------------------------------------------------- parent


def child_cmd(spec: dict[str, Any], args: argparse.Namespace, data: Path, out: Path,
              gpus: int) -> list[str]:  # fmt: skip
    common = [
        "--child", json.dumps(spec), "--data", str(data), "--child-out", str(out),
        "--arch", args.arch, "--amp", args.amp, "--device", args.device,
        "--steps", str(args.steps), "--min-s", str(args.min_s), "--warmup", str(args.warmup),
    ]  # fmt: skip
    me = str(Path(__file__).resolve())
    if spec["ddp"]:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone",
                f"--nproc_per_node={gpus}", me, *common]  # fmt: skip
    return [sys.executable, me, *common]


def run_child(spec: dict[str, Any], args: argparse.Namespace, data: Path, tmp: Path,
              timeout_s: float, gpus: int) -> dict[str, Any]:  # fmt: skip
    """One variant in its own process; its JSON (partial when it was cut short) plus the
    wall time and, on failure, the end of its output."""
    out, log = tmp / f"{spec['name']}.json", tmp / f"{spec['name']}.log"
    t0 = time.perf_counter()
    if args.in_process:  # dry runs: one torch import for all variants
        from benchmarks.gpu_child import child

        child(spec, argparse.Namespace(**{**vars(args), "data": str(data), "child_out": str(out)}))
        res = json.loads(out.read_text())
        res["wall_s"] = round(time.perf_counter() - t0, 1)
        return res
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    rc: int | str
    with open(log, "w", encoding="utf-8") as fh:
        proc = subprocess.Popen(
            child_cmd(spec, args, data, out, gpus),
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        try:
            rc = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            rc = f"timeout after {timeout_s:.0f} s"
        finally:  # its whole group (torchrun's workers too), also when this run is stopped
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = log.read_text(encoding="utf-8", errors="replace")
    sys.stdout.write(text)
    res = json.loads(out.read_text()) if out.is_file() else dict(spec)
    res["wall_s"] = round(time.perf_counter() - t0, 1)
    if rc != 0 and "error" not in res:
        res["error"] = rc if isinstance(rc, str) else f"exit code {rc}"
    if "error" in res:
        res["log_tail"] = text[-2500:]
    return res


def figures_for(res: dict[str, Any]) -> list[dict[str, Any]]:
    from benchmarks.common import rate_figure

    goal = GOALS[res["group"]]
    extra = {k: res.get(k) for k in (
        "size", "batch", "mode", "fused_attn", "first_step_s", "gpu_busy_pct", "peak_mem_gb",
        "feed_render_share", "split_ms", "timed_steps")}  # fmt: skip
    name = f"gpu_train_samples_per_s[{res['name']}]"
    if res.get("ddp"):
        base = res.get("one_gpu_samples_per_s")
        value = res["per_gpu_samples_per_s"]
        if not base:
            return []
        return [
            rate_figure(
                name,
                value,
                "samples/s per GPU",
                "one GPU, same mode and batch",
                base,
                extra={**extra, "world_size": res["world_size"]},
            ).to_dict()
        ]
    return [rate_figure(name, res["samples_per_s"], "samples/s",
                        f"goal {goal:g} samples/s at {res['group']} px", goal,
                        extra=extra).to_dict()]  # fmt: skip


def summary(results: dict[str, Any]) -> dict[str, Any]:
    """Per size group: the fastest variant against its goal, and the 64 px batch sweep."""
    out: dict[str, Any] = {}
    for size, goal in GOALS.items():
        runs = [r for r in results.values() if r.get("group") == size and not r.get("ddp")
                and r.get("samples_per_s")]  # fmt: skip
        if runs:
            top = max(runs, key=lambda r: r["samples_per_s"])
            out[f"best_{size}"] = {"variant": top["name"], "samples_per_s": top["samples_per_s"],
                                   "goal": goal, "met": top["samples_per_s"] >= goal}  # fmt: skip
    base, _ = best_mode(results, 64)
    sweep = {}
    for mult in (1, 2, 4):
        runs = [r for r in _measured(results, 64, mult) if mult > 1 or r["mode"] == base]
        if runs:
            r = max(runs, key=lambda r: r["samples_per_s"])
            sweep[str(r["batch"])] = {"variant": r["name"], "mode": r["mode"],
                                      "samples_per_s": r["samples_per_s"]}  # fmt: skip
    out["batch_sweep_64"] = sweep
    return out


def write(result: dict[str, Any], out: str, t_start: float) -> None:
    result["seconds"] = round(time.perf_counter() - t_start, 1)
    Path(out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def table(result: dict[str, Any]) -> str:
    lines = ["| variant | px | batch | mode | fused attn | samples/s | first step s | GPU busy % "
             "| peak GB | feed+render share |", "|" + "---|" * 10]  # fmt: skip
    for name, r in result["variants"].items():
        if not r.get("samples_per_s"):
            why = r.get("error") or r.get("skipped") or "?"
            lines.append(f"| {name} | | | | | {str(why)[:60]} | | | | |")
            continue
        sps = f"{r['samples_per_s']:,.0f}" + (
            f" ({r['per_gpu_samples_per_s']:,.0f}/GPU x{r['world_size']})" if r.get("ddp") else ""
        )
        lines.append(
            f"| {name} | {r['size']} | {r['batch']} | {r['mode']} | {r['fused_attn']} | {sps} "
            f"| {r.get('first_step_s')} | {r.get('gpu_busy_pct')} | {r.get('peak_mem_gb')} "
            f"| {r.get('feed_render_share')} |"
        )
    return "\n".join(lines)


def selected(args: argparse.Namespace) -> set[str]:
    only = {n for n in args.only.split(",") if n} or set(NAMES)
    unknown = (only | {n for n in args.skip.split(",") if n}) - set(NAMES)
    if unknown:
        raise SystemExit(f"gpu.py: unknown variant(s) {sorted(unknown)}; known: {list(NAMES)}")
    return only - set(args.skip.split(","))


def parent(args: argparse.Namespace) -> int:
    t_start = time.perf_counter()
    chosen = selected(args)
    from amc_tui.data.synth import synthesize

    cuda = args.device.startswith("cuda")
    info = gpu_info()
    gpus = int(info.get("gpu_count", 0)) if cuda else 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:  # NVML counts every GPU, torchrun's workers see these
        gpus = min(gpus, len([x for x in visible.split(",") if x.strip()]))
    result: dict[str, Any] = {
        "machine": {
            "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "python": platform.python_version(), "device": args.device,
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **info, **versions(),
        },
        "settings": {k: getattr(args, k) for k in ("arch", "amp", "batch", "steps", "min_s",
                                                    "warmup", "budget_s", "size")},
        "goals": {str(k): v for k, v in GOALS.items()},
        "variant_table": [asdict(v) for v in VARIANTS],
        "variants": {}, "figures": [], "errors": [],
    }  # fmt: skip
    results: dict[str, Any] = result["variants"]
    with tempfile.TemporaryDirectory(prefix="amc-gpu-bench-") as tmp_s:
        tmp = Path(tmp_s)
        data = tmp / "synth.h5"
        t0 = time.perf_counter()
        n = synthesize(data, "digital", args.frames_per_cell, seed=0)
        result["data"] = {"frames": n, "synthesize_s": round(time.perf_counter() - t0, 1)}
        for v in VARIANTS:
            left = args.budget_s - (time.perf_counter() - t_start)
            skip = (
                "not selected" if v.name not in chosen
                else f"needs CUDA (device {args.device})" if (v.mode not in (EAGER, BEST)
                or v.ddp) and not cuda and not args.cpu_compile
                else f"needs 2+ GPUs ({gpus} here)" if v.ddp and gpus < 2
                else f"budget: {left:.0f} s left, estimate {v.est_s:g} s" if left < v.est_s
                else ""
            )  # fmt: skip
            if skip:
                results[v.name] = {"name": v.name, "group": v.size, "skipped": skip}
                continue
            spec = resolve(v, results, args)
            print(f"== {v.name}: {json.dumps(spec)}", flush=True)
            res = run_child(spec, args, data, tmp, max(left, 30.0), gpus)
            results[v.name] = res
            if "error" in res:
                result["errors"].append({"variant": v.name, "error": res["error"]})
            elif res.get("samples_per_s"):
                result["figures"] += figures_for(res)
            print(f"== {v.name}: {res.get('samples_per_s')} samples/s, first step "
                  f"{res.get('first_step_s')} s, {res['wall_s']} s", flush=True)  # fmt: skip
            result["summary"] = summary(results)
            write(result, args.out, t_start)  # partial results survive a later failure
    result["summary"] = summary(results)
    result["imports_blocked"] = list(BLOCKED)
    result["blocked_modules_imported"] = [m for m in BLOCKED if m in sys.modules]
    write(result, args.out, t_start)
    print(table(result))
    print(json.dumps(result["summary"], indent=2))
    print(f"wrote {args.out} in {result['seconds']} s", flush=True)
    return 1 if result["errors"] or result["blocked_modules_imported"] else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="gpu_results.json")
    p.add_argument("--only", default="", help=f"comma-separated variants of: {','.join(NAMES)}")
    p.add_argument("--skip", default="", help="comma-separated variants to leave out")
    p.add_argument("--size", type=int, default=0, help="pixels for every variant (dry runs)")
    p.add_argument("--steps", type=int, default=60, help="timed steps per variant (at least)")
    p.add_argument("--min-s", type=float, default=3.0, help="timed seconds per variant (at least)")
    p.add_argument("--warmup", type=int, default=5, help="steps before timing (graphs record)")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--arch", default="swin_tiny")
    p.add_argument("--amp", default="bf16", choices=("bf16", "fp16", "off"))
    p.add_argument("--device", default="cuda")
    p.add_argument("--frames-per-cell", type=int, default=64, help="synthetic file size")
    p.add_argument("--budget-s", type=float, default=480.0,
                   help="start no variant whose estimate goes past this")  # fmt: skip
    p.add_argument("--cpu-compile", action="store_true", help="run compile variants on the CPU")
    p.add_argument("--in-process", action="store_true",
                   help="dry runs: every variant in this process, none in its own")  # fmt: skip
    p.add_argument("--child", default="", help=argparse.SUPPRESS)
    p.add_argument("--data", default="", help=argparse.SUPPRESS)
    p.add_argument("--child-out", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    block_imports()
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    if args.child:
        from benchmarks.gpu_child import child

        return child(json.loads(args.child), args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # ends the running variant too
    return parent(args)


if __name__ == "__main__":
    sys.exit(main())
