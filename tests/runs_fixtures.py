"""Hand-made run directories in the DESIGN section 3-5 formats.

`make_fake_run(ws, ...)` writes config.toml, meta.json, status.json, events.jsonl and (optionally)
the per-epoch and final analysis exports, with deterministic metrics from a seed, so listing,
RUNLOG and compare can be tested, and benchmarked at 1,000 runs, without a trainer.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amc_tui.config import Config, dumps_config, from_dict
from amc_tui.data.classes import DIGITAL, snr_range
from amc_tui.fsutil import atomic_write_json
from amc_tui.names import new_id
from amc_tui.run import runlock
from amc_tui.run.rundir import RunDir, list_runs
from amc_tui.workspace import Workspace

if TYPE_CHECKING:  # the stand-in trainer and benchmarks import this module: no pytest there
    import pytest

TESTS = Path(__file__).resolve().parent
SPLITS = ("train", "val")
# Keys every run row must carry (RunInfo.to_row(), `amc-tui ls --json`).
ROW_KEYS = ("id", "name", "state", "arch", "epoch", "epochs", "best", "started_at", "ended_at",
            "elapsed_s", "eta_s", "dir")  # fmt: skip
_CONFIG_CACHE: dict[str, str] = {}


def runs_workspace(root: Path) -> Workspace:
    """An empty workspace with only runs/, for hand-made run directories."""
    ws = Workspace(root)
    ws.runs.mkdir()
    return ws


def age(run: RunDir | Path, seconds: float = 600.0) -> None:
    """Date a run's folder and files (or one path) `seconds` into the past, as if written long
    ago: the run index and the app's polls trust stamps only when they are old enough."""
    when = time.time() - seconds
    path = run.path if isinstance(run, RunDir) else Path(run)
    for p in [*path.iterdir(), path] if isinstance(run, RunDir) else [path]:
        os.utime(p, (when, when))


def aged_workspace(root: Path, n: int) -> Workspace:
    """A workspace of `n` completed runs (run-0, run-1, ...) written long ago."""
    ws = runs_workspace(root)
    for i in range(n):
        age(make_fake_run(ws, f"run-{i}", state="completed", epochs=4, seed=i, exports=False))
    return ws


def fake_trainer_workspace(
    root: Path, monkeypatch: pytest.MonkeyPatch, *, epoch_s: float, epochs: int,
    stop_grace_s: float,
) -> Workspace:  # fmt: skip
    """A workspace whose runs start the stand-in trainer (tests/runs_fake_trainer.py, real file
    contract, `epoch_s` seconds per epoch) with no queue worker, and configs/fake.toml pointing
    at data/fake.h5, a small synthetic file (2 classes x 2 SNRs x 10 frames) whose split run
    creation checks like any other."""
    monkeypatch.setenv("AMC_TUI_TRAINER_MODULE", "runs_fake_trainer")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), str(TESTS.parent)]))
    monkeypatch.setenv("FAKE_EPOCH_S", str(epoch_s))
    monkeypatch.setenv("AMC_TUI_NO_WORKER", "1")
    for sub in ("configs", "runs", "data"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    write_fake_data(root / "data" / "fake.h5")
    (root / "configs" / "fake.toml").write_text(
        f'[data]\npath = "data/fake.h5"\n{FAKE_DATA_KEYS}[train]\nepochs = {epochs}\n'
        f'[run]\ndevice = "cpu"\nstop_grace_s = {stop_grace_s}\n'
    )
    return Workspace(root)


FAKE_DATA_KEYS = 'classes = ["BPSK", "QPSK"]\nsnr_min = 0\nsnr_max = 2\n'


def write_fake_data(path: Path, frames_per_cell: int = 10) -> None:
    """The stand-in trainer's data file (it reads none of it; run creation checks its split)."""
    from amc_tui.data.synth import synthesize

    synthesize(path, classes=["BPSK", "QPSK"], frames_per_cell=frames_per_cell,
               snr_min=0, snr_max=2)  # fmt: skip


def kill_running(ws: Workspace) -> None:
    """SIGKILL the queue worker and the process group of every run still running or stalled
    (no strays after a test), including trainers that have not written their pid yet."""
    from amc_tui.launch.keeper import worker_holder
    from amc_tui.launch.supervise import with_trainer

    worker = worker_holder(ws) if ws.state_dir.is_dir() else None
    if worker and isinstance(worker.get("pid"), int):
        with contextlib.suppress(OSError):
            os.kill(worker["pid"], signal.SIGKILL)
    for info in list_runs(ws, with_last_epoch=False):
        info = with_trainer(ws, info)
        held = (runlock.holder(info.dir) or {}).get("pid")  # also a damaged run's trainer
        groups = {info.pgid or info.pid} if info.state in ("running", "stalled") else set()
        for pgid in groups | {held}:
            if isinstance(pgid, int) and pgid > 0:
                with contextlib.suppress(OSError):
                    os.killpg(pgid, signal.SIGKILL)


def fake_config(**tables: dict[str, Any]) -> Config:
    raw: dict[str, Any] = {"data": {"path": "data/fake.h5", "frames_per_cell": 8}}
    for key, value in tables.items():
        if isinstance(value, dict):
            raw.setdefault(key, {}).update(value)
        else:
            raw[key] = value
    return from_dict(raw)


def _metrics(rng: random.Random, progress: float, split: str) -> dict[str, float]:
    base = 0.1 + 0.3 * progress + (0.01 if split == "val" else 0.0)
    acc_mod = min(0.99, base * 2 + rng.uniform(-0.005, 0.005))
    acc_snr = min(0.99, base * 1.6 + rng.uniform(-0.005, 0.005))
    return {
        "loss": round(2.5 - 1.2 * progress + rng.uniform(-0.01, 0.01), 4),
        "acc_mod": round(acc_mod, 4),
        "acc_snr": round(acc_snr, 4),
        "acc_combined": round(base + rng.uniform(-0.005, 0.005), 4),
        "snr_mae_db": round(6.0 - 4 * progress, 3),
        "snr_within_1": round(min(0.99, acc_snr + 0.2), 4),
    }


def epoch_event(epoch: int, epochs: int, rng: random.Random, is_best: bool) -> dict[str, Any]:
    progress = epoch / max(1, epochs)
    s_mod, s_snr = 1.5 - 0.2 * progress, 2.4 - 0.1 * progress
    p_mod, p_snr = 1 / s_mod, 1 / s_snr
    return {
        "t": 1_750_000_000.0 + epoch * 60,
        "kind": "epoch",
        "epoch": epoch,
        "epoch_time_s": 60.0,
        "samples_per_s": 780.0,
        "lr": 1e-4 * math.cos(progress * math.pi / 2),
        "train": _metrics(rng, progress, "train"),
        "val": _metrics(rng, progress, "val"),
        "weights": {
            "mod": round(p_mod / (p_mod + p_snr), 4),
            "snr": round(p_snr / (p_mod + p_snr), 4),
        },
        "uncertainty": {"mod": round(s_mod, 4), "snr": round(s_snr, 4)},
        "is_best": is_best,
    }


def write_export(
    out: Path,
    run_id: str,
    epoch: int,
    ev: dict[str, Any],
    classes: list[str],
    snrs: list[int],
    rng: random.Random,
    split: str = "val",
) -> None:
    """summary.json, per_cell.csv, confusion and F1 CSVs in the DESIGN section 5 layout."""
    out.mkdir(parents=True, exist_ok=True)
    summary = {k: v for k, v in ev.items() if k not in ("t", "kind")}
    summary.update(
        run_id=run_id,
        epoch=epoch,
        split=split,
        classes=classes,
        snrs=snrs,
        split_sizes={"train": 800, "val": 100, "test": 100},
        f1_mod={c: round(rng.random(), 4) for c in classes},
        f1_snr={str(s): round(rng.random(), 4) for s in snrs},
    )
    if split == "test":
        summary["test"] = ev["val"]
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    rows = ["modulation,snr_db,n,acc_mod,acc_snr,acc_combined,snr_mae_db"]
    for ci, c in enumerate(classes):
        for s in snrs:
            q = min(1.0, max(0.0, (s + 20) / 50 * 0.8 + 0.1 * ((ci * 7 + epoch) % 5) / 5))
            am, asn = round(q, 4), round(q * 0.9, 4)
            rows.append(f"{c},{s},8,{am},{asn},{round(am * asn, 4)},{round(6 * (1 - q), 3)}")
    (out / "per_cell.csv").write_text("\n".join(rows) + "\n")
    for name, labels in (("mod", classes), ("snr", [str(s) for s in snrs])):
        lines = ["true," + ",".join(labels)]
        for i, lab in enumerate(labels):
            lines.append(lab + "," + ",".join(str(8 if i == j else 0) for j in range(len(labels))))
        (out / f"confusion_{name}.csv").write_text("\n".join(lines) + "\n")
        f1 = summary[f"f1_{name}"]
        (out / f"f1_{name}.csv").write_text(
            "label,f1\n" + "".join(f"{k},{v}\n" for k, v in f1.items())
        )


def make_fake_run(
    ws: Workspace,
    name: str | None = None,
    *,
    state: str = "completed",
    epochs: int = 4,
    epoch: int | None = None,
    arch: str = "resnet18",
    seed: int = 0,
    created_at: float | None = None,
    exports: bool = True,
    classes: list[str] | None = None,
    snrs: list[int] | None = None,
    steps_per_epoch: int = 3,
    pid: int | None = None,
    heartbeat_at: float | None = None,
    tags: list[str] | None = None,
    phase: str = "",
    notes: str = "",
    config: Config | None = None,
    run_id: str | None = None,
) -> RunDir:
    """Write one run directory as a finished (or running/queued) trainer would leave it."""
    rng = random.Random(seed)
    run_id = run_id or new_id()
    name = name or f"fake-run-{seed}"
    classes = classes or list(DIGITAL[:4])
    snrs = snrs or snr_range(-10, 10)
    done = epochs if epoch is None and state == "completed" else (epoch or 0)
    if epoch is None and state in ("stopped", "crashed", "failed", "running"):
        done = max(1, epochs // 2)
    run = RunDir(ws.runs / name)
    run.path.mkdir(parents=True)
    run.checkpoints.mkdir()
    cfg = config or fake_config(
        model={"arch": arch}, train={"epochs": epochs}, tags=tags or [], phase=phase, notes=notes
    )
    key = repr(cfg.to_dict())
    if key not in _CONFIG_CACHE:
        _CONFIG_CACHE[key] = dumps_config(cfg)
    run.config.write_text(_CONFIG_CACHE[key])
    t0 = created_at if created_at is not None else 1_750_000_000.0 + seed * 1000
    atomic_write_json(
        run.meta,
        {
            "id": run_id,
            "name": name,
            "created_at": t0,
            "host": "testhost",
            "argv": [],
            "git_commit": None,
            "resumed_from": None,
            "workspace": str(ws.root),
            "arch": cfg.model.arch,
            "epochs": cfg.train.epochs,
            "tags": cfg.tags,
            "phase": cfg.phase,
            "notes": cfg.notes,
            "select_metric": cfg.train.select_metric,
            "config_hash": cfg.hash(),
        },
    )
    lines = [
        {
            "t": t0 + 1,
            "kind": "start",
            "run_id": run_id,
            "name": name,
            "device": "cpu",
            "world_size": 1,
            "n_train": 800,
            "n_val": 100,
            "n_test": 100,
            "classes": classes,
            "snrs": snrs,
            "params": 11_200_000,
        },
    ]
    best: dict[str, Any] | None = None
    for e in range(1, done + 1):
        for s in range(steps_per_epoch):
            lines.append(
                {
                    "t": t0 + e * 60 + s,
                    "kind": "step",
                    "epoch": e,
                    "step": s + 1,
                    "loss": 2.0,
                    "loss_mod": 1.0,
                    "loss_snr": 1.0,
                    "lr": 1e-4,
                    "samples_per_s": 700.0,
                }
            )
        val_before = best["value"] if best else -1.0
        ev = epoch_event(e, epochs, rng, False)
        ev["is_best"] = ev["val"]["acc_combined"] > val_before
        if ev["is_best"]:
            best = {"metric": "val.acc_combined", "value": ev["val"]["acc_combined"], "epoch": e}
        lines.append(ev)
        lines.append(
            {
                "t": ev["t"] + 1,
                "kind": "checkpoint",
                "epoch": e,
                "path": str(run.last_ckpt),
                "best": ev["is_best"],
            }
        )
        if exports:
            write_export(run.epoch_export(e), run_id, e, ev, classes, snrs, rng)
            lines.append(
                {"t": ev["t"] + 2, "kind": "export", "epoch": e, "dir": str(run.epoch_export(e))}
            )
    if exports and state == "completed" and done:
        write_export(
            run.final_export,
            run_id,
            done,
            lines[-3] if exports else lines[-2],
            classes,
            snrs,
            rng,
            split="test",
        )
    if done:
        run.last_ckpt.write_bytes(b"fake")
    ended = state in ("completed", "stopped", "failed", "crashed")
    if ended and state != "crashed":
        lines.append(
            {
                "t": t0 + done * 60 + 30,
                "kind": "end",
                "state": state,
                "exit_code": 0 if state != "failed" else 1,
                "best": best,
            }
        )
    with open(run.events, "w") as f:
        for ev in lines:
            f.write(json.dumps(ev, separators=(",", ":")) + "\n")
    status: dict[str, Any] = {"state": state if state != "crashed" else "running"}
    if state != "queued":
        status.update(
            pid=pid if pid is not None else (999_999_999 if state == "crashed" else 0) or None,
            pgid=None,
            host=os.uname().nodename,
            device="cpu",
            gpus=[],
            epoch=done,
            epochs=epochs,
            step=done * steps_per_epoch,
            started_at=t0 + 1,
            ended_at=t0 + done * 60 + 30 if ended and state != "crashed" else None,
            heartbeat_at=heartbeat_at
            if heartbeat_at is not None
            else (time.time() if state == "running" else t0 + done * 60),
            exit_code=(0 if state in ("completed", "stopped") else 1) if ended else None,
            best=best,
            error="Traceback ...\nValueError: boom" if state == "failed" else None,
        )
    atomic_write_json(run.status, status)
    return run


def make_fake_runs(ws: Workspace, n: int, exports: bool = False, **kw: Any) -> list[RunDir]:
    """n completed runs with distinct names and increasing creation times (for scale)."""
    states = ("completed", "completed", "stopped", "failed")
    return [
        make_fake_run(
            ws, f"fake-run-{i}", state=states[i % len(states)], seed=i, exports=exports, **kw
        )
        for i in range(n)
    ]


def wait_for(pred: Any, timeout: float = 90.0, every: float = 0.05) -> Any:
    """Poll `pred` until it returns something true (returned); AssertionError at `timeout`."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if value := pred():
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout} s")


def amc(ws: Workspace, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`amc-tui ARGS` as a separate process in the workspace, no stdin, extra `env`."""
    return subprocess.run(
        [sys.executable, "-m", "amc_tui.cli", *args], cwd=ws.root, capture_output=True,
        text=True, stdin=subprocess.DEVNULL, timeout=120, env={**os.environ, **env},
    )  # fmt: skip


def group_json(ws: Workspace, name: str) -> dict[str, Any]:
    """A sweep group's group.json as written."""
    return json.loads((ws.root / "groups" / name / "group.json").read_text())


def group_state(ws: Workspace, name: str) -> str:
    """A sweep group's state as `group show` derives it from its members."""
    from amc_tui.sweeps.group import group_state as derive
    from amc_tui.sweeps.group import groups_root, member_runs, read_group

    group = read_group(groups_root(ws) / name)
    assert group is not None
    return derive(group, member_runs(ws, group))
