"""The real trainer (`python -m amc_tui.train`) for tests whose runs start through the launcher,
the CLI or the TUI, where the run directory is made just before its trainer starts, so a test
cannot put the trainer's pause file (`train_fixtures.pause_at`) there in time: this writes it.

`python -m pausing_trainer --run-dir DIR [--resume]` with TEST_PAUSE_RUNS="name:step,..."
("*:step": any run): a fresh start (no --resume) of a run named there first writes the run's
pause-at-step file, so the trainer pauses right after that step and waits for SIGTERM
(amc_tui.train.loop.take_pause_step); a resume or a restart trains on. Start runs with it
through AMC_TUI_TRAINER_MODULE=pausing_trainer and tests/ on PYTHONPATH.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from amc_tui.train.owner import main

ENV = "TEST_PAUSE_RUNS"
PAUSE_FILE = "pause-at-step"  # amc_tui.train.loop.PAUSE_FILE (torch only once the run is ours)


def pause_step(run_dir: Path, spec: str) -> str | None:
    """The step TEST_PAUSE_RUNS gives this run (by its folder's name, else "*"), or None."""
    steps = dict(item.strip().rsplit(":", 1) for item in spec.split(",") if item.strip())
    return steps.get(run_dir.name) or steps.get("*")


if __name__ == "__main__":
    args = sys.argv[1:]
    if "--resume" not in args and "--run-dir" in args:
        run_dir = Path(args[args.index("--run-dir") + 1])
        step = pause_step(run_dir, os.environ.get(ENV, ""))
        if step is not None:
            (run_dir / PAUSE_FILE).write_text(step, encoding="utf-8")
    sys.exit(main())
