"""Before a process exists: a new run directory, built completely or not at all.

The run counter and name, meta.json and the resolved config.toml are fixed here, once. Every
reference the config makes to another run's checkpoint (`run.resume`, `model.weights`) is
resolved to an absolute file now, so the trainer receives a path and a later rename or new
checkpoint of the source run cannot change what this run starts from.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from amc_tui.config import (
    Config,
    apply_overrides,
    cell_counts,
    dumps_config,
    from_dict,
    load_config,
    with_data_path,
)
from amc_tui.data.source import preflight  # h5py: only when a run is made
from amc_tui.errors import UserError
from amc_tui.fsutil import atomic_write_json, atomic_write_text
from amc_tui.gpu import default_sampler
from amc_tui.launch.slurm import check_available
from amc_tui.launch.state import file_lock, state_dir
from amc_tui.mirror.targets import require_packages
from amc_tui.names import check_name, new_id, new_name
from amc_tui.run.analysis import best_earlier_run  # pandas: only when a run is made
from amc_tui.run.refs import resolve_checkpoint
from amc_tui.run.rundir import RunDir, RunInfo, read_run
from amc_tui.workspace import Workspace

# --------------------------------------------------------------------------- locks, counter


def next_counter(ws: Workspace) -> int:
    """The workspace's run counter, incremented under a lock: two processes creating runs at
    once get distinct N. A missing counter restarts past the highest N among run folders."""
    state = state_dir(ws)
    with file_lock(state / "counter.lock"):
        path = state / "counter"
        try:
            current = int(path.read_text().strip())
        except (OSError, ValueError):
            current = _highest_suffix(ws)
        atomic_write_text(path, f"{current + 1}\n")
        return current + 1


def _highest_suffix(ws: Workspace) -> int:
    best = 0
    with contextlib.suppress(OSError):
        for entry in os.scandir(ws.runs):
            m = re.search(r"-(\d+)$", entry.name)
            if m:
                best = max(best, int(m.group(1)))
    return best


# --------------------------------------------------------------------------- config


def _load(
    ws: Workspace, config: str | os.PathLike[str] | Config, overrides: Sequence[str]
) -> Config:
    if isinstance(config, Config):
        if not overrides:
            return from_dict(config.to_dict())
        return from_dict(apply_overrides(config.to_dict(), list(overrides)))
    return load_config(ws.resolve(config), list(overrides))


def _resolve_references(
    ws: Workspace, cfg: Config
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Replace `run.resume` and `model.weights` by absolute checkpoint files in `cfg`; the
    (resumed_from, weights_from) records for meta.json. Errors name the key as written."""
    resumed = weights = None
    if cfg.run.resume:
        path, resumed = resolve_checkpoint(ws, cfg.run.resume, "run.resume")
        cfg.run.resume = str(path)
    if cfg.model.weights:
        path, weights = resolve_checkpoint(ws, cfg.model.weights, "model.weights")
        cfg.model.weights = str(path)
    return resumed, weights


def _git_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _check_data(cfg: Config) -> None:
    """The data file exists and the config's split leaves no part empty (from the labels
    alone): a run that cannot train is refused before its folder exists."""
    if not Path(cfg.data.path).is_file():
        raise UserError(
            f"data file not found: {cfg.data.path}; make a synthetic one with "
            f"`amc-tui data synth {cfg.data.path}` or set data.path"
        )

    preflight(cfg.data)  # DataError (a UserError) naming what to change


def _check_gpus(cfg: Config) -> None:
    """Refuse a run that asks for GPUs this machine does not have: it could never start.
    One that asks for more than are free now is queued (the queue says what it waits for).
    Without NVML (no driver) nothing is known here and nothing is refused."""
    r = cfg.run
    listed = list(r.gpus) if isinstance(r.gpus, list) else []
    if r.device.startswith("cuda:"):
        listed.append(int(r.device[5:]))
    if r.device == "cpu" or (not listed and r.nproc <= 1):
        return

    snap = default_sampler().sample()
    if not snap.ok:
        return
    have = sorted(g.index for g in snap.gpus)
    named = f"{len(have)} GPU{'s' if len(have) != 1 else ''}" + (
        f" ({', '.join(map(str, have))})" if have else ""
    )
    missing = [g for g in listed if g not in have]
    if missing:
        key = "run.gpus" if missing[0] in (r.gpus if isinstance(r.gpus, list) else []) else (
            "run.device")  # fmt: skip
        raise UserError(f"{key} names GPU {missing[0]} but this machine has {named}")
    if r.nproc > len(have):
        raise UserError(f"run.nproc = {r.nproc} but this machine has {named}")


# --------------------------------------------------------------------------- create


def _once(memo: dict[Any, Any] | None, key: Any, make: Callable[[], Any]) -> Any:
    if memo is None:
        return make()
    if key not in memo:
        memo[key] = make()
    return memo[key]


def create_run(
    ws: Workspace,
    config: str | os.PathLike[str] | Config,
    overrides: Sequence[str] = (),
    name: str | None = None,
    *,
    resumed_from: dict[str, Any] | None = None,
    argv: Sequence[str] | None = None,
    check_data: bool = True,
    meta_extra: dict[str, Any] | None = None,
    memo: dict[Any, Any] | None = None,
) -> RunInfo:
    """A new queued run directory (config.toml, meta.json, status.json); nothing started.

    Built in a temp folder under the state dir and renamed into runs/ in one step, so a bad
    name, config, checkpoint reference or data path leaves nothing behind. `meta_extra`
    adds keys to meta.json (a sweep's member: group, point, repeat). `memo`, shared by the
    runs of one sweep, keeps what is the same for all of them (the git commit, the best
    earlier run per metric and cell grid): a sweep costs one workspace scan, not one per run.
    """

    if name is not None:
        try:
            check_name(name)
        except ValueError as e:
            raise UserError(str(e)) from None
    cfg = with_data_path(_load(ws, config, overrides), ws.root)
    require_packages(cfg)  # [mirror] asks for a package this machine lacks: exit 2
    if cfg.run.executor == "slurm":
        check_available()  # no sbatch here: one line, exit 2, nothing created
    else:
        _check_gpus(cfg)
    if check_data:
        _check_data(cfg)
    found, weights_from = _resolve_references(ws, cfg)
    resumed_from = resumed_from or found
    chosen = name or cfg.name or None
    if chosen and (ws.runs / chosen).exists():
        raise UserError(f"a run named {chosen!r} already exists in {ws.runs}")
    counter = next_counter(ws)
    if not chosen:
        for _ in range(50):
            chosen = new_name(counter)
            if not (ws.runs / chosen).exists():
                break
    assert chosen is not None
    cfg.name = chosen
    run_id = new_id()
    cells = cell_counts(cfg.data)
    now = time.time()
    meta = {
        "id": run_id,
        "name": chosen,
        "created_at": now,
        "host": socket.gethostname(),
        "argv": list(sys.argv if argv is None else argv),
        "git_commit": _once(memo, "git", lambda: _git_commit(ws.root)),
        "resumed_from": resumed_from,
        "weights_from": weights_from,
        "workspace": str(ws.root),
        "arch": cfg.model.arch,
        "epochs": cfg.train.epochs,
        "tags": list(cfg.tags),
        "phase": cfg.phase,
        "notes": cfg.notes,
        "select_metric": cfg.train.select_metric,
        "config_hash": cfg.hash(),
        "cells": cells,
        "baseline": _once(
            memo,
            ("baseline", cfg.train.select_metric, json.dumps(cells, sort_keys=True)),
            lambda: best_earlier_run(ws, cfg.train.select_metric, cells),
        ),
        **(meta_extra or {}),
    }
    ws.runs.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"new-{chosen}-", dir=state_dir(ws)))
    try:
        tmp.chmod(0o755)
        rd = RunDir(tmp)
        atomic_write_text(rd.config, dumps_config(cfg))
        atomic_write_json(rd.meta, meta)
        atomic_write_json(
            rd.status, {"state": "queued", "queued_at": now, "epochs": cfg.train.epochs}
        )
        final = ws.runs / chosen
        if final.exists():
            raise UserError(f"a run named {chosen!r} already exists in {ws.runs}")
        try:
            os.rename(tmp, final)  # tmp is non-empty: fails if `final` appeared meanwhile
        except OSError as e:
            raise UserError(f"cannot create run folder {final}: {e.strerror}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return read_run(final)
