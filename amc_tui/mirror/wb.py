"""The Weights & Biases target: a W&B run named after the amc-tui run (`pip install
'amc-tui[wandb]'`).

The W&B id comes from the run id (targets.wandb_id) and W&B resumes it ("allow"), so a resumed
run goes on in the same W&B run; history steps are epochs (W&B drops a step it already has).
A sweep member's W&B group is its sweep group and its job type the point, so W&B's grouping
shows mean ± std per point. W&B stays quiet (no console capture: train.log is the trainer's)
and never prompts: offline needs no login; online without a key raises, which the sink
records.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from amc_tui.mirror.records import Close, Final, Open, Record, RunInfo, Scalars
from amc_tui.mirror.targets import wandb_id

MAX_JOB_TYPE = 64  # W&B's limit on a job type and on a tag


class WandbBackend:
    target = "wandb"

    def __init__(self, run_dir: Path, mode: str, project: str, entity: str = "") -> None:
        os.environ.setdefault("WANDB_SILENT", "true")  # no banner in train.log
        import wandb  # optional extra; ~0.3 s and its own service process: only when on

        self.wandb = wandb
        self.run_dir, self.mode, self.project, self.entity = run_dir, mode, project, entity
        self.run: Any = None

    def write(self, record: Record) -> None:
        if isinstance(record, Open):
            self._open(record.run)
        elif self.run is None:
            return
        elif isinstance(record, Scalars):
            self.run.log({"epoch": record.step, **record.values}, step=record.step)
        elif isinstance(record, Final):
            for k, v in record.values.items():
                self.run.summary[k] = v
            self.run.summary["test/epoch"] = record.step
            if record.columns:
                table = self.wandb.Table(columns=record.columns, data=record.rows)
                self.run.log({"test/per_cell": table})
        elif isinstance(record, Close):
            self.close(0 if record.state in ("completed", "stopped") else 1)

    def close(self, exit_code: int = 0) -> None:
        if self.run is not None:
            run, self.run = self.run, None
            run.finish(exit_code=exit_code)

    def _settings(self) -> Any:
        """Quiet, no console capture (train.log is the trainer's), no system-metrics sampling
        (the trainer's gpu events have them); a W&B without the private stats switch keeps
        its default."""
        try:
            return self.wandb.Settings(console="off", silent=True, x_disable_stats=True)
        except Exception:  # noqa: BLE001 - an older wandb: unknown setting
            return self.wandb.Settings(console="off", silent=True)

    def _open(self, info: RunInfo) -> None:
        tags = list(dict.fromkeys([*info.tags, *([f"group:{info.group}"] if info.group else [])]))
        config = {**info.config, "amc_tui": {"run_id": info.run_id, "group": info.group,
                                             "point": info.point, "repeat": info.repeat}}  # fmt: skip
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.run = self.wandb.init(
            project=self.project, entity=self.entity or None, name=info.name,
            id=wandb_id(info.run_id), resume="allow", dir=str(self.run_dir), mode=self.mode,
            group=info.group, job_type=(info.point or "run")[:MAX_JOB_TYPE],
            tags=[t[:MAX_JOB_TYPE] for t in tags], notes=info.notes or None, config=config,
            reinit="create_new",
            settings=self._settings(),
        )  # fmt: skip
        self.run.define_metric("epoch")
