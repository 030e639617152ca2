"""The TensorBoard target: event files written with TensorBoard's own writer and protos, no
TensorFlow and no torch (the `tensorboard` package alone: `pip install 'amc-tui[tensorboard]'`).

Scalars are plain `simple_value` summaries (TensorBoard's Scalars tab; `EventAccumulator.Scalars`
reads them back), the config is a text summary (TOML) and an hparams session (the HParams tab),
the final per-cell table a markdown text summary.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from amc_tui.mirror.records import Close, Final, Open, Record, RunInfo, Scalars

HPARAM_TYPES = (bool, int, float, str)


def flat_config(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`table.key: value` leaves; lists and tables that are values become JSON text."""
    out: dict[str, Any] = {}
    for k, v in config.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and not prefix:
            out.update(flat_config(v, key + "."))
        elif isinstance(v, HPARAM_TYPES):
            out[key] = v
        else:
            out[key] = json.dumps(v, sort_keys=True, default=str)
    return out


class TensorBoardBackend:
    """One event file per writer (a resumed run adds one to the same folder: TensorBoard
    reads them all)."""

    target = "tensorboard"

    def __init__(self, logdir: Path) -> None:
        from tensorboard.summary.writer.event_file_writer import (  # optional extra, ~0.2 s
            EventFileWriter,
        )

        self.logdir = logdir
        self.writer = EventFileWriter(str(logdir), max_queue_size=100, flush_secs=30)

    def write(self, record: Record) -> None:
        if isinstance(record, Open):
            self._open(record.run, record.resumed)
        elif isinstance(record, Scalars):
            self._scalars(record.step, record.values, record.t)
            self.writer.flush()  # one flush per epoch: TensorBoard sees it at once
        elif isinstance(record, Final):
            self._scalars(record.step, record.values, record.t)
            self._text("test/per_cell", _markdown(record.columns, record.rows), record.step)
            self.writer.flush()
        elif isinstance(record, Close):
            self.close()

    def close(self) -> None:
        self.writer.close()

    def _event(self, summary: Any, step: int, wall_time: float | None = None) -> None:
        from tensorboard.compat.proto import event_pb2  # optional extra (see __init__)

        self.writer.add_event(
            event_pb2.Event(wall_time=wall_time or time.time(), step=step, summary=summary)
        )

    def _scalars(self, step: int, values: dict[str, float], t: float) -> None:
        from tensorboard.compat.proto import summary_pb2  # optional extra (see __init__)

        summary = summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag=k, simple_value=v) for k, v in values.items()]
        )
        self._event(summary, step, t)

    def _text(self, tag: str, text: str, step: int) -> None:
        from tensorboard.plugins.text.summary_v2 import text_pb  # optional extra

        self._event(text_pb(tag, text), step)

    def _open(self, run: RunInfo, resumed: bool) -> None:
        from tensorboard.plugins.hparams import summary_v2 as hp  # optional extra

        if resumed:  # the first attempt wrote the run's description already
            return
        head = f"**{run.name}** ({run.run_id})" + (
            f", group {run.group}: {run.point}" if run.group else ""
        )
        self._text("config", f"{head}\n\n```toml\n{run.config_text}\n```", 0)
        self._event(hp.hparams_pb(flat_config(run.config), trial_id=run.name), 0)
        self.writer.flush()


def _markdown(columns: list[str], rows: list[list[Any]]) -> str:
    if not columns:
        return "(no per-cell export)"
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
