"""`amc-tui mirror RUN|GROUP --to tensorboard|wandb`: an existing run's history written from
its events.jsonl and exports through the same records and backends as the live mirror.

TensorBoard: the run's tensorboard/ folder is rebuilt whole (written beside it, then swapped
in), so a backfill never doubles what a live mirror wrote. W&B: the run's W&B id again, so a
run mirrored live and backfilled stays one W&B run (W&B keeps the first row of each step).
Attempts of a resumed run become one history: one open, one close with the last state.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from amc_tui.config import Config, load_config
from amc_tui.errors import UserError
from amc_tui.mirror.records import Close, Record, Translator
from amc_tui.mirror.targets import install_hint, offline_runs, package_missing, tb_dir, wanted
from amc_tui.mirror.tb import TensorBoardBackend
from amc_tui.mirror.wb import WandbBackend
from amc_tui.run.rundir import RunDir, read_events, read_run


def records_of(run: RunDir) -> list[Record]:
    """Every record of the run's history, in order: one Open (the translator opens once),
    the epochs and the final, one Close with the last attempt's state."""
    tr = Translator(run)
    out: list[Record] = []
    state = "completed"
    for event in read_events(run.events) if run.events.exists() else []:
        for rec in tr.feed(event):
            if isinstance(rec, Close):
                state = rec.state
            else:
                out.append(rec)
    if not tr.opened:
        raise UserError(f"run {run.name} has no start event yet: nothing to mirror")
    return [*out, Close(state)]


def backfill(run: RunDir, target: str, wandb_mode: str | None = None) -> str:
    """Write one run's history to `target`; returns where it went, as one line."""
    if package_missing(target):
        raise UserError(f"the {target} mirror needs its package: {install_hint(target)}")
    state = read_run(run.path, with_last_epoch=False).state
    if state in ("running", "stalled") and target in wanted(_config(run)):
        raise UserError(f"run {run.name} is {state} with its own {target} mirror; "
                        "mirror it once it has ended")  # fmt: skip
    recs = records_of(run)
    if target == "tensorboard":
        return _tensorboard(run, recs)
    return _wandb(run, recs, wandb_mode)


def _tensorboard(run: RunDir, recs: list[Record]) -> str:
    final = tb_dir(run)
    tmp = Path(tempfile.mkdtemp(prefix=".tensorboard-", dir=run.path))
    try:
        backend = TensorBoardBackend(tmp)
        for rec in recs:
            backend.write(rec)
        old = final.with_name(f".tensorboard-old-{tmp.name}")
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return f"tensorboard --logdir {final}"


def _wandb(run: RunDir, recs: list[Record], mode: str | None) -> str:
    cfg = _config(run)
    mode = mode or (cfg.mirror.wandb if cfg.mirror.wandb != "off" else "offline")
    backend = WandbBackend(run.path, mode, cfg.mirror.wandb_project, cfg.mirror.wandb_entity)
    before = set(offline_runs(run))
    for rec in recs:
        backend.write(rec)
    if mode == "offline":
        new = [p for p in offline_runs(run) if p not in before] or offline_runs(run)[-1:]
        return f"wandb sync {new[-1]}" if new else "wandb: offline run written"
    return "wandb: synced"


def _config(run: RunDir) -> Config:
    try:
        return load_config(run.config)
    except UserError:  # an old or damaged config: W&B's defaults
        return Config()
