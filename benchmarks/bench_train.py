"""Training and inference samples/s of configs/demo.toml on this machine's CPU, and how two
CPU trainers share the machine.

Calls `amc_tui.train.bench.measure_model` in-process: the trainer's code path
(Feed prefetch thread -> on-device rendering -> forward/backward -> AdamW step), time-boxed,
plus its per-batch split (feed, render, forward+backward+step, each alone).

Baselines, measured in the same run on the same batches: for training, the model's
forward+backward+step alone on images rendered beforehand (that split), so the ratio is the
share of the model's own speed the whole pipeline reaches (1.0 = feed and rendering cost
nothing); for inference, the model's forward alone on pre-rendered images.

`train_two_cpu_runs_share`: two real trainer processes (`python -m amc_tui.train`, tiny Swin,
automatic thread count) run at the same time; the value is their combined training samples/s,
the baseline one such trainer alone, so a ratio near 1 means the two split the cores without
losing throughput to each other (each one's own rate over the solo one is in `extra`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
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


def run(files: Any, quick: bool, root: Path | None = None) -> tuple[list[Figure], dict[str, Any]]:
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
    figs.append(share_figure(root or Path(files.root).parent / "train", quick))
    from benchmarks.bench_mirror import mirror_figure  # imports this module

    figs.append(mirror_figure(root or Path(files.root).parent / "train", quick))
    return figs, {"config": origin, "measure_model": res}


# --------------------------------------------------------------------------- two CPU trainers

SHARE_CLASSES = ["BPSK", "QPSK", "8PSK", "16QAM"]
SHARE_CONFIG = """\
name = "{name}"
[data]
path = "{data}"
classes = ["BPSK", "QPSK", "8PSK", "16QAM"]
snr_min = 0
snr_max = 20
frames_per_cell = {fpc}
[image]
size = 32
range = 1.5
[model]
arch = "swin_tiny"
backbone_kwargs = {{window_size = 4, embed_dim = 24, depths = [1, 1], num_heads = [1, 2]}}
[train]
epochs = {epochs}
batch_size = 32
seed = 0
[run]
device = "cpu"
step_log_every = 10
checkpoint_minutes = 0
"""
BUSY = "while True:\n    pass\n"


def _events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_cpu(p: subprocess.Popen[bytes], timeout: float) -> float:
    """Reap `p` (its returncode set) and return the CPU seconds it and the children it
    reaped used (user + system, from wait4: other processes' load does not count)."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(p.pid, os.WNOHANG)
        if pid:
            p.returncode = os.waitstatus_to_exitcode(status)
            return usage.ru_utime + usage.ru_stime
        if time.monotonic() > deadline:
            raise subprocess.TimeoutExpired(p.args, timeout)
        time.sleep(0.05)


def run_trainers(
    ws: Path, names: list[str], data: Path, fpc: int, epochs: int, busy: int = 0,
    extra: dict[str, str] | None = None, env_extra: dict[str, str] | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Start one real trainer per name (and `busy` spinning processes) at once; per trainer
    its torch threads and training samples/s over the epochs all of them were training in
    (the first epoch, warm-up, left out when there are more). `extra[name]` is appended to that
    trainer's config, `env_extra` added to the trainers' environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env.update(env_extra or {})
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["CUDA_VISIBLE_DEVICES"] = ""
    procs, dirs = [], []
    cpu_s: dict[str, float] = {}
    spinners = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(busy)]
    try:
        for name in names:
            d = ws / "runs" / name
            d.mkdir(parents=True)
            config = SHARE_CONFIG.format(name=name, data=data, fpc=fpc, epochs=epochs)
            config += (extra or {}).get(name, "")
            (d / "config.toml").write_text(config)
            meta = {"id": name.replace("-", "")[:8], "name": name, "workspace": str(ws),
                    "created_at": time.time()}  # fmt: skip
            (d / "meta.json").write_text(json.dumps(meta))
            log = open(d / "train.log", "wb")  # noqa: SIM115 - handed to the child
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "amc_tui.train", "--run-dir", str(d)], stdout=log,
                stderr=subprocess.STDOUT, env=env, cwd=REPO, start_new_session=True,
            ))  # fmt: skip
            log.close()
            dirs.append(d)
        for p, d in zip(procs, dirs, strict=True):
            cpu_s[d.name] = wait_cpu(p, timeout=900)
            if p.returncode != 0:
                tail = (d / "train.log").read_text()[-1500:]
                raise RuntimeError(f"trainer {d.name} exited {p.returncode}: {tail}")
    finally:
        for p in [*procs, *spinners]:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGKILL)
                p.wait()
    runs = []
    for d in dirs:
        evs = _events(d / "events.jsonl")
        start = next(e for e in evs if e["kind"] == "start")
        epochs_ev = [e for e in evs if e["kind"] == "epoch"]
        runs.append({"name": d.name, "threads": start.get("threads"), "epochs": epochs_ev,
                     "cpu_s": cpu_s[d.name]})  # fmt: skip
    # the window in which every trainer was training
    lo = max(min(e["t"] - e["epoch_time_s"] for e in r["epochs"]) for r in runs)
    hi = min(max(e["t"] for e in r["epochs"]) for r in runs)
    out = []
    for r in runs:
        eps = r["epochs"][1:] if len(r["epochs"]) > 1 else r["epochs"]
        inside = [e for e in eps if e["t"] - e["epoch_time_s"] >= lo - 1e-3 and e["t"] <= hi]
        used = inside or eps
        out.append({
            "name": r["name"], "threads": r["threads"], "epochs_used": len(used),
            "all_overlapping": bool(inside),
            "samples_per_s": round(statistics.median(e["samples_per_s"] for e in used), 1),
            "epoch_rates": [e["samples_per_s"] for e in used],
            "cpu_s": round(r["cpu_s"], 2),
        })  # fmt: skip
    return out


def share_figure(root: Path, quick: bool) -> Figure:
    """Two concurrent CPU trainers' combined samples/s over one trainer alone."""
    from amc_tui.data.synth import synthesize

    fpc, epochs = (16, 1) if quick else (96, 4)
    ws = root / "share"
    data = ws / "data" / "tiny.h5"
    data.parent.mkdir(parents=True, exist_ok=True)
    synthesize(data, classes=SHARE_CLASSES, frames_per_cell=fpc, snr_min=0, snr_max=20, seed=0)
    (solo,) = run_trainers(ws, ["solo-1"], data, fpc, epochs)
    pair = run_trainers(ws, ["pair-1", "pair-2"], data, fpc, epochs)
    extra: dict[str, Any] = {
        "solo": solo,
        "pair": pair,
        "each_over_solo": [round(r["samples_per_s"] / solo["samples_per_s"], 3) for r in pair],
        "usable_cores": len(os.sched_getaffinity(0)),
    }
    if not quick:  # what other load on the same cores does to a trainer
        (busy,) = run_trainers(ws, ["busy-solo-1"], data, fpc, epochs, busy=2)
        extra["solo_with_2_busy_loops"] = busy
    total = sum(r["samples_per_s"] for r in pair)
    return rate_figure(
        "train_two_cpu_runs_share", total, "samples/s", "one CPU trainer alone",
        solo["samples_per_s"], extra=extra,
        note=(f"two real trainers at once, tiny Swin 32 px batch 32, {fpc} frames per cell, "
              f"{epochs} epochs, threads chosen by the trainer (cores / live CPU trainers); "
              "value = sum of both, median epoch samples/s over the epochs they overlapped"),
    )  # fmt: skip
