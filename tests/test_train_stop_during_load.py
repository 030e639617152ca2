"""A stop that arrives while the selection loads into RAM ends the run at the next block,
not after the whole load (minutes for the real 14.8 GB selection)."""

from __future__ import annotations

from pathlib import Path

import pytest
from train_fixtures import make_data, make_run

from amc_tui.run.rundir import read_status
from amc_tui.train.loop import Stopped, Trainer


def test_stop_requested_before_the_load_ends_the_run_stopped(tmp_path: Path) -> None:
    data = make_data(tmp_path / "tiny.h5")
    run = make_run(tmp_path, "load-stop-1", data)
    trainer = Trainer(run.path)
    trainer.stop_requested = True  # as the SIGTERM handler would set it
    assert trainer.main() == 0
    status = read_status(run)
    assert status["state"] == "stopped" and status["exit_code"] == 0
    assert not run.last_ckpt.exists()  # nothing trained, nothing to save


def test_load_progress_reports_tenths_and_raises_on_stop(tmp_path: Path, capsys) -> None:
    trainer = Trainer(tmp_path)
    for done in range(0, 1001, 50):
        trainer._load_progress(done, 1000)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("loading")]
    assert len(lines) == 10 and lines[-1] == "loading frames into RAM: 1,000 / 1,000"
    trainer.stop_requested = True
    with pytest.raises(Stopped):
        trainer._load_progress(1000, 2000)
